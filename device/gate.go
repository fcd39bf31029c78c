package device

import (
	"fmt"
	"image"
	"math"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
)

// shapeFaceWidth is the face width landmarks are predicted at: the crop is
// scaled to it so landmarks have sub-pixel precision in frame terms and the
// sharpness measure does not depend on distance.
const shapeFaceWidth = 160

// sharpFaceWidth is the face width the variance of the Laplacian is measured at.
const sharpFaceWidth = 128

// Gate is the verdict on one frame.
type Gate struct {
	// Faces are every face the HOG detector found, in frame pixels.
	Faces []Detection
	// Face is the one face when there is exactly one.
	Face *FaceQuality
	// Problem is what stops this frame from being identified: idle (no
	// face), one person please, move closer, too dark or too bright (too
	// little contrast on the face, or too much of it clipped: not the
	// skin's lightness), hold still (blurred), look at camera (turned); ""
	// when it passes.
	Problem models.FeedbackKind
}

// Passed reports whether the frame holds exactly one face good enough to
// identify.
func (g *Gate) Passed() bool { return g.Problem == "" && g.Face != nil }

// FaceQuality holds the measures taken on the single face of a frame.
type FaceQuality struct {
	Box        image.Rectangle
	Landmarks  []Point // dlib's 68 points in frame pixels
	Sharpness  float64 // variance of the Laplacian at sharpFaceWidth
	Brightness float64 // mean luma of the face box
	// Contrast is the standard deviation of the face's luma (at
	// sharpFaceWidth): the signal the landmarks and the encoder work with,
	// whatever the skin's own lightness.
	Contrast float64
	// DarkClipped and BrightClipped are the fractions of the face's pixels
	// crushed to black (luma <= 4) or burnt to white (>= 251): detail there
	// is lost, and no normalisation brings it back.
	DarkClipped, BrightClipped float64
	// Scene is the mean luma of the whole frame, to tell a backlit face
	// (the scene much brighter than the face) from a dark room.
	Scene     float64
	Yaw, Roll float64
	EAR       float64
	// Patch is the face's grey appearance aligned on its eyes, compared
	// between frames so a track follows one face (see continuity.go); nil
	// when it could not be taken or the check is off.
	Patch facePatch
	// Planarity is the face's pixels tracked from an earlier frame's face
	// (at least parallaxLag before; see parallax.go); nil when there was
	// none or too few points could be tracked.
	Planarity *planarity
}

// Gater runs the per-frame checks. It owns scratch Mats and is not safe for
// concurrent use.
type Gater struct {
	cfg   *Config
	det   *FaceDetector
	shape *ShapePredictor

	gray, small, crop, lap gocv.Mat
	patchTmp, patchOut     gocv.Mat
	// views are the single faces of the last frames (newest last), to
	// track their pixels into the next.
	views []*faceView
	// skipPixels: keep the views but measure no pixel motion (see
	// MeasurePixels).
	skipPixels bool
}

// NewGater returns a Gater using det and shape (68 points); it does not own them.
func NewGater(cfg *Config, det *FaceDetector, shape *ShapePredictor) (*Gater, error) {
	if shape.Parts() != lmCount {
		return nil, fmt.Errorf("shape predictor has %d points, want %d (shape_predictor_68_face_landmarks.dat)", shape.Parts(), lmCount)
	}
	return &Gater{cfg: cfg, det: det, shape: shape,
		gray: gocv.NewMat(), small: gocv.NewMat(), crop: gocv.NewMat(), lap: gocv.NewMat(),
		patchTmp: gocv.NewMat(), patchOut: gocv.NewMat()}, nil
}

// Close frees the scratch Mats.
func (g *Gater) Close() error {
	for _, m := range []*gocv.Mat{&g.gray, &g.small, &g.crop, &g.lap, &g.patchTmp, &g.patchOut} {
		if m.Ptr() != nil {
			m.Close()
		}
	}
	g.dropViews(len(g.views))
	return nil
}

// dropViews frees the n oldest views.
func (g *Gater) dropViews(n int) {
	for _, v := range g.views[:n] {
		v.close()
	}
	g.views = append(g.views[:0], g.views[n:]...)
}

// MeasurePixels turns the measure of the face's pixel motion
// (FaceQuality.Planarity, about 12 ms a frame) on or off for the next
// Checks. Off, the faces are still kept, so a face that starts a new track
// is measured against its own earlier frame as soon as it is turned on.
func (g *Gater) MeasurePixels(on bool) { g.skipPixels = !on }

// trackPixels measures q's face against the newest earlier face at least
// parallaxLag before at (unless skipPixels), and keeps q's face for the
// next frames.
func (g *Gater) trackPixels(q *FaceQuality, at time.Time) {
	old := 0
	for old < len(g.views) && at.Sub(g.views[old].at) > parallaxKeep {
		old++
	}
	g.dropViews(old)
	for i := len(g.views) - 1; i >= 0 && !g.skipPixels; i-- {
		if at.Sub(g.views[i].at) >= parallaxLag {
			if pl, ok := measurePlanarity(g.views[i], g.gray); ok {
				q.Planarity = &pl
			}
			break
		}
	}
	if v := newFaceView(g.gray, q.Box, q.Landmarks, q.Brightness, at); v != nil {
		g.views = append(g.views, v)
	}
}

// Check runs the gates on a BGR frame taken at frame time at. Successive
// calls with increasing times also track the face's pixels from frame to
// frame (FaceQuality.Planarity); a zero at skips that.
func (g *Gater) Check(frame gocv.Mat, at time.Time) (Gate, error) {
	var out Gate
	dets, scale, err := g.scan(frame, g.cfg.DetectWidth)
	if err != nil {
		return out, err
	}
	bounds := image.Rect(0, 0, g.gray.Cols(), g.gray.Rows())
	for i := range dets {
		if scale != 1 {
			b := dets[i].Box
			dets[i].Box = image.Rect(int(float64(b.Min.X)/scale), int(float64(b.Min.Y)/scale),
				int(float64(b.Max.X)/scale), int(float64(b.Max.Y)/scale))
		}
	}
	out.Faces = dets
	if len(dets) != 1 || at.IsZero() {
		// Another face, or none: nothing to track the next face from.
		g.dropViews(len(g.views))
	}
	switch {
	case len(dets) == 0:
		out.Problem = models.FeedbackIdle
		return out, nil
	case len(dets) > 1:
		out.Problem = models.FeedbackOnePerson
		return out, nil
	}
	box := dets[0].Box
	q := &FaceQuality{Box: box}
	out.Face = q
	if box.Dx() < g.cfg.MinFaceSize {
		out.Problem = models.FeedbackMoveCloser
		return out, nil
	}
	inner := box.Intersect(bounds)
	if inner.Dx() < box.Dx()*3/4 || inner.Dy() < box.Dy()*3/4 {
		// Mostly outside the frame: treat like a turned face.
		out.Problem = models.FeedbackLookAtCamera
		return out, nil
	}
	if err := g.measure(q, inner); err != nil {
		return out, err
	}
	if !at.IsZero() {
		g.trackPixels(q, at)
	}
	switch {
	case q.DarkClipped > g.cfg.MaxClipped, q.Contrast < g.cfg.MinContrast && q.Brightness < 128:
		out.Problem = models.FeedbackTooDark
	case q.BrightClipped > g.cfg.MaxClipped, q.Contrast < g.cfg.MinContrast:
		out.Problem = models.FeedbackTooBright
	case dets[0].Kind == HOGLeftProfile || dets[0].Kind == HOGRightProfile,
		math.Abs(q.Yaw) > g.cfg.MaxYaw, math.Abs(q.Roll) > g.cfg.MaxRoll:
		out.Problem = models.FeedbackLookAtCamera
	case q.Sharpness < g.cfg.MinSharpness:
		out.Problem = models.FeedbackHoldStill
	}
	return out, nil
}

// scan makes g.gray the grey copy of a BGR or grey frame and runs the HOG
// detector on it, downscaled to width when it is wider (0: full size); the
// boxes are in the scanned image's pixels, scale times the frame's.
func (g *Gater) scan(frame gocv.Mat, width int) (dets []Detection, scale float64, err error) {
	if frame.Empty() {
		return nil, 0, fmt.Errorf("empty frame")
	}
	if frame.Channels() == 1 {
		frame.CopyTo(&g.gray)
	} else {
		gocv.CvtColor(frame, &g.gray, gocv.ColorBGRToGray)
	}
	img, scale := g.gray, 1.0
	if width > 0 && g.gray.Cols() > width {
		scale = float64(width) / float64(g.gray.Cols())
		gocv.Resize(g.gray, &g.small, image.Point{}, scale, scale, gocv.InterpolationArea)
		img = g.small
	}
	dets, err = g.det.Detect(img, g.cfg.DetectAdjust)
	return dets, scale, err
}

// measure fills q's exposure, contrast, clipping, sharpness, landmarks and
// pose for the face in box (inside the frame).
func (g *Gater) measure(q *FaceQuality, box image.Rectangle) error {
	roi := g.gray.Region(box)
	s := float64(sharpFaceWidth) / float64(box.Dx())
	gocv.Resize(roi, &g.crop, image.Point{}, s, s, gocv.InterpolationArea)
	roi.Close()
	mu, sd := gocv.NewMat(), gocv.NewMat()
	defer mu.Close()
	defer sd.Close()
	gocv.MeanStdDev(g.crop, &mu, &sd)
	q.Brightness, q.Contrast = mu.GetDoubleAt(0, 0), sd.GetDoubleAt(0, 0)
	n := float64(g.crop.Rows() * g.crop.Cols())
	gocv.Threshold(g.crop, &g.lap, 4, 255, gocv.ThresholdBinaryInv)
	q.DarkClipped = float64(gocv.CountNonZero(g.lap)) / n
	gocv.Threshold(g.crop, &g.lap, 250, 255, gocv.ThresholdBinary)
	q.BrightClipped = float64(gocv.CountNonZero(g.lap)) / n
	q.Scene = g.gray.Mean().Val1
	// Sharpness on the lifted face: the Laplacian of a dim face shrinks
	// with its exposure, and blur is what this gate is for.
	liftExposure(g.crop, &g.crop, q.Brightness)
	gocv.Laplacian(g.crop, &g.lap, gocv.MatTypeCV16S, 1, 1, 0, gocv.BorderDefault)
	gocv.MeanStdDev(g.lap, &mu, &sd)
	q.Sharpness = sd.GetDoubleAt(0, 0) * sd.GetDoubleAt(0, 0)

	lm, err := g.landmarks(box, q.Brightness)
	if err != nil {
		return err
	}
	q.Landmarks = lm
	q.Yaw, q.Roll = facePose(lm)
	q.EAR = meanEAR(lm)
	if g.cfg.TrackContinuity > 0 {
		q.Patch = alignedPatch(g.gray, lm, &g.patchTmp, &g.patchOut)
	}
	return nil
}

// landmarks predicts the 68 points on a crop around box scaled so that the
// face is shapeFaceWidth wide, and maps them back to frame pixels.
func (g *Gater) landmarks(box image.Rectangle, faceMean float64) ([]Point, error) {
	bounds := image.Rect(0, 0, g.gray.Cols(), g.gray.Rows())
	m := box.Dx() / 4
	area := image.Rect(box.Min.X-m, box.Min.Y-m, box.Max.X+m, box.Max.Y+m).Intersect(bounds)
	s := float64(shapeFaceWidth) / float64(box.Dx())
	roi := g.gray.Region(area)
	defer roi.Close()
	interp := gocv.InterpolationLinear
	if s < 1 {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(roi, &g.crop, image.Point{}, s, s, interp)
	// A dim face's landmarks are predicted on its lifted tones.
	liftExposure(g.crop, &g.crop, faceMean)
	rb := image.Rect(int(float64(box.Min.X-area.Min.X)*s), int(float64(box.Min.Y-area.Min.Y)*s),
		int(float64(box.Max.X-area.Min.X)*s), int(float64(box.Max.Y-area.Min.Y)*s))
	pts, err := g.shape.Shape(g.crop, rb)
	if err != nil {
		return nil, err
	}
	out := make([]Point, len(pts))
	for i, p := range pts {
		out[i] = Point{float64(area.Min.X) + float64(p.X)/s, float64(area.Min.Y) + float64(p.Y)/s}
	}
	return out, nil
}
