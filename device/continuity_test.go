package device

import (
	"fmt"
	"image"
	"slices"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// mustPatch gates frame and returns its one face's patch.
func mustPatch(tb testing.TB, g *Gater, frame gocv.Mat) facePatch {
	tb.Helper()
	gt, err := g.Check(frame, time.Time{})
	if err != nil || gt.Face == nil || gt.Face.Patch == nil {
		tb.Fatalf("no face patch (faces %d, err %v)", len(gt.Faces), err)
	}
	return gt.Face.Patch
}

// quantiles formats the spread of xs for logs.
func quantiles(xs []float64) string {
	if len(xs) == 0 {
		return "none"
	}
	return fmt.Sprintf("n=%d min=%.3f p5=%.3f p50=%.3f max=%.3f", len(xs), slices.Min(xs), percentile(xs, 0.05), percentile(xs, 0.5), slices.Max(xs))
}

func TestFacePatchSimilarity(t *testing.T) {
	g := mustGater(t)
	p := mustPerson(t, "people/obama/1.jpg", 150)
	f := background()
	defer f.Close()
	paste(&f, p, scenW/2, scenH/2-20)
	base := mustPatch(t, g, f)
	if s := base.similarity(base); s < 0.999 || s > 1.001 {
		t.Errorf("self similarity = %v, want 1", s)
	}
	if s := base.similarity(nil); s != 1 {
		t.Errorf("similarity to nothing = %v, want 1 (nothing to compare)", s)
	}

	// The same face turned 12 degrees in the image plane, smaller and
	// elsewhere: the eye alignment undoes all three.
	rot := gocv.GetRotationMatrix2D(image.Pt(scenW/2, scenH/2-20), 12, 0.8)
	defer rot.Close()
	moved := gocv.NewMat()
	defer moved.Close()
	gocv.WarpAffineWithParams(f, &moved, rot, image.Pt(scenW, scenH), gocv.InterpolationLinear, gocv.BorderReplicate, gocvColor(0, 0, 0))
	if s := base.similarity(mustPatch(t, g, moved)); s < 0.9 {
		t.Errorf("similarity to the same photo turned and scaled = %.3f, want >= 0.9", s)
	}

	// Another person in the same place is not the same face.
	other := background()
	defer other.Close()
	paste(&other, mustPerson(t, "people/biden/1.jpg", 150), scenW/2, scenH/2-20)
	if s := base.similarity(mustPatch(t, g, other)); s >= DefaultTrackContinuity {
		t.Errorf("similarity to another person = %.3f, want < %v", s, DefaultTrackContinuity)
	}

	// No landmarks or a flat image: no patch.
	gray := gocv.NewMatWithSize(100, 100, gocv.MatTypeCV8U)
	defer gray.Close()
	tmp, out := gocv.NewMat(), gocv.NewMat()
	defer tmp.Close()
	defer out.Close()
	if alignedPatch(gray, nil, &tmp, &out) != nil {
		t.Error("patch without landmarks")
	}
	lm := make([]Point, lmCount)
	for i := range lm {
		lm[i] = Point{float64(30 + i%40), float64(30 + i%20)}
	}
	if alignedPatch(gray, lm, &tmp, &out) != nil {
		t.Error("patch of a flat image")
	}
}

// TestContinuityMeasured checks the separation DefaultTrackContinuity rests
// on, with real faces: a live, moving performer keeps above it between
// frames up to 4 apart (133 ms: a kiosk gating at 7.5 fps); a photo moved
// or tilted keeps far above it; the unlike photo swaps fall below it. The
// log shows the whole spread, including the swap it does not catch.
func TestContinuityMeasured(t *testing.T) {
	// Live: the Hamilton clip's frames 84-212 (Lin-Manuel Miranda singing,
	// moving, under stage light), every frame gated.
	g := mustGallery(t, "lin_manuel_miranda")
	cfg := testConfig(t, recognizertest.Testdata(t, "video/short_hamilton_clip.mp4"))
	cfg.MinFaceSize = 70
	cfg.IdleHeartbeat = 0 // every frame gated: the indices below are frame numbers
	p := NewPipeline(cfg, mustOpenGater(t, cfg), mustEncoder(t), g.matcher, g.db, NewBus(), nil)
	var live []facePatch // by frame number, nil when no single face
	var trackID uint64
	var restarts []int
	p.onGate = func(_ time.Time, gt *Gate, tr *track) {
		var pt facePatch
		if gt.Face != nil && len(gt.Faces) == 1 {
			pt = gt.Face.Patch
		}
		live = append(live, pt)
		if tr != nil {
			if trackID != 0 && tr.id != trackID {
				restarts = append(restarts, len(live)-1)
			}
			trackID = tr.id
		}
	}
	mustRun(t, p, 3*time.Minute)
	// The one restart expected is at the cut to the audience (frame 216,
	// a stranger where the performer was): that one is right.
	for _, f := range restarts {
		if f <= 212 {
			t.Errorf("the performer's track restarted at frame %d", f)
		}
	}
	t.Logf("track restarts at frames %v; appearance breaks %d", restarts, p.Status().AppearanceBreaks)
	for lag := 1; lag <= 4; lag++ {
		var xs []float64
		for i := 84 + lag; i <= 212 && i < len(live); i++ {
			if live[i] != nil && live[i-lag] != nil {
				xs = append(xs, live[i].similarity(live[i-lag]))
			}
		}
		t.Logf("live face, frames %d apart: %s", lag, quantiles(xs))
		if len(xs) < 90 {
			t.Errorf("only %d live pairs %d apart", len(xs), lag)
		} else if m := slices.Min(xs); m < DefaultTrackContinuity {
			t.Errorf("live face %d frames apart: similarity %.3f < %v", lag, m, DefaultTrackContinuity)
		}
	}

	gt := mustGater(t)
	// A photo moved or tilted from frame to frame is one face throughout.
	a := mustPerson(t, "people/obama/1.jpg", 150)
	for name, draw := range map[string]func(*gocv.Mat, int){"shifted": shifted(a), "tilted": tilted(a)} {
		var prev facePatch
		var xs []float64
		for i := 0; i < 30; i++ {
			f := background()
			draw(&f, i)
			pt := mustPatch(t, gt, f)
			f.Close()
			if prev != nil {
				xs = append(xs, pt.similarity(prev))
			}
			prev = pt
		}
		t.Logf("photo %s: %s", name, quantiles(xs))
		if m := slices.Min(xs); m < 0.8 {
			t.Errorf("photo %s: similarity %.3f between frames, want >= 0.8", name, m)
		}
	}

	// Two photos of one person swapped in place.
	for _, sw := range []struct {
		a, b   string
		caught bool
	}{
		{"obama/1.jpg", "obama/2.jpg", true},
		{"biden/1.jpg", "biden/2.jpg", true},
		{"alex_lacamoire/1.jpg", "alex_lacamoire/2.png", true},
		{"rose_leslie/1.jpg", "rose_leslie/2.jpg", false},
		{"kit_harington/1.jpg", "kit_harington/2.jpg", false},
	} {
		var ps []facePatch
		for _, rel := range []string{sw.a, sw.b} {
			f := background()
			paste(&f, mustPerson(t, "people/"+rel, 150), scenW/2, scenH/2-20)
			ps = append(ps, mustPatch(t, gt, f))
			f.Close()
		}
		s := ps[0].similarity(ps[1])
		t.Logf("swap %s -> %s: similarity %.3f", sw.a, sw.b, s)
		if sw.caught && s >= DefaultTrackContinuity {
			t.Errorf("swap %s -> %s: similarity %.3f >= %v", sw.a, sw.b, s, DefaultTrackContinuity)
		}
	}
}
