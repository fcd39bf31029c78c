package device

import (
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// Appearance continuity: a track's liveness evidence (non-rigid motion,
// blinks) must come from one face seen continuously. Swapping one photo of a
// person for another in front of the camera, in place, changes the
// landmarks' shape from one frame to the next exactly as an expression would,
// so the landmarks alone cannot tell the two apart. The swap does change the
// whole face's appearance at once (hair, lighting, skin, background at the
// face's edge), which a live face between two frames does not: a blink or a
// word changes the eyes or the mouth, a small part of the face. So every
// face with landmarks is warped to a small grey patch aligned on its eyes,
// and a track ends when the patch stops resembling the one before it.

// patchSize is the side, in pixels, of the aligned face patch. Coarse on
// purpose: lighting, hair and background, which tell two photos apart,
// survive at this size, while a moving face's small misalignments and
// expressions average away (16 against 40 px: docs/liveness.md).
const patchSize = 16

// patchEyeY and patchEyeX place the eye centres in the patch (fractions of
// its side): the inter-ocular distance is 0.3 of the side, so the patch spans
// about 3.3 of it across (the head and the background beside it) and from
// the hairline to below the chin.
const (
	patchEyeY  = 0.42
	patchEyeX0 = 0.35
	patchEyeX1 = 0.65
)

// DefaultTrackContinuity is the default Config.TrackContinuity: it ends a
// track on most in-place photo swaps and almost never on a live face
// (measured by TestContinuityMeasured; figures and limits in
// docs/liveness.md).
const DefaultTrackContinuity = 0.45

// facePatch is an aligned patch, zero mean and unit norm: the dot product of
// two patches is their normalised cross-correlation.
type facePatch []float32

// alignedPatch warps the face with landmarks lm in the grey frame to a
// patchSize patch with the eyes at fixed places (a similarity transform:
// shift, rotation, scale), through a patch twice as large and an area
// resize so the downscale does not alias. It returns nil when the landmarks
// are incomplete or the patch is flat. tmp and out are scratch Mats.
func alignedPatch(gray gocv.Mat, lm []Point, tmp, out *gocv.Mat) facePatch {
	if len(lm) < lmCount {
		return nil
	}
	a, b := eyeCenter(lm, lmRightEye0), eyeCenter(lm, lmLeftEye0)
	const big = 2 * patchSize
	ta := Point{patchEyeX0 * big, patchEyeY * big}
	tb := Point{patchEyeX1 * big, patchEyeY * big}
	d := b.sub(a)
	n := d.X*d.X + d.Y*d.Y
	if n < 1 {
		return nil
	}
	// The similarity z -> s*z + t in complex numbers, with s = (tb-ta)/(b-a).
	e := tb.sub(ta)
	sr := (e.X*d.X + e.Y*d.Y) / n
	si := (e.Y*d.X - e.X*d.Y) / n
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer m.Close()
	m.SetDoubleAt(0, 0, sr)
	m.SetDoubleAt(0, 1, -si)
	m.SetDoubleAt(0, 2, ta.X-(sr*a.X-si*a.Y))
	m.SetDoubleAt(1, 0, si)
	m.SetDoubleAt(1, 1, sr)
	m.SetDoubleAt(1, 2, ta.Y-(si*a.X+sr*a.Y))
	gocv.WarpAffineWithParams(gray, tmp, m, image.Pt(big, big), gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	gocv.Resize(*tmp, out, image.Pt(patchSize, patchSize), 0, 0, gocv.InterpolationArea)
	buf, err := out.DataPtrUint8()
	if err != nil || len(buf) < patchSize*patchSize {
		return nil
	}
	p := make(facePatch, patchSize*patchSize)
	var sum float64
	for i := range p {
		p[i] = float32(buf[i])
		sum += float64(buf[i])
	}
	mean := float32(sum / float64(len(p)))
	var ss float64
	for i := range p {
		p[i] -= mean
		ss += float64(p[i]) * float64(p[i])
	}
	if ss < float64(len(p)) { // standard deviation under one grey level
		return nil
	}
	k := float32(1 / math.Sqrt(ss))
	for i := range p {
		p[i] *= k
	}
	return p
}

// similarity returns the normalised cross-correlation of two patches, in
// [-1, 1]; 1 when either is missing (nothing to compare).
func (p facePatch) similarity(q facePatch) float64 {
	if len(p) == 0 || len(p) != len(q) {
		return 1
	}
	var s float64
	for i := range p {
		s += float64(p[i]) * float64(q[i])
	}
	return s
}
