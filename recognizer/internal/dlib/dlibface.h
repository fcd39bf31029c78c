// C interface to the dlib face pipeline in dlibface.cc, for cgo.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kd_facerec kd_facerec;

// kd_open loads the HOG detector and the 5-point and ResNet models from dir.
// On failure it returns NULL and sets *err (free it with free()).
kd_facerec* kd_open(const char* dir, char** err);
void kd_close(kd_facerec* rec);

// kd_recognize finds faces in a packed BGR image (w x h, 3 bytes a pixel),
// running the HOG detector on a 2x pyramid_up copy when upsample is 1, as
// dlib's Python detector(img, 1) does, and computes each face's 5 landmarks
// and 128-d descriptor on the original image. detect_threads > 1 runs the
// detector on that many threads (same detections as one; see hogdetect.h).
// It fills at most max_faces
// entries of rects (4 longs: left, top, right, bottom, inclusive), shapes
// (10 longs) and descrs (128 floats) and returns the number of faces found,
// or -1 with *err set.
int kd_recognize(kd_facerec* rec, const uint8_t* bgr, int w, int h, int upsample,
                 int detect_threads, int max_faces, long* rects, long* shapes, float* descrs, char** err);

#ifdef __cplusplus
}
#endif
