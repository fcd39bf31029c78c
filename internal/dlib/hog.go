package dlib

// #include <stdlib.h>
// #include "hogshape.h"
import "C"

import (
	"errors"
	"image"
	"sync"
	"unsafe"
)

// maxDetections bounds how many faces one scan reports; a kiosk needs to know
// only "none", "one" or "more than one".
const maxDetections = 32

// HOGKind says which of dlib's five HOG filters found a face.
type HOGKind int

// HOG filter kinds of dlib's frontal_face_detector.
const (
	HOGFrontal      HOGKind = 0
	HOGLeftProfile  HOGKind = 1
	HOGRightProfile HOGKind = 2
	HOGFrontalLeft  HOGKind = 3 // frontal, rotated left
	HOGFrontalRight HOGKind = 4 // frontal, rotated right
)

// Detection is one face found by Detector.
type Detection struct {
	Rect  image.Rectangle // dlib's rectangle: right/bottom inclusive
	Score float64         // dlib's detection confidence; 0 is the trained threshold
	Kind  HOGKind
}

// Detector is dlib's HOG frontal_face_detector on one thread. dlib's
// detector keeps scan state, so calls are serialised; use one per goroutine
// for parallel scans.
type Detector struct {
	mu sync.Mutex
	p  *C.kd_detector
}

// NewDetector builds dlib's frontal face detector (no file needed: the
// filters are compiled into dlib).
func NewDetector() (*Detector, error) {
	p := C.kd_detector_new()
	if p == nil {
		return nil, errors.New("create dlib face detector")
	}
	return &Detector{p: p}, nil
}

// Close frees the detector. It is safe to call twice.
func (d *Detector) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p != nil {
		C.kd_detector_free(d.p)
		d.p = nil
	}
}

// Detect scans an 8-bit grey image (w x h, rows stride bytes apart) once,
// without upsampling. adjust shifts dlib's threshold (negative finds more,
// positive fewer).
func (d *Detector) Detect(gray []byte, w, h, stride int, adjust float64) ([]Detection, error) {
	if err := checkGray(gray, w, h, stride); err != nil {
		return nil, err
	}
	var (
		rects  [4 * maxDetections]C.int
		scores [maxDetections]C.double
		kinds  [maxDetections]C.int
		cerr   *C.char
	)
	d.mu.Lock()
	if d.p == nil {
		d.mu.Unlock()
		return nil, errors.New("face detector closed")
	}
	n := C.kd_detect(d.p, (*C.uchar)(unsafe.Pointer(&gray[0])), C.int(w), C.int(h), C.int(stride), C.double(adjust),
		&rects[0], &scores[0], &kinds[0], maxDetections, &cerr)
	d.mu.Unlock()
	if n < 0 {
		return nil, cError("detect faces", cerr)
	}
	out := make([]Detection, min(int(n), maxDetections))
	for i := range out {
		out[i] = Detection{
			Rect:  image.Rectangle{Min: image.Pt(int(rects[4*i]), int(rects[4*i+1])), Max: image.Pt(int(rects[4*i+2]), int(rects[4*i+3]))},
			Score: float64(scores[i]),
			Kind:  HOGKind(kinds[i]),
		}
	}
	return out, nil
}

// ShapePredictor is a dlib shape predictor, such as the 68-point
// shape_predictor_68_face_landmarks.dat. It is read-only after loading and
// safe for concurrent use.
type ShapePredictor struct {
	mu    sync.RWMutex
	p     *C.kd_shaper
	parts int
}

// NewShapePredictor loads a dlib shape predictor model file.
func NewShapePredictor(path string) (*ShapePredictor, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	p := C.kd_shaper_new(cpath, &cerr)
	if p == nil {
		return nil, cError("load shape predictor "+path, cerr)
	}
	return &ShapePredictor{p: p, parts: int(C.kd_shaper_parts(p))}, nil
}

// Parts returns the number of landmarks the model predicts (5 or 68).
func (s *ShapePredictor) Parts() int { return s.parts }

// Close frees the model. It is safe to call twice.
func (s *ShapePredictor) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		C.kd_shaper_free(s.p)
		s.p = nil
	}
}

// Shape predicts the landmarks of the face in rect (right/bottom inclusive)
// of an 8-bit grey image (w x h, rows stride bytes apart).
func (s *ShapePredictor) Shape(gray []byte, w, h, stride int, rect image.Rectangle) ([]image.Point, error) {
	if err := checkGray(gray, w, h, stride); err != nil {
		return nil, err
	}
	pts := make([]C.int, 2*max(s.parts, 1))
	var cerr *C.char
	s.mu.RLock()
	if s.p == nil {
		s.mu.RUnlock()
		return nil, errors.New("shape predictor closed")
	}
	n := C.kd_shape(s.p, (*C.uchar)(unsafe.Pointer(&gray[0])), C.int(w), C.int(h), C.int(stride),
		C.int(rect.Min.X), C.int(rect.Min.Y), C.int(rect.Max.X), C.int(rect.Max.Y),
		&pts[0], C.int(s.parts), &cerr)
	s.mu.RUnlock()
	if n < 0 {
		return nil, cError("predict landmarks", cerr)
	}
	out := make([]image.Point, min(int(n), s.parts))
	for i := range out {
		out[i] = image.Pt(int(pts[2*i]), int(pts[2*i+1]))
	}
	return out, nil
}

// checkGray rejects a grey buffer too small for w x h at stride.
func checkGray(gray []byte, w, h, stride int) error {
	if w <= 0 || h <= 0 || stride < w || len(gray) < (h-1)*stride+w {
		return errors.New("bad grey image buffer")
	}
	return nil
}
