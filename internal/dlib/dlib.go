// Package dlib is kioskd's one cgo binding to dlib, over raw pixel buffers:
// the face pipeline recognizer uses (HOG detector, 5-point landmarks, ResNet
// descriptor, exactly as face_recognition drives it through dlib's Python
// bindings) and the single-threaded HOG detector and 68-point shape
// predictor device gates frames with. It is its own package so editing the
// Go around it does not recompile dlib.
package dlib

// #cgo CXXFLAGS: -std=c++17 -O3 -DNDEBUG -Wno-deprecated-declarations
// #cgo amd64 CXXFLAGS: -march=x86-64-v2
// #cgo LDFLAGS: -ldlib -lcblas -llapack -lblas -pthread
// #include <stdlib.h>
// #include "dlibface.h"
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"
)

// MaxFacesPerImage bounds the faces described in one image: a class photo
// holds fewer; more would be a crowd, and each costs a ResNet pass.
const MaxFacesPerImage = 64

// Face is one face as the dlib pipeline returns it.
type Face struct {
	Rect       image.Rectangle // dlib's rectangle: right/bottom inclusive, may exceed the image
	Landmarks  []image.Point   // the 5-point model's landmarks
	Descriptor [128]float32
}

// Recognizer is one loaded copy of dlib's models (about 35 MB). It is not
// safe for concurrent use: callers pool them.
type Recognizer struct {
	ptr *C.kd_facerec
}

// Open loads shape_predictor_5_face_landmarks.dat and
// dlib_face_recognition_resnet_model_v1.dat from dir.
func Open(dir string) (*Recognizer, error) {
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var cerr *C.char
	ptr := C.kd_open(cdir, &cerr)
	if ptr == nil {
		return nil, cError("", cerr)
	}
	return &Recognizer{ptr: ptr}, nil
}

// Close frees the models. Safe to call twice.
func (r *Recognizer) Close() {
	if r.ptr != nil {
		C.kd_close(r.ptr)
		r.ptr = nil
	}
}

// Recognize runs detection (on a 2x pyramid_up copy when upsample, mapping
// rectangles back), landmarks and descriptors over packed BGR pixels, w x h.
// detectThreads > 1 splits the HOG detector's work over that many threads
// (at most 8); the faces are the same, bit for bit, as with one. It returns
// the number of faces detected, which may exceed len(faces) when over
// MaxFacesPerImage; faces are in the detector's order.
func (r *Recognizer) Recognize(bgr []byte, w, h int, upsample bool, detectThreads int) (int, []Face, error) {
	if r.ptr == nil {
		return 0, nil, errors.New("recognize: recognizer closed")
	}
	if w <= 0 || h <= 0 || len(bgr) < w*h*3 {
		return 0, nil, errors.New("recognize: bad image buffer")
	}
	var rects [4 * MaxFacesPerImage]C.long
	var shapes [10 * MaxFacesPerImage]C.long
	var descrs [128 * MaxFacesPerImage]C.float
	up := C.int(0)
	if upsample {
		up = 1
	}
	var cerr *C.char
	n := int(C.kd_recognize(r.ptr, (*C.uint8_t)(unsafe.Pointer(&bgr[0])), C.int(w), C.int(h), up,
		C.int(detectThreads), C.int(MaxFacesPerImage), &rects[0], &shapes[0], &descrs[0], &cerr))
	if n < 0 {
		return 0, nil, cError("dlib", cerr)
	}
	faces := make([]Face, min(n, MaxFacesPerImage))
	for i := range faces {
		f := &faces[i]
		f.Rect = image.Rect(int(rects[4*i]), int(rects[4*i+1]), int(rects[4*i+2]), int(rects[4*i+3]))
		f.Landmarks = make([]image.Point, 5)
		for j := range f.Landmarks {
			f.Landmarks[j] = image.Pt(int(shapes[10*i+2*j]), int(shapes[10*i+2*j+1]))
		}
		for j := range f.Descriptor {
			f.Descriptor[j] = float32(descrs[128*i+j])
		}
	}
	return n, faces, nil
}

// EncodeFace computes the 5 landmarks and the descriptor of the face in
// rect (dlib's convention: right/bottom inclusive) of packed BGR pixels,
// w x h, without running the detector. For the rectangle Recognize found,
// the result is the same, bit for bit, as Recognize's for that face.
func (r *Recognizer) EncodeFace(bgr []byte, w, h int, rect image.Rectangle) (Face, error) {
	if r.ptr == nil {
		return Face{}, errors.New("encode face: recognizer closed")
	}
	if w <= 0 || h <= 0 || len(bgr) < w*h*3 {
		return Face{}, errors.New("encode face: bad image buffer")
	}
	var shape [10]C.long
	var descr [128]C.float
	var cerr *C.char
	if C.kd_encode_face(r.ptr, (*C.uint8_t)(unsafe.Pointer(&bgr[0])), C.int(w), C.int(h),
		C.long(rect.Min.X), C.long(rect.Min.Y), C.long(rect.Max.X), C.long(rect.Max.Y),
		&shape[0], &descr[0], &cerr) < 0 {
		return Face{}, cError("dlib", cerr)
	}
	f := Face{Rect: rect, Landmarks: make([]image.Point, 5)}
	for j := range f.Landmarks {
		f.Landmarks[j] = image.Pt(int(shape[2*j]), int(shape[2*j+1]))
	}
	for j := range f.Descriptor {
		f.Descriptor[j] = float32(descr[j])
	}
	return f, nil
}

// cError turns an error string the C++ allocated (kderr.h) into a Go error
// prefixed with what, and frees it.
func cError(what string, cerr *C.char) error {
	if cerr == nil {
		if what == "" {
			what = "dlib error"
		}
		return errors.New(what)
	}
	defer C.free(unsafe.Pointer(cerr))
	if what == "" {
		return errors.New(C.GoString(cerr))
	}
	return fmt.Errorf("%s: %s", what, C.GoString(cerr))
}
