package device

import (
	"gocv.io/x/gocv"
)

// exposureTarget is the face luma liftExposure brings a dark face to: the
// middle of what well-lit enrolment photos show.
const exposureTarget = 110.0

// exposureLiftBelow is the face luma under which a face is lifted: faces
// above it reach the landmark predictor and the encoder untouched, so
// descriptors of well-exposed faces stay exactly what face_recognition
// computes. Below it the lift helps the encoder: on the 53 photos of
// faces-dark darkened to a face luma of 40, 20 and 12, descriptors lie
// 0.052, 0.054 and 0.062 from the well-lit ones lifted, 0.150, 0.254 and
// 0.343 unlifted (see docs/liveness.md).
const exposureLiftBelow = 80.0

// liftExposure writes src to dst with its values multiplied so that the
// face luma faceMean becomes exposureTarget (a copy when faceMean is not
// under exposureLiftBelow): what a camera's own exposure would have done.
// Bright parts clip, but a dim face has few.
func liftExposure(src gocv.Mat, dst *gocv.Mat, faceMean float64) {
	if faceMean >= exposureLiftBelow || faceMean <= 1 {
		if src.Ptr() != dst.Ptr() {
			src.CopyTo(dst)
		}
		return
	}
	src.ConvertToWithParams(dst, src.Type(), float32(exposureTarget/faceMean), 0)
}

// DefaultMinContrast is the default Config.MinContrast.
const DefaultMinContrast = 6

// backlit reports whether a face too dark to use sits in a much brighter
// scene: the light is behind the person, and turning helps more than
// waiting for more light.
func backlit(q *FaceQuality) bool {
	return q != nil && q.Scene > 2*q.Brightness+20
}
