package device

import (
	"errors"
	"fmt"
	"image"
	"runtime"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/internal/dlib"
)

// HOGKind says which of dlib's five HOG filters found a face.
type HOGKind = dlib.HOGKind

// HOG filter kinds of dlib's frontal_face_detector.
const (
	HOGFrontal      = dlib.HOGFrontal
	HOGLeftProfile  = dlib.HOGLeftProfile
	HOGRightProfile = dlib.HOGRightProfile
	HOGFrontalLeft  = dlib.HOGFrontalLeft
	HOGFrontalRight = dlib.HOGFrontalRight
)

// Detection is one face found by the HOG detector.
type Detection struct {
	Box   image.Rectangle
	Score float64 // dlib's detection confidence; 0 is the trained threshold
	Kind  HOGKind
}

// FaceDetector is dlib's single-threaded HOG face detector on grey Mats.
type FaceDetector struct{ d *dlib.Detector }

// NewFaceDetector builds dlib's frontal face detector.
func NewFaceDetector() (*FaceDetector, error) {
	d, err := dlib.NewDetector()
	if err != nil {
		return nil, err
	}
	return &FaceDetector{d: d}, nil
}

// Close frees the detector. It is safe to call twice.
func (d *FaceDetector) Close() error {
	d.d.Close()
	return nil
}

// Detect scans an 8-bit single-channel Mat once, without upsampling: dlib
// finds faces from about 80 pixels across. adjust shifts dlib's threshold
// (negative finds more, positive fewer).
func (d *FaceDetector) Detect(gray gocv.Mat, adjust float64) ([]Detection, error) {
	buf, err := grayData(gray)
	if err != nil {
		return nil, err
	}
	dets, err := d.d.Detect(buf, gray.Cols(), gray.Rows(), gray.Step(), adjust)
	runtime.KeepAlive(gray)
	if err != nil {
		return nil, err
	}
	out := make([]Detection, len(dets))
	for i, x := range dets {
		r := x.Rect
		out[i] = Detection{Box: image.Rect(r.Min.X, r.Min.Y, r.Max.X+1, r.Max.Y+1), Score: x.Score, Kind: x.Kind}
	}
	return out, nil
}

// ShapePredictor is a dlib shape predictor on grey Mats, such as the
// 68-point model used for liveness and pose; safe for concurrent use.
type ShapePredictor struct{ s *dlib.ShapePredictor }

// NewShapePredictor loads a dlib shape predictor model file.
func NewShapePredictor(path string) (*ShapePredictor, error) {
	s, err := dlib.NewShapePredictor(path)
	if err != nil {
		return nil, err
	}
	return &ShapePredictor{s: s}, nil
}

// Parts returns the number of landmarks the model predicts (5 or 68).
func (s *ShapePredictor) Parts() int { return s.s.Parts() }

// Close frees the model. It is safe to call twice.
func (s *ShapePredictor) Close() error {
	s.s.Close()
	return nil
}

// Shape predicts the landmarks of the face in box on an 8-bit
// single-channel Mat.
func (s *ShapePredictor) Shape(gray gocv.Mat, box image.Rectangle) ([]image.Point, error) {
	buf, err := grayData(gray)
	if err != nil {
		return nil, err
	}
	pts, err := s.s.Shape(buf, gray.Cols(), gray.Rows(), gray.Step(),
		image.Rectangle{Min: box.Min, Max: box.Max.Sub(image.Pt(1, 1))})
	runtime.KeepAlive(gray)
	return pts, err
}

// grayData returns the pixels of an 8-bit single-channel Mat.
func grayData(m gocv.Mat) ([]byte, error) {
	if m.Empty() {
		return nil, errors.New("empty image")
	}
	if m.Type() != gocv.MatTypeCV8UC1 {
		return nil, fmt.Errorf("want an 8-bit grayscale image, got Mat type %v", m.Type())
	}
	data, err := m.DataPtrUint8()
	if err != nil || len(data) == 0 {
		return nil, fmt.Errorf("image data: %v", err)
	}
	return data, nil
}
