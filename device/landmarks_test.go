package device

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// synthShape returns a plausible 68-point face: points on an ellipse with
// the eyes at their iBUG indices, open (EAR about 0.3).
func synthShape() []Point {
	s := make([]Point, lmCount)
	for i := range s {
		a := float64(i) / lmCount * 2 * math.Pi
		s[i] = Point{100 + 40*math.Cos(a*3), 100 + 50*math.Sin(a*2)}
	}
	eye := func(i0 int, cx float64) {
		pts := []Point{{cx - 12, 80}, {cx - 5, 76}, {cx + 5, 76}, {cx + 12, 80}, {cx + 5, 84}, {cx - 5, 84}}
		copy(s[i0:], pts)
	}
	eye(lmRightEye0, 80)
	eye(lmLeftEye0, 120)
	return s
}

func affine(s []Point, a, b, c, d, tx, ty float64) []Point {
	out := make([]Point, len(s))
	for i, p := range s {
		out[i] = Point{a*p.X + b*p.Y + tx, c*p.X + d*p.Y + ty}
	}
	return out
}

func TestExpressionIgnoresPictureMotion(t *testing.T) {
	s := synthShape()
	th := 0.2
	// A similarity (shift, turn, scale) keeps every ratio.
	moved := affine(s, 1.1*math.Cos(th), -1.1*math.Sin(th), 1.1*math.Sin(th), 1.1*math.Cos(th), 13, -7)
	a, b := expression(s), expression(moved)
	for k := range a {
		if math.Abs(a[k]-b[k]) > 1e-9 {
			t.Errorf("measure %d changed by a similarity: %v -> %v", k, a[k], b[k])
		}
	}
	// Open the mouth: the gap grows by 8 px, over a synthetic "nose" of
	// about 100 px.
	open := append([]Point(nil), s...)
	for i := 65; i < 68; i++ {
		open[i].Y += 8
	}
	open[57].Y += 8
	if d := expression(open)[0] - a[0]; d < 0.05 {
		t.Errorf("mouth gap grew by %v after opening the mouth, want > 0.05", d)
	}
}

func TestEARAndBlink(t *testing.T) {
	s := synthShape()
	if ear := eyeAspectRatio(s, lmRightEye0); math.Abs(ear-1.0/3) > 0.01 {
		t.Errorf("EAR = %v, want 1/3", ear)
	}
	closed := append([]Point(nil), s...)
	for _, i0 := range []int{lmRightEye0, lmLeftEye0} {
		closed[i0+1].Y, closed[i0+2].Y = 79, 79
		closed[i0+4].Y, closed[i0+5].Y = 81, 81
	}
	l := newLiveness(0.19, 0.15)
	var n int
	at := func() time.Time { n++; return time.Unix(0, 0).Add(time.Duration(n) * 66 * time.Millisecond) }
	rng := rand.New(rand.NewPCG(1, 2))
	jitter := func(s []Point) []Point {
		out := append([]Point(nil), s...)
		for i := range out {
			out[i].X += rng.NormFloat64() * 0.05
			out[i].Y += rng.NormFloat64() * 0.05
		}
		return out
	}
	for _, sh := range [][]Point{s, s, closed, closed} {
		l.add(at(), jitter(sh), nil)
	}
	if l.proof() == LivenessBlink {
		t.Fatal("blink before the eyes reopened")
	}
	l.add(at(), jitter(s), nil)
	if l.proof() != LivenessBlink {
		t.Errorf("proof = %q, want blink", l.proof())
	}
	// A photo: the same shape moved rigidly never proves anything.
	still := newLiveness(0.19, 0.15)
	for i := 0; i < 60; i++ {
		still.add(at(), jitter(affine(s, 1, 0, 0, 1, float64(i%5), float64(i%3))), nil)
	}
	if still.proof() != "" {
		t.Errorf("rigid motion proved liveness: %q (motion %v)", still.proof(), still.maxRange)
	}
}

func TestVotes(t *testing.T) {
	v := votes{m: 3}
	v.add(vote{userID: "a", distance: 0.4})
	v.add(vote{userID: ""})
	if _, _, ok := v.winner(2); ok {
		t.Fatal("winner after one vote")
	}
	v.add(vote{userID: "a", distance: 0.5})
	if id, d, ok := v.winner(2); !ok || id != "a" || math.Abs(d-0.45) > 1e-9 {
		t.Errorf("winner = %v %v %v", id, d, ok)
	}
	v.add(vote{userID: "b"})
	v.add(vote{userID: "b"})
	if id, _, _ := v.winner(2); id != "b" {
		t.Errorf("winner after the window moved = %q", id)
	}
	if len(v.ring) != 3 {
		t.Errorf("kept %d votes, want 3", len(v.ring))
	}
}
