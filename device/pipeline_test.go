package device

import (
	"context"
	"fmt"
	"image"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// TestHamiltonClip replays the face_recognition example clip with Lin-Manuel
// Miranda and Alex Lacamoire enrolled. Looking at the frames: 0-80 show a man
// in profile at the piano side (no frontal face), 84-212 show Lin-Manuel
// Miranda singing, facing the camera (faces 87-105 px in a 640x360 frame),
// 213-250 the audience with one small, blurred frontal face (a stranger),
// and no frame has two detectable faces. Alex Lacamoire is never shown
// recognisably. So: exactly one event, for Lin-Manuel Miranda, with
// liveness on (he sings and moves: non-rigid motion, depth).
func TestHamiltonClip(t *testing.T) {
	g := mustGallery(t, "lin_manuel_miranda", "alex_lacamoire")
	cfg := testConfig(t, recognizertest.Testdata(t, "video/short_hamilton_clip.mp4"))
	// The clip is a stage shot, 640x360: faces are 73-105 px, smaller than
	// at a kiosk, so this test lowers the size gate.
	cfg.MinFaceSize = 70
	bus := NewBus()
	fb := collectFeedback(t, bus)
	p := NewPipeline(cfg, mustOpenGater(t, cfg), mustEncoder(t), g.matcher, g.db, bus, testLogger(t))
	var twoFaceTracks []uint64
	p.onGate = func(_ time.Time, gt *Gate, tr *track) {
		if len(gt.Faces) > 1 && tr != nil {
			twoFaceTracks = append(twoFaceTracks, tr.id)
		}
	}
	mustRun(t, p, 3*time.Minute)
	if got := g.events(t); !slices.Equal(got, []string{"lin_manuel_miranda"}) {
		t.Errorf("events = %v, want exactly one for lin_manuel_miranda; feedback %v", got, fb.kinds())
	}
	if len(twoFaceTracks) > 0 {
		t.Errorf("a track survived a two-face frame: %v", twoFaceTracks)
	}
	evs, _, err := g.db.ListAttendance(context.Background(), models.AttendanceFilter{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("list: %v %d", err, len(evs))
	}
	if l := evs[0].Liveness; l != LivenessMotion && l != LivenessBlink && l != LivenessDepth {
		t.Errorf("liveness = %q, want blink, motion or depth", l)
	}
	if evs[0].KioskID != cfg.KioskID || evs[0].Distance <= 0 || evs[0].Distance > 0.6 {
		t.Errorf("event = %+v", evs[0])
	}
	st := p.Status()
	if st.State != CameraStopped || st.Frames != 275 || st.Processed+st.Idle != 275 {
		t.Errorf("status = %+v", st)
	}
}

// TestHamiltonPaced replays the part of the clip where Lin-Manuel Miranda
// faces the camera at its real pace, as a camera would deliver it: frames
// the pipeline is too busy for are dropped and encodings are applied by the
// encoding goroutine as they finish. Still exactly one event, with liveness.
func TestHamiltonPaced(t *testing.T) {
	g := mustGallery(t, "lin_manuel_miranda", "alex_lacamoire")
	cfg := testConfig(t, mustTrimClip(t, 70, 160))
	cfg.MinFaceSize = 70
	cfg.Pace = true
	p := NewPipeline(cfg, mustOpenGater(t, cfg), mustEncoder(t), g.matcher, g.db, NewBus(), testLogger(t))
	mustRun(t, p, time.Minute)
	if got := g.events(t); !slices.Equal(got, []string{"lin_manuel_miranda"}) {
		t.Errorf("events = %v, want exactly one for lin_manuel_miranda", got)
	}
	if st := p.Status(); st.Frames != 90 || st.Processed+st.Idle+st.Dropped != st.Frames || st.Encodings == 0 {
		t.Errorf("status = %+v", st)
	}
}

// TestScenarioOneEventPerPerson: empty -> A (2 s) -> A and B -> B -> still
// photo of A, with liveness off (every person in these videos is a pasted
// photo, which liveness rightly refuses: TestLivenessRefusesPhotos covers
// that, TestHamiltonClip the live positive). One event for A, one for B, "one
// person at a time" while both are in view, nothing from the pair.
func TestScenarioOneEventPerPerson(t *testing.T) {
	g := mustGallery(t, "obama", "biden")
	a := mustPerson(t, "people/obama/1.jpg", 150)
	b := mustPerson(t, "people/biden/1.jpg", 150)
	pa := mustPerson(t, "people/obama/1.jpg", 120)
	pb := mustPerson(t, "people/biden/1.jpg", 120)
	video := mustWriteVideo(t, "scenario",
		scene{frames: secs(1)},
		scene{frames: secs(2), draw: shifted(a)},
		scene{frames: secs(2), draw: pair(pa, pb)},
		scene{frames: secs(2), draw: shifted(b)},
		scene{frames: secs(0.5)},
		scene{frames: secs(2), draw: still(a)},
	)
	cfg := testConfig(t, video)
	cfg.Liveness = false
	bus := NewBus()
	fb := collectFeedback(t, bus)
	p := NewPipeline(cfg, mustOpenGater(t, cfg), mustEncoder(t), g.matcher, g.db, bus, testLogger(t))
	var pairFrames, pairEncodes int
	p.onGate = func(_ time.Time, gt *Gate, tr *track) {
		if len(gt.Faces) == 2 {
			pairFrames++
			if tr != nil {
				pairEncodes++
			}
		}
	}
	mustRun(t, p, 2*time.Minute)
	if got := g.events(t); !slices.Equal(got, []string{"obama", "biden"}) {
		t.Errorf("events = %v, want [obama biden]; feedback %v", got, fb.kinds())
	}
	if pairFrames < secs(2)-2 {
		t.Errorf("two faces seen in %d frames, want about %d", pairFrames, secs(2))
	}
	if pairEncodes != 0 {
		t.Errorf("%d two-face frames kept a track", pairEncodes)
	}
	if fb.count(models.FeedbackOnePerson) == 0 {
		t.Errorf("no one-person-please feedback: %v", fb.kinds())
	}
	if n := fb.count(models.FeedbackRecognised); n < 2 {
		t.Errorf("recognised feedback %d times, want >= 2: %v", n, fb.kinds())
	}
}

// TestLivenessRefusesPhotos: the same kind of video with liveness on
// and no cooldown. Every face in it is a photo: still, shifted a few pixels
// per frame, tilted in 3D, or folded along the nose and rocked. None may
// produce attendance.
func TestLivenessRefusesPhotos(t *testing.T) {
	g := mustGallery(t, "obama", "biden")
	a := mustPerson(t, "people/obama/1.jpg", 150)
	video := mustWriteVideo(t, "photos",
		scene{frames: secs(0.5)},
		scene{frames: secs(3), draw: still(a)},
		scene{frames: secs(1.5)},
		scene{frames: secs(3), draw: shifted(a)},
		scene{frames: secs(1.5)},
		scene{frames: secs(3), draw: tilted(a)},
		scene{frames: secs(1.5)},
		scene{frames: secs(3), draw: folded(a, 40, 1)},
	)
	cfg := testConfig(t, video)
	cfg.Cooldown = 0
	cfg.LivenessTimeout = 2 * time.Second
	bus := NewBus()
	fb := collectFeedback(t, bus)
	p := NewPipeline(cfg, mustOpenGater(t, cfg), mustEncoder(t), g.matcher, g.db, bus, testLogger(t))
	motion := map[uint64]float64{}
	p.onGate = func(_ time.Time, _ *Gate, tr *track) {
		if tr != nil {
			motion[tr.id] = tr.live.maxRange
		}
	}
	mustRun(t, p, 2*time.Minute)
	t.Logf("largest expression change per track: %v (threshold %v)", motion, cfg.LivenessMotion)
	if got := g.events(t); len(got) != 0 {
		t.Errorf("events = %v from photos, want none", got)
	}
	if n := fb.count(models.FeedbackLivenessFailed); n < 4 {
		t.Errorf("liveness_failed %d times, want one per photo (4): %v", n, fb.kinds())
	}
	if st := p.Status(); st.LivenessFailed < 4 || st.Encodings == 0 {
		t.Errorf("status = %+v", st)
	}
}

// TestLivenessRefusesPhotoSwap: two photos of one person swapped in place
// every half second, liveness on, no cooldown. Each swap changes the
// landmarks' shape as an expression would, so without the continuity check
// the swaps pass for live motion (the control run records attendance); with
// it, every swap starts the track over and nothing is recorded.
func TestLivenessRefusesPhotoSwap(t *testing.T) {
	run := func(t *testing.T, name, a, b string, continuity float64) ([]string, CameraStatus) {
		g := mustGallery(t, name)
		video := mustWriteVideo(t, "swap", scene{frames: secs(0.5)},
			scene{frames: secs(6), draw: swapping(mustPerson(t, "people/"+name+"/"+a, 150), mustPerson(t, "people/"+name+"/"+b, 150), secs(0.5))})
		cfg := testConfig(t, video)
		cfg.Cooldown = 0
		cfg.TrackContinuity = continuity
		return g.run(t, cfg)
	}
	t.Run("control", func(t *testing.T) {
		if got, _ := run(t, "obama", "1.jpg", "2.jpg", 0); len(got) == 0 {
			t.Fatal("without the continuity check the swap was refused anyway: this test proves nothing")
		}
	})
	for _, sw := range [][3]string{{"obama", "1.jpg", "2.jpg"}, {"biden", "1.jpg", "2.jpg"}, {"alex_lacamoire", "1.jpg", "2.png"}} {
		t.Run(sw[0], func(t *testing.T) {
			got, st := run(t, sw[0], sw[1], sw[2], DefaultTrackContinuity)
			if len(got) != 0 {
				t.Errorf("events = %v from swapped photos, want none", got)
			}
			// 11 swaps in 6 s.
			if st.AppearanceBreaks < 10 {
				t.Errorf("appearance breaks = %d, want one per swap (11)", st.AppearanceBreaks)
			}
		})
	}
}

// mustHandOverClip writes frames [from, to) of the Hamilton clip (the
// performer, live) followed by 2 s of its last frame with a photo of
// photoRel pasted where the performer's face was, at the same width: a
// photo held up in the place a live face has just left.
func mustHandOverClip(tb testing.TB, from, to int, photoRel string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "handover.avi")
	vw, last, fps := mustCopyClip(tb, path, from, to)
	defer vw.Close()
	defer last.Close()
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(last, &gray, gocv.ColorBGRToGray)
	box := mustOneFace(tb, gray, fmt.Sprintf("clip frame %d", to-1))
	p := mustPerson(tb, photoRel, box.Dx())
	centre := image.Pt((box.Min.X+box.Max.X)/2, (box.Min.Y+box.Max.Y)/2)
	for i := 0; i < int(2*fps); i++ {
		f := last.Clone()
		paste(&f, p, centre.X, centre.Y)
		err := vw.Write(f)
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
	}
	return path
}

// TestLivenessNotLentToPhoto: a live person who is not enrolled (the
// performer; Rose Leslie is enrolled) shows liveness, then a photo of an
// enrolled person is held up in the same place within a second. The track must not carry the live person's
// evidence over to the photo (the control run, continuity check off, shows
// that it did), so nothing is recorded.
func TestLivenessNotLentToPhoto(t *testing.T) {
	run := func(t *testing.T, continuity float64) ([]string, CameraStatus) {
		g := mustGallery(t, "rose_leslie")
		cfg := testConfig(t, mustHandOverClip(t, 84, 150, "people/rose_leslie/1.jpg"))
		cfg.MinFaceSize = 70
		cfg.Cooldown = 0
		cfg.TrackContinuity = continuity
		return g.run(t, cfg)
	}
	t.Run("control", func(t *testing.T) {
		if got, _ := run(t, 0); !slices.Equal(got, []string{"rose_leslie"}) {
			t.Fatalf("without the continuity check: events %v, want the photo recorded: this test proves nothing", got)
		}
	})
	t.Run("checked", func(t *testing.T) {
		got, st := run(t, DefaultTrackContinuity)
		if len(got) != 0 {
			t.Errorf("events = %v: the photo inherited the live face's liveness", got)
		}
		if st.AppearanceBreaks == 0 {
			t.Errorf("status = %+v, want an appearance break when the photo replaced the face", st)
		}
	})
}
