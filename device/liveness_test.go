package device

import (
	"slices"
	"testing"
	"time"
)

// mouthShapes returns a synthetic face with the mouth closed and the same
// face with it open by 0.3 nose lengths (the nose from 27 to 33, the inner
// lips at 62 and 66).
func mouthShapes() (closed, open []Point) {
	closed = synthShape()
	closed[27], closed[33] = Point{100, 70}, Point{100, 110}
	closed[62], closed[66] = Point{100, 125}, Point{100, 127}
	open = append([]Point(nil), closed...)
	open[66].Y += 12
	return closed, open
}

// TestFlatPictureVetoesExpression: a mouth that opens is evidence, unless
// the face's pixels moved as a flat picture's within the same second (a
// folded photo whose landmarks the predictor misplaces); a face that
// hardly moved in the image is left to the expression cue.
func TestFlatPictureVetoesExpression(t *testing.T) {
	s, open := mouthShapes()
	for _, tc := range []struct {
		name string
		pl   *planarity
		want string
	}{
		{"no pixel measure", nil, LivenessMotion},
		{"moved as a picture", &planarity{Deform: 0.02, Residual: 0.002}, ""},
		{"moved as a picture, noisy camera", &planarity{Deform: 0.02, Residual: 0.015, Coherent: 0.004}, ""},
		{"moved with depth", &planarity{Deform: 0.02, Residual: 0.015, Coherent: 0.012}, LivenessMotion},
		{"hardly moved", &planarity{Deform: 0.005, Residual: 0.0005}, LivenessMotion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLiveness(0.19, 0.15)
			t0 := time.Unix(0, 0)
			for i := 0; i < 8; i++ {
				sh := s
				if i >= 4 {
					sh = open
				}
				l.add(t0.Add(time.Duration(i)*133*time.Millisecond), sh, tc.pl)
			}
			if got := l.proof(); got != tc.want {
				t.Errorf("proof = %q, want %q (change %.3f, vetoed %d)", got, tc.want, l.maxRange, l.vetoed)
			}
			if tc.want == "" && l.vetoed == 0 {
				t.Error("no frame counted as vetoed")
			}
		})
	}
}

// TestDepthShowsLiveness: pixels whose residual from one homography per
// half of the face is coherent (neighbouring points stray alike, as
// parallax makes them) well beyond the tracking noise, while the face
// changes shape in the image, show a face with depth, with no change of
// expression; a picture (its coherent residual at the noise), a noisy
// camera's picture (a large residual that averages away over neighbours)
// and a face that hardly moved do not; a dim face (whose lifted grain
// strays too) needs more of both.
func TestDepthShowsLiveness(t *testing.T) {
	s := synthShape()
	for _, tc := range []struct {
		name   string
		pl     *planarity
		frames int
		want   string
	}{
		{"no pixel measure", nil, 8, ""},
		{"still", &planarity{Deform: 0.001, Residual: 0.002, Coherent: 0.001}, 8, ""},
		{"picture tilted", &planarity{Deform: 0.01, Residual: 0.003, Coherent: 0.0015}, 8, ""},
		{"picture tilted, noisy camera", &planarity{Deform: 0.01, Residual: 0.012, Coherent: 0.004}, 8, ""},
		{"head turns", &planarity{Deform: 0.01, Residual: 0.012, Coherent: 0.009}, 8, LivenessDepth},
		{"head turns, too few measures", &planarity{Deform: 0.02, Residual: 0.024, Coherent: 0.02}, 3, ""},
		{"dim face: its grain moves like depth", &planarity{Deform: 0.01, Residual: 0.012, Coherent: 0.009, Dim: true}, 8, ""},
		{"dim face that turns", &planarity{Deform: 0.02, Residual: 0.025, Coherent: 0.022, Dim: true}, 8, LivenessDepth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLiveness(0.19, 0.15)
			t0 := time.Unix(0, 0)
			for i := 0; i < tc.frames; i++ {
				// The first frame of a track has no pixel measure.
				pl := tc.pl
				if i == 0 {
					pl = nil
				}
				l.add(t0.Add(time.Duration(i)*133*time.Millisecond), s, pl)
			}
			if got := l.proof(); got != tc.want {
				t.Errorf("proof = %q, want %q (highest depth score %.2f of its threshold)", got, tc.want, l.maxDepth)
			}
		})
	}
}

// TestExpressionHeldThreeFrames: a change of expression counts when it
// holds for three of five consecutive frames (exprFilter); a camera's
// sensor noise, which moves a photo's landmarks on a frame or two, does not.
func TestExpressionHeldThreeFrames(t *testing.T) {
	s, open := mouthShapes()
	for _, tc := range []struct {
		name   string
		opened []int // frames with the mouth open
		want   string
	}{
		{"two frames", []int{3, 4}, ""},
		{"two apart", []int{2, 4}, ""},
		{"three frames", []int{3, 4, 5}, LivenessMotion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLiveness(0.19, 0.15)
			t0 := time.Unix(0, 0)
			for i := 0; i < 9; i++ {
				sh := s
				if slices.Contains(tc.opened, i) {
					sh = open
				}
				l.add(t0.Add(time.Duration(i)*67*time.Millisecond), sh, nil)
			}
			if got := l.proof(); got != tc.want {
				t.Errorf("proof = %q, want %q (change %.3f)", got, tc.want, l.maxRange)
			}
		})
	}
}
