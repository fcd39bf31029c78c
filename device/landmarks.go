package device

import "math"

// Point is a landmark in frame pixels, with sub-pixel precision (landmarks
// are predicted on a face crop scaled to a fixed size).
type Point struct{ X, Y float64 }

func (p Point) sub(q Point) Point     { return Point{p.X - q.X, p.Y - q.Y} }
func (p Point) dist(q Point) float64  { return math.Hypot(p.X-q.X, p.Y-q.Y) }
func (p Point) scale(s float64) Point { return Point{p.X * s, p.Y * s} }
func (p Point) add(q Point) Point     { return Point{p.X + q.X, p.Y + q.Y} }
func centroid(pts []Point) (c Point) {
	for _, p := range pts {
		c = c.add(p)
	}
	return c.scale(1 / float64(len(pts)))
}

// Indices into dlib's 68-point layout (iBUG 300-W).
const (
	lmJawLeft    = 0 // the person's right side, image left
	lmJawRight   = 16
	lmNoseTip    = 30
	lmRightEye0  = 36 // image-left eye: 36-41
	lmLeftEye0   = 42 // image-right eye: 42-47
	lmInnerFirst = 17 // brows, nose, eyes and mouth: the stable inner points
	lmCount      = 68
)

// eyeCenter returns the mean of the six points of the eye starting at i.
func eyeCenter(s []Point, i int) Point { return centroid(s[i : i+6]) }

// interOcular returns the distance between the eye centres.
func interOcular(s []Point) float64 {
	return eyeCenter(s, lmRightEye0).dist(eyeCenter(s, lmLeftEye0))
}

// eyeAspectRatio is Soukupová and Čech's EAR of the eye starting at i: about
// 0.3 open, under 0.2 closed.
func eyeAspectRatio(s []Point, i int) float64 {
	p := s[i : i+6]
	w := p[0].dist(p[3])
	if w == 0 {
		return 0
	}
	return (p[1].dist(p[5]) + p[2].dist(p[4])) / (2 * w)
}

// meanEAR returns the mean EAR of both eyes.
func meanEAR(s []Point) float64 {
	return (eyeAspectRatio(s, lmRightEye0) + eyeAspectRatio(s, lmLeftEye0)) / 2
}

// facePose returns the yaw as the imbalance of the nose tip's distances to
// the two sides of the jaw (0 frontal, towards ±1 in profile) and the roll
// as the eyes' tilt in degrees.
func facePose(s []Point) (yaw, roll float64) {
	dl := s[lmNoseTip].dist(s[lmJawLeft])
	dr := s[lmNoseTip].dist(s[lmJawRight])
	if dl+dr > 0 {
		yaw = (dl - dr) / (dl + dr)
	}
	d := eyeCenter(s, lmLeftEye0).sub(eyeCenter(s, lmRightEye0))
	roll = math.Atan2(d.Y, d.X) * 180 / math.Pi
	return yaw, roll
}

// expression returns five measures of a face's expression that no motion
// of a flat picture changes, nor folding it along the nose line and rocking
// the halves (the classic attack on a check for non-planar motion):
//
//   - the mouth's inner gap and its outer height, over the nose's length:
//     all four points lie on the face's midline, so a fold along it keeps
//     their ratios, and a tilt changes them only by its small perspective;
//   - each eye's opening over the height from its lower lid to its brow:
//     one column of the face, which a fold compresses as a whole;
//   - the nose tip's offset from the line from the top of the nose to the
//     chin, over that line's length, times 3: the tip stands out of the
//     face, so a head that turns moves it off the line (parallax), while
//     on a picture, flat or folded along that line, it stays on it.
//
// Speech, a smile, a squint, a blink and a head turn change at least one.
func expression(s []Point) [exprCount]float64 {
	var v [exprCount]float64
	nose := s[27].dist(s[33])
	if nose <= 0 {
		return v
	}
	eye := func(top0, top1, bot0, bot1, brow0, brow1 int) float64 {
		h := s[brow0].dist(s[bot0]) + s[brow1].dist(s[bot1])
		if h <= 0 {
			return 0
		}
		return (s[top0].dist(s[bot0]) + s[top1].dist(s[bot1])) / h
	}
	v[0] = s[62].dist(s[66]) / nose
	v[1] = s[51].dist(s[57]) / nose
	v[2] = eye(37, 38, 41, 40, 19, 20)
	v[3] = eye(43, 44, 47, 46, 23, 24)
	axis := s[8].sub(s[27])
	if n := math.Hypot(axis.X, axis.Y); n > 0 {
		tip := s[lmNoseTip].sub(s[27])
		v[4] = 3 * (tip.X*axis.Y - tip.Y*axis.X) / (n * n)
	}
	return v
}

// alignedEAR maps s's eyes onto ref's frame with the homography fitted on
// the points outside the eyes, and returns the mean EAR there: tilting a
// photo squeezes its eyes, but squeezes everything else too, so the aligned
// EAR of a photo does not change while a real blink's does.
func alignedEAR(ref, s []Point) float64 {
	idx := make([]int, 0, lmCount)
	for i := lmInnerFirst; i < lmCount; i++ {
		if i < lmRightEye0 || i >= lmLeftEye0+6 {
			idx = append(idx, i)
		}
	}
	h, ok := fitHomography(s, ref, idx)
	if !ok {
		return meanEAR(s)
	}
	m := append([]Point(nil), s...)
	for i := lmRightEye0; i < lmLeftEye0+6; i++ {
		m[i] = h.apply(s[i])
	}
	return meanEAR(m)
}

// homography maps points with a 3x3 matrix (h[8] = 1), in coordinates
// normalised by the fit for conditioning.
type homography struct {
	h      [8]float64
	ca, cb Point
	sa, sb float64
}

func (h *homography) apply(p Point) Point {
	x, y := (p.X-h.ca.X)*h.sa, (p.Y-h.ca.Y)*h.sa
	w := h.h[6]*x + h.h[7]*y + 1
	if w == 0 {
		return p
	}
	u := (h.h[0]*x + h.h[1]*y + h.h[2]) / w
	v := (h.h[3]*x + h.h[4]*y + h.h[5]) / w
	return Point{u/h.sb + h.cb.X, v/h.sb + h.cb.Y}
}

// fitHomography solves the linearised DLT for the points idx of a -> b by
// least squares (normal equations, Gaussian elimination).
func fitHomography(a, b []Point, idx []int) (*homography, bool) {
	norm := func(s []Point) (Point, float64) {
		var c Point
		for _, i := range idx {
			c = c.add(s[i])
		}
		c = c.scale(1 / float64(len(idx)))
		var d float64
		for _, i := range idx {
			d += s[i].dist(c)
		}
		d /= float64(len(idx))
		if d == 0 {
			return c, 0
		}
		return c, math.Sqrt2 / d
	}
	h := &homography{}
	h.ca, h.sa = norm(a)
	h.cb, h.sb = norm(b)
	if h.sa == 0 || h.sb == 0 {
		return nil, false
	}
	var ata [8][8]float64
	var atb [8]float64
	addRow := func(r [8]float64, t float64) {
		for i := 0; i < 8; i++ {
			for j := 0; j < 8; j++ {
				ata[i][j] += r[i] * r[j]
			}
			atb[i] += r[i] * t
		}
	}
	for _, i := range idx {
		x, y := (a[i].X-h.ca.X)*h.sa, (a[i].Y-h.ca.Y)*h.sa
		u, v := (b[i].X-h.cb.X)*h.sb, (b[i].Y-h.cb.Y)*h.sb
		addRow([8]float64{x, y, 1, 0, 0, 0, -x * u, -y * u}, u)
		addRow([8]float64{0, 0, 0, x, y, 1, -x * v, -y * v}, v)
	}
	sol, ok := solveN(ata, atb)
	if !ok {
		return nil, false
	}
	h.h = sol
	return h, true
}

// solveN solves m x = r by Gaussian elimination with partial pivoting.
func solveN(m [8][8]float64, r [8]float64) ([8]float64, bool) {
	const n = 8
	for c := 0; c < n; c++ {
		p := c
		for i := c + 1; i < n; i++ {
			if math.Abs(m[i][c]) > math.Abs(m[p][c]) {
				p = i
			}
		}
		if math.Abs(m[p][c]) < 1e-12 {
			return r, false
		}
		m[c], m[p] = m[p], m[c]
		r[c], r[p] = r[p], r[c]
		for i := c + 1; i < n; i++ {
			f := m[i][c] / m[c][c]
			for j := c; j < n; j++ {
				m[i][j] -= f * m[c][j]
			}
			r[i] -= f * r[c]
		}
	}
	var x [8]float64
	for i := n - 1; i >= 0; i-- {
		s := r[i]
		for j := i + 1; j < n; j++ {
			s -= m[i][j] * x[j]
		}
		x[i] = s / m[i][i]
	}
	return x, true
}
