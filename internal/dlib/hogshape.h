// C interface to dlib's single-threaded HOG frontal face detector and its
// shape predictors over 8-bit grey buffers (with a row stride) owned by the
// caller: nothing is copied on the way in.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kd_detector kd_detector;
typedef struct kd_shaper kd_shaper;

// kd_detector_new returns dlib's frontal_face_detector (5 HOG filters), or NULL.
kd_detector* kd_detector_new(void);
void kd_detector_free(kd_detector* d);

// kd_detect scans a grey image once (no upsampling). It writes up to max
// detections: rects[4*i..] = left, top, right, bottom (inclusive); scores[i]
// = detection confidence; kinds[i] = which HOG filter fired (0 frontal, 1
// left profile, 2 right profile, 3 and 4 frontal rotated). It returns how
// many it found (may be more than max), or -1 with *err set.
int kd_detect(kd_detector* d, const unsigned char* gray, int w, int h, int stride,
              double adjust, int* rects, double* scores, int* kinds, int max, char** err);

// kd_shaper_new loads a dlib shape predictor (.dat), or returns NULL with *err set.
kd_shaper* kd_shaper_new(const char* path, char** err);
void kd_shaper_free(kd_shaper* s);
// kd_shaper_parts returns the number of landmarks the model predicts.
int kd_shaper_parts(kd_shaper* s);

// kd_shape predicts landmarks inside box (left, top, right, bottom,
// inclusive) of a grey image and writes up to max points as x, y pairs to
// pts. It returns the number of parts, or -1 with *err set.
int kd_shape(kd_shaper* s, const unsigned char* gray, int w, int h, int stride,
             int left, int top, int right, int bottom, int* pts, int max, char** err);

#ifdef __cplusplus
}
#endif
