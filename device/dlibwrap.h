// dlibwrap.h: a small C interface to dlib's HOG frontal face detector and its
// shape predictors, for package device. Images are 8-bit grayscale buffers
// owned by the caller (an OpenCV Mat); nothing is copied on the way in.
#ifndef KIOSKD_DEVICE_DLIBWRAP_H
#define KIOSKD_DEVICE_DLIBWRAP_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dd_detector dd_detector;
typedef struct dd_shaper dd_shaper;

// dd_detector_new returns dlib's frontal_face_detector (5 HOG filters).
dd_detector* dd_detector_new(void);
void dd_detector_free(dd_detector* d);

// dd_detect scans a grayscale image once (no upsampling). It writes up to max
// detections: rects[4*i..] = left, top, right, bottom; scores[i] = detection
// confidence; kinds[i] = which HOG filter fired (0 frontal, 1 left profile, 2
// right profile, 3 and 4 frontal rotated). It returns how many it found (it
// may be more than max), or -1 with err set.
int dd_detect(dd_detector* d, const unsigned char* gray, int w, int h, int stride,
              double adjust, int* rects, double* scores, int* kinds, int max,
              char** err);

// dd_shaper_new loads a dlib shape predictor (.dat), or returns NULL with err set.
dd_shaper* dd_shaper_new(const char* path, char** err);
void dd_shaper_free(dd_shaper* s);
// dd_shaper_parts returns the number of landmarks the model predicts.
int dd_shaper_parts(dd_shaper* s);

// dd_shape predicts landmarks inside box (left, top, right, bottom) and writes
// up to max points as x, y pairs to pts. It returns the number of parts, or -1
// with err set.
int dd_shape(dd_shaper* s, const unsigned char* gray, int w, int h, int stride,
             int left, int top, int right, int bottom, int* pts, int max, char** err);

#ifdef __cplusplus
}
#endif

#endif
