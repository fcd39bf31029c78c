package device

import (
	"cmp"
	"image"
	"math"
	"slices"
	"time"

	"gocv.io/x/gocv"
)

// parallaxFaceWidth is the face width the face's pixels are tracked at, so
// tracking noise and motion are measured on one scale for every distance.
const parallaxFaceWidth = 128

// parallaxMinPoints is how many tracked points each half of the face needs
// for its homography: fewer leave the fit without redundancy, and no
// measure is taken.
const parallaxMinPoints = 8

// parallaxBand is the half-width of the band around the fitted midline
// whose points belong to neither half, in inter-ocular distances: a fold
// near the midline, and tracking windows straddling it, stay out of both
// halves' fits.
const parallaxBand = 0.25

// parallaxWin is the Lucas-Kanade window in pixels at parallaxFaceWidth:
// small, so that few windows straddle a fold.
const parallaxWin = 11

// parallaxLag is the least time between the two frames a face's pixels are
// tracked across: at 7.5 to 15 gated frames a second, the face has moved
// enough to measure and not so much that tracking fails.
const parallaxLag = 120 * time.Millisecond

// parallaxKeep is how long the gates keep past faces to pair with.
const parallaxKeep = 400 * time.Millisecond

// parallaxTerm stops each Lucas-Kanade search; made once, as gocv frees no
// TermCriteria.
var parallaxTerm = gocv.NewTermCriteria(gocv.Count|gocv.EPS, 30, 0.01)

// faceView is one frame's face kept to track its pixels into a later frame:
// the grey area around the face, scaled so the face is parallaxFaceWidth
// wide and lifted like the landmarks' crop, and its landmarks there.
type faceView struct {
	at    time.Time
	area  image.Rectangle // in frame pixels
	scale float64
	face  float64 // face luma, for the same exposure lift on the later frame
	crop  gocv.Mat
	lm    []Point // in crop pixels
	iod   float64 // inter-ocular distance in crop pixels
}

func (v *faceView) close() {
	if v.crop.Ptr() != nil {
		v.crop.Close()
	}
}

// newFaceView cuts the face with landmarks lm (frame pixels) out of gray.
// It returns nil when the face is too small or too close to the frame's
// edge to be cut.
func newFaceView(gray gocv.Mat, box image.Rectangle, lm []Point, faceLuma float64, at time.Time) *faceView {
	if len(lm) < lmCount || box.Dx() < 16 {
		return nil
	}
	m := box.Dx() / 4
	area := image.Rect(box.Min.X-m, box.Min.Y-m, box.Max.X+m, box.Max.Y+m).Intersect(image.Rect(0, 0, gray.Cols(), gray.Rows()))
	if area.Dx() < box.Dx() || area.Dy() < box.Dy()/2 {
		return nil
	}
	v := &faceView{at: at, area: area, scale: float64(parallaxFaceWidth) / float64(box.Dx()), face: faceLuma}
	v.crop = cutView(gray, area, v.scale, faceLuma)
	v.lm = make([]Point, len(lm))
	for i, p := range lm {
		v.lm[i] = Point{(p.X - float64(area.Min.X)) * v.scale, (p.Y - float64(area.Min.Y)) * v.scale}
	}
	v.iod = interOcular(v.lm)
	if v.iod <= 0 {
		v.close()
		return nil
	}
	return v
}

// cutView returns area of gray scaled by s and lifted as for a face of
// luma faceLuma.
func cutView(gray gocv.Mat, area image.Rectangle, s, faceLuma float64) gocv.Mat {
	roi := gray.Region(area)
	defer roi.Close()
	out := gocv.NewMat()
	interp := gocv.InterpolationLinear
	if s < 1 {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(roi, &out, image.Point{}, s, s, interp)
	liftExposure(out, &out, faceLuma)
	return out
}

// planarity is what tracking a face's pixels from one frame to a later one
// shows: how much the face changed shape in the image (beyond moving) and
// how far its pixels stray from the motion of a flat picture folded along
// the face's midline.
type planarity struct {
	// Residual is, for the half of the face (left or right of the fitted
	// midline) that fits worse, the 75th percentile of its points' distance
	// from the homography fitted to that half, in inter-ocular distances:
	// near the tracking noise for any picture, flat or folded along a line
	// near the midline, larger for a face with depth (parallax) or one that
	// changes shape.
	Residual float64
	// Deform is the median distance of the points' displacements from
	// their median (the motion that is not a translation), in inter-ocular
	// distances.
	Deform float64
	// Coherent is Residual after averaging each point's residual vector
	// with its nearest neighbours' in the same half (see halfResidual):
	// parallax moves neighbouring points alike, sensor noise does not.
	Coherent float64
	// Points is how many points were tracked in the half with fewer.
	Points int
	// Dim is set when the face was lifted (a face luma under
	// exposureLiftBelow, see liftExposure): its grain and compression
	// noise, amplified with it, stray from any homography as depth does.
	Dim bool
}

// measurePlanarity tracks the face of prev into gray (a later frame, same
// size): corners inside the face's outline, Lucas-Kanade forwards and
// backwards (points that do not come back within fbMax are dropped),
// split by the midline, a band around it excluded. ok is false when there
// were not enough points to measure (a blurred or tiny face, a face that
// left the area): the caller then has no pixel evidence either way.
func measurePlanarity(prev *faceView, gray gocv.Mat) (planarity, bool) {
	var out planarity
	if prev == nil || gray.Cols() < prev.area.Max.X || gray.Rows() < prev.area.Max.Y {
		return out, false
	}
	cur := cutView(gray, prev.area, prev.scale, prev.face)
	defer cur.Close()
	if cur.Rows() != prev.crop.Rows() || cur.Cols() != prev.crop.Cols() || cur.Rows() < 32 || cur.Cols() < 32 {
		return out, false
	}
	corners := gocv.NewMat()
	defer corners.Close()
	gocv.GoodFeaturesToTrack(prev.crop, &corners, 300, 0.005, 3)
	outline := faceOutline(prev.lm)
	var pts []Point
	for i := 0; i < corners.Rows(); i++ {
		c := corners.GetVecfAt(i, 0)
		p := Point{float64(c[0]), float64(c[1])}
		if inPolygon(outline, p) {
			pts = append(pts, p)
		}
	}
	if len(pts) < 2*parallaxMinPoints {
		return out, false
	}
	p0 := pointsMat(pts)
	defer p0.Close()
	p1, back := gocv.NewMat(), gocv.NewMat()
	st, st2, e1, e2 := gocv.NewMat(), gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer func() {
		for _, m := range []*gocv.Mat{&p1, &back, &st, &st2, &e1, &e2} {
			m.Close()
		}
	}()
	gocv.CalcOpticalFlowPyrLKWithParams(prev.crop, cur, p0, p1, &st, &e1, image.Pt(parallaxWin, parallaxWin), 3, parallaxTerm, 0, 1e-4)
	if p1.Rows() != len(pts) {
		return out, false
	}
	gocv.CalcOpticalFlowPyrLKWithParams(cur, prev.crop, p1, back, &st2, &e2, image.Pt(parallaxWin, parallaxWin), 3, parallaxTerm, 0, 1e-4)
	if back.Rows() != len(pts) || st.Rows() != len(pts) || st2.Rows() != len(pts) {
		return out, false
	}
	// The midline: least squares x = a + b*y through the nose bridge,
	// nose base, lips and chin (the face is upright within the pose gate).
	axis := []int{27, 28, 29, 30, 33, 51, 62, 66, 57, 8}
	var sy, sx, syy, sxy float64
	for _, i := range axis {
		p := prev.lm[i]
		sy, sx, syy, sxy = sy+p.Y, sx+p.X, syy+p.Y*p.Y, sxy+p.X*p.Y
	}
	n := float64(len(axis))
	den := n*syy - sy*sy
	if den == 0 {
		return out, false
	}
	b := (n*sxy - sx*sy) / den
	a := (sx - b*sy) / n
	norm := math.Sqrt(1 + b*b)
	fbMax := 0.01 * prev.iod
	band := parallaxBand * prev.iod
	var from, to [2][]Point
	var fx, fy []float64
	for i, p := range pts {
		if st.GetUCharAt(i, 0) == 0 || st2.GetUCharAt(i, 0) == 0 {
			continue
		}
		q := p1.GetVecfAt(i, 0)
		r := back.GetVecfAt(i, 0)
		qp := Point{float64(q[0]), float64(q[1])}
		if p.dist(Point{float64(r[0]), float64(r[1])}) > fbMax {
			continue
		}
		fx, fy = append(fx, qp.X-p.X), append(fy, qp.Y-p.Y)
		d := (p.X - (a + b*p.Y)) / norm
		switch {
		case d < -band:
			from[0], to[0] = append(from[0], p), append(to[0], qp)
		case d > band:
			from[1], to[1] = append(from[1], p), append(to[1], qp)
		}
	}
	out.Points = min(len(from[0]), len(from[1]))
	if out.Points < parallaxMinPoints {
		return out, false
	}
	mx, my := percentile(fx, 0.5), percentile(fy, 0.5)
	dev := make([]float64, len(fx))
	for i := range fx {
		dev[i] = math.Hypot(fx[i]-mx, fy[i]-my)
	}
	out.Deform = percentile(dev, 0.5) / prev.iod
	out.Dim = prev.face < exposureLiftBelow
	for h := 0; h < 2; h++ {
		r, c, ok := halfResidual(from[h], to[h])
		if !ok {
			return out, false
		}
		out.Residual = max(out.Residual, r/prev.iod)
		out.Coherent = max(out.Coherent, c/prev.iod)
	}
	return out, true
}

// parallaxNeighbours is how many points (itself included) each point's
// residual vector is averaged over for planarity.Coherent.
const parallaxNeighbours = 6

// halfResidual fits a homography a -> b by least squares, refits it on the
// points within three times the median residual (a tracking error must not
// bend the fit), and returns the 75th percentile of all points' residuals
// and of their residual vectors averaged over each point's
// parallaxNeighbours nearest points.
func halfResidual(a, b []Point) (res75, coh75 float64, ok bool) {
	idx := make([]int, len(a))
	for i := range idx {
		idx[i] = i
	}
	res := make([]float64, len(a))
	vec := make([]Point, len(a))
	for pass := 0; pass < 2; pass++ {
		h, ok := fitHomography(a, b, idx)
		if !ok {
			return 0, 0, false
		}
		for i := range a {
			q := h.apply(a[i])
			vec[i] = Point{b[i].X - q.X, b[i].Y - q.Y}
			res[i] = q.dist(b[i])
		}
		if pass == 0 {
			cut := 3 * percentile(res, 0.5)
			idx = idx[:0]
			for i, r := range res {
				if r <= cut {
					idx = append(idx, i)
				}
			}
			if len(idx) < parallaxMinPoints {
				return 0, 0, false
			}
		}
	}
	return percentile(res, 0.75), percentile(coherentResiduals(a, vec), 0.75), true
}

// coherentResiduals returns, for each point of a, the length of the mean
// residual vector of its parallaxNeighbours nearest points (itself
// included).
func coherentResiduals(a, vec []Point) []float64 {
	k := min(parallaxNeighbours, len(a))
	out := make([]float64, len(a))
	d := make([]float64, len(a))
	order := make([]int, len(a))
	for i := range a {
		for j := range a {
			d[j] = a[i].dist(a[j])
			order[j] = j
		}
		slices.SortFunc(order, func(x, y int) int { return cmp.Compare(d[x], d[y]) })
		var sx, sy float64
		for _, j := range order[:k] {
			sx, sy = sx+vec[j].X, sy+vec[j].Y
		}
		out[i] = math.Hypot(sx, sy) / float64(k)
	}
	return out
}

// faceOutline is the polygon of the jaw and the brows: the face's pixels.
func faceOutline(lm []Point) []Point {
	out := append([]Point(nil), lm[0:17]...)
	for i := 26; i >= 17; i-- {
		out = append(out, lm[i])
	}
	return out
}

// inPolygon reports whether p lies inside poly (even-odd rule).
func inPolygon(poly []Point, p Point) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a.Y > p.Y) != (b.Y > p.Y) && p.X < (b.X-a.X)*(p.Y-a.Y)/(b.Y-a.Y)+a.X {
			in = !in
		}
	}
	return in
}

// pointsMat returns pts as an n x 1 CV_32FC2 Mat, the layout OpenCV's
// point functions take.
func pointsMat(pts []Point) gocv.Mat {
	m := gocv.NewMatWithSize(len(pts), 1, gocv.MatTypeCV32FC2)
	for i, p := range pts {
		m.SetFloatAt(i, 0, float32(p.X))
		m.SetFloatAt(i, 1, float32(p.Y))
	}
	return m
}
