package device

// #cgo CXXFLAGS: -std=c++14 -O3 -DNDEBUG -Wall
// #cgo amd64 CXXFLAGS: -march=x86-64-v2
// #cgo LDFLAGS: -ldlib -lblas -lcblas -llapack -ljpeg
// #include <stdlib.h>
// #include "dlibwrap.h"
import "C"

import (
	"errors"
	"fmt"
	"image"
	"runtime"
	"sync"
	"unsafe"

	"gocv.io/x/gocv"
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

// Detection is one face found by the HOG detector.
type Detection struct {
	Box   image.Rectangle
	Score float64 // dlib's detection confidence; 0 is the trained threshold
	Kind  HOGKind
}

// FaceDetector is dlib's HOG frontal_face_detector behind a small cgo
// wrapper. dlib's detector keeps scan state, so calls are serialised; use one
// per goroutine for parallel scans.
type FaceDetector struct {
	mu sync.Mutex
	p  *C.dd_detector
}

// NewFaceDetector builds dlib's frontal face detector (no file needed: the
// filters are compiled into dlib).
func NewFaceDetector() (*FaceDetector, error) {
	p := C.dd_detector_new()
	if p == nil {
		return nil, errors.New("create dlib face detector")
	}
	return &FaceDetector{p: p}, nil
}

// Close frees the detector. It is safe to call twice.
func (d *FaceDetector) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p != nil {
		C.dd_detector_free(d.p)
		d.p = nil
	}
	return nil
}

// Detect scans an 8-bit single-channel Mat once, without upsampling: dlib
// finds faces from about 80 pixels across. adjust shifts dlib's threshold
// (negative finds more, positive fewer).
func (d *FaceDetector) Detect(gray gocv.Mat, adjust float64) ([]Detection, error) {
	ptr, w, h, stride, err := grayData(gray)
	if err != nil {
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
	n := C.dd_detect(d.p, ptr, C.int(w), C.int(h), C.int(stride), C.double(adjust),
		&rects[0], &scores[0], &kinds[0], maxDetections, &cerr)
	d.mu.Unlock()
	runtime.KeepAlive(gray)
	if n < 0 {
		return nil, cError("detect faces", cerr)
	}
	count := min(int(n), maxDetections)
	out := make([]Detection, count)
	for i := range out {
		out[i] = Detection{
			Box:   image.Rect(int(rects[4*i]), int(rects[4*i+1]), int(rects[4*i+2])+1, int(rects[4*i+3])+1),
			Score: float64(scores[i]),
			Kind:  HOGKind(kinds[i]),
		}
	}
	return out, nil
}

// ShapePredictor is a dlib shape predictor, such as the 68-point
// shape_predictor_68_face_landmarks.dat used for liveness and pose. The
// predictor is read-only after loading and safe for concurrent use.
type ShapePredictor struct {
	mu    sync.RWMutex
	p     *C.dd_shaper
	parts int
}

// NewShapePredictor loads a dlib shape predictor model file.
func NewShapePredictor(path string) (*ShapePredictor, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	p := C.dd_shaper_new(cpath, &cerr)
	if p == nil {
		return nil, cError("load shape predictor "+path, cerr)
	}
	return &ShapePredictor{p: p, parts: int(C.dd_shaper_parts(p))}, nil
}

// Parts returns the number of landmarks the model predicts (5 or 68).
func (s *ShapePredictor) Parts() int { return s.parts }

// Close frees the model. It is safe to call twice.
func (s *ShapePredictor) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		C.dd_shaper_free(s.p)
		s.p = nil
	}
	return nil
}

// Shape predicts the landmarks of the face in box on an 8-bit
// single-channel Mat.
func (s *ShapePredictor) Shape(gray gocv.Mat, box image.Rectangle) ([]image.Point, error) {
	ptr, w, h, stride, err := grayData(gray)
	if err != nil {
		return nil, err
	}
	pts := make([]C.int, 2*s.parts)
	var cerr *C.char
	s.mu.RLock()
	if s.p == nil {
		s.mu.RUnlock()
		return nil, errors.New("shape predictor closed")
	}
	n := C.dd_shape(s.p, ptr, C.int(w), C.int(h), C.int(stride),
		C.int(box.Min.X), C.int(box.Min.Y), C.int(box.Max.X-1), C.int(box.Max.Y-1),
		&pts[0], C.int(s.parts), &cerr)
	s.mu.RUnlock()
	runtime.KeepAlive(gray)
	if n < 0 {
		return nil, cError("predict landmarks", cerr)
	}
	out := make([]image.Point, min(int(n), s.parts))
	for i := range out {
		out[i] = image.Pt(int(pts[2*i]), int(pts[2*i+1]))
	}
	return out, nil
}

// grayData returns the pixel buffer of an 8-bit single-channel Mat.
func grayData(m gocv.Mat) (*C.uchar, int, int, int, error) {
	if m.Empty() {
		return nil, 0, 0, 0, errors.New("empty image")
	}
	if m.Type() != gocv.MatTypeCV8UC1 {
		return nil, 0, 0, 0, fmt.Errorf("want an 8-bit grayscale image, got Mat type %v", m.Type())
	}
	data, err := m.DataPtrUint8()
	if err != nil || len(data) == 0 {
		return nil, 0, 0, 0, fmt.Errorf("image data: %v", err)
	}
	return (*C.uchar)(unsafe.Pointer(&data[0])), m.Cols(), m.Rows(), m.Step(), nil
}

func cError(what string, cerr *C.char) error {
	if cerr == nil {
		return errors.New(what)
	}
	defer C.free(unsafe.Pointer(cerr))
	return fmt.Errorf("%s: %s", what, C.GoString(cerr))
}
