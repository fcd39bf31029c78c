package device

import (
	"math"

	"gocv.io/x/gocv"
)

// exposureTarget is the face luma liftExposure brings a dark face to: the
// middle of what well-lit enrolment photos show.
const exposureTarget = 110.0

// exposureLiftBelow is the face luma under which a face is lifted: faces
// above it reach the landmark predictor and the encoder untouched, so
// descriptors of well-exposed faces stay exactly what face_recognition
// computes.
const exposureLiftBelow = 80.0

// liftExposure writes src to dst through the gamma curve that carries the
// face luma faceMean to exposureTarget (a copy when faceMean is not under
// exposureLiftBelow). A gamma curve stretches the dark tones, where a dim
// face's detail is, and keeps black black and white white.
func liftExposure(src gocv.Mat, dst *gocv.Mat, faceMean float64) {
	if faceMean >= exposureLiftBelow || faceMean <= 1 {
		src.CopyTo(dst)
		return
	}
	g := math.Log(exposureTarget/255) / math.Log(faceMean/255)
	lut := gocv.NewMatWithSize(1, 256, gocv.MatTypeCV8U)
	defer lut.Close()
	for i := 0; i < 256; i++ {
		lut.SetUCharAt(0, i, uint8(math.Round(255*math.Pow(float64(i)/255, g))))
	}
	gocv.LUT(src, lut, dst)
}

// DefaultMinContrast is the default Config.MinContrast.
const DefaultMinContrast = 6
