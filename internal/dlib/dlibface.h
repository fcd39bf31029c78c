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

// kd_encode_face computes the 5 landmarks and the 128-d descriptor of the
// face in the given rectangle (left, top, right, bottom, inclusive) of a
// packed BGR image, without running the detector: for callers that already
// found the face with the same HOG detector. It fills shape (10 longs) and
// descr (128 floats) and returns 1, or -1 with *err set.
int kd_encode_face(kd_facerec* rec, const uint8_t* bgr, int w, int h, long left, long top,
                   long right, long bottom, long* shape, float* descr, char** err);

#ifdef __cplusplus
}
#endif
