package device

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// liveClip is one of the shared clips of a real person, with the frame its
// person is enrolled from (an early frame of the clip itself: the clips
// come with no separate photos).
type liveClip struct {
	name  string
	enrol int
}

// liveClips are every clip of video/live (see testdata/README.md).
var liveClips = []liveClip{
	{"lp-d0", 0}, {"lp-d3", 0}, {"lp-d6", 0}, {"lp-d9", 6}, {"lp-d10", 0},
	{"retalking-face1", 8}, {"retalking-face2", 22}, {"tvl-real", 24},
}

// clipCopy says which frames of a clip to copy and how.
type clipCopy struct {
	from, to int     // frames [from, to); to <= 0 copies to the end
	step     int     // keep every step-th frame (the copy's rate is divided by it)
	gain     float64 // multiply pixel values (darken below 1); 0 keeps them
	noise    float64 // Gaussian sensor noise added to each frame, in grey levels
}

// mustClipCopy copies frames of the shared clip rel to an MJPEG AVI in a
// temp folder and returns its path and frame rate.
func mustClipCopy(tb testing.TB, rel string, o clipCopy) (string, float64) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), filepath.Base(rel)+".avi")
	vw, last, fps := mustCopyClipFrom(tb, rel, path, o)
	last.Close()
	if err := vw.Close(); err != nil {
		tb.Fatal(err)
	}
	return path, fps
}

// mustCopyClipFrom copies frames of the shared clip rel to an MJPEG AVI at
// path as o says. It returns the writer, still open for more frames (the
// caller closes it), the last frame read and the copy's frame rate.
func mustCopyClipFrom(tb testing.TB, rel, path string, o clipCopy) (*gocv.VideoWriter, gocv.Mat, float64) {
	tb.Helper()
	src, err := gocv.VideoCaptureFile(recognizertest.Testdata(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	step := max(o.step, 1)
	fps := src.Get(gocv.VideoCaptureFPS) / float64(step)
	w, h := int(src.Get(gocv.VideoCaptureFrameWidth)), int(src.Get(gocv.VideoCaptureFrameHeight))
	vw, err := gocv.VideoWriterFile(path, "MJPG", fps, w, h, true)
	if err != nil {
		tb.Fatal(err)
	}
	m := gocv.NewMat()
	for i := 0; (o.to <= 0 || i < o.to) && src.Read(&m); i++ {
		if i < o.from || (i-o.from)%step != 0 {
			continue
		}
		sensor(&m, i, o.gain, o.noise)
		if err := vw.Write(m); err != nil {
			m.Close()
			vw.Close()
			tb.Fatal(err)
		}
	}
	return vw, m, fps
}

// mustClipFrame returns frame i of the shared clip rel.
func mustClipFrame(tb testing.TB, rel string, i int) gocv.Mat {
	tb.Helper()
	src, err := gocv.VideoCaptureFile(recognizertest.Testdata(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	m := gocv.NewMat()
	for k := 0; k <= i; k++ {
		if !src.Read(&m) {
			m.Close()
			tb.Fatalf("%s has no frame %d", rel, i)
		}
	}
	return m
}

// enrolFrame enrols name from the largest face in frame i of clip rel.
func (g *gallery) enrolFrame(tb testing.TB, name, rel string, i int) {
	tb.Helper()
	m := mustClipFrame(tb, rel, i)
	defer m.Close()
	faces, err := mustEncoder(tb).EncodeMat(context.Background(), m)
	if err != nil || len(faces) == 0 {
		tb.Fatalf("enrol %s from %s frame %d: %d faces, %v", name, rel, i, len(faces), err)
	}
	best := 0
	for k := range faces {
		if faces[k].Box.Dx() > faces[best].Box.Dx() {
			best = k
		}
	}
	u := bolttest.MustCreateUser(tb, g.db, &models.User{FullName: name})
	bolttest.MustAddEncoding(tb, g.db, u.ID, faces[best].Descriptor)
	g.matcher.SetUser(u.ID, []models.Descriptor{faces[best].Descriptor})
	g.ids[name] = u.ID
	g.names[u.ID] = name
}

// mustLiveGallery enrols every live clip's person from its enrolment frame.
func mustLiveGallery(tb testing.TB) *gallery {
	tb.Helper()
	g := &gallery{db: bolttest.MustOpenDB(tb), matcher: recognizer.NewMatcher(recognizer.DefaultMatcherConfig()),
		ids: map[string]string{}, names: map[string]string{}}
	for _, c := range liveClips {
		g.enrolFrame(tb, c.name, "video/live/"+c.name+".mp4", c.enrol)
	}
	return g
}

// clipRun is the outcome of one replay.
type clipRun struct {
	events []string
	// toAttendance is the video time from the first frame with a face to
	// the frame that decided the (first) event; 0 when none.
	toAttendance time.Duration
	status       CameraStatus
	// faces and tracked count the frames with one face and those whose
	// face's pixels were tracked (until the track showed liveness).
	faces, tracked int
}

// replay runs cfg's source through a pipeline with g's store and matcher.
func (g *gallery) replay(tb testing.TB, cfg Config) clipRun {
	tb.Helper()
	p := NewPipeline(cfg, mustOpenGater(tb, cfg), mustEncoder(tb), g.matcher, g.db, NewBus(), testLogger(tb))
	var firstFace, decided time.Time
	var faces, tracked int
	p.onGate = func(at time.Time, gt *Gate, _ *track) {
		if firstFace.IsZero() && len(gt.Faces) > 0 {
			firstFace = at
		}
		if gt.Face != nil {
			faces++
			if gt.Face.Planarity != nil {
				tracked++
			}
		}
	}
	p.onRecord = func(_ *models.AttendanceEvent, _ *track, at time.Time) {
		if decided.IsZero() {
			decided = at
		}
	}
	before := len(g.events(tb))
	mustRun(tb, p, 3*time.Minute)
	r := clipRun{events: g.events(tb)[before:], status: p.Status(), faces: faces, tracked: tracked}
	if !decided.IsZero() {
		r.toAttendance = decided.Sub(firstFace)
	}
	return r
}

// liveClipSeconds is how much of each live clip the tests replay: time to
// attendance is under 3 s on every clip, and the rest only costs CPU.
const liveClipSeconds = 5

// TestLiveClipsRecordedOnce replays the first seconds of every real
// person's clip (every second frame: a kiosk gating at 12-15 fps), each
// person enrolled from an early frame of their own clip, all eight
// enrolled at once, liveness on, the shipped defaults otherwise (faces in
// these clips are 236-342 px wide). Each clip must record its own person,
// exactly once, as filmed and darkened to a face luma of 40 (a dim
// office), each also with Gaussian sensor noise (8 grey levels lit, 4
// dark), and the video time from the first frame with a face to the
// decision must meet what is met of issue #10's targets (p95 <= 1.5 s,
// p50 <= 0.5 s) over the eight clips (see below and docs/liveness.md; the
// paced figure, with encoding time, is BenchmarkTimeToAttendanceLive).
func TestLiveClipsRecordedOnce(t *testing.T) {
	// run replays every clip, darkened so the face's mean luma is faceLuma
	// (0: as filmed) and with noise grey levels of sensor noise, with a gallery of its own (the other run's events
	// would hold the cooldown).
	run := func(t *testing.T, faceLuma, noise, maxP50, maxP95 float64) {
		g := mustLiveGallery(t)
		var tta []time.Duration
		for _, c := range liveClips {
			rel := "video/live/" + c.name + ".mp4"
			var gain float64
			if faceLuma > 0 {
				gain = faceLuma / liveFaceLuma[c.name]
			}
			path, _ := mustClipCopy(t, rel, clipCopy{step: 2, to: liveClipSeconds * 30, gain: gain, noise: noise})
			cfg := testConfig(t, path)
			r := g.replay(t, cfg)
			if !slices.Equal(r.events, []string{c.name}) {
				t.Errorf("%s: events %v, want exactly one for %s (status %+v)", c.name, r.events, c.name, r.status)
				continue
			}
			tta = append(tta, r.toAttendance)
			t.Logf("%s: recorded %v after the first face; pixels tracked on %d of %d frames with a face",
				c.name, r.toAttendance.Round(time.Millisecond), r.tracked, r.faces)
		}
		if len(tta) == 0 {
			return
		}
		secs := make([]float64, len(tta))
		for i, d := range tta {
			secs[i] = d.Seconds()
		}
		p50, p95 := percentile(secs, 0.5), percentile(secs, 0.95)
		t.Logf("time to attendance (video time, no encoding latency): p50 %.2f s, p95 %.2f s, max %.2f s", p50, p95, slices.Max(secs))
		// What is met of issue #10's targets, on video time (what the person does, not
		// how fast this machine encodes).
		if p50 > maxP50 || p95 > maxP95 {
			t.Errorf("time to attendance p50 %.2f s (want <= %.2f), p95 %.2f s (want <= %.2f)", p50, maxP50, p95, maxP95)
		}
	}
	// The expression cue waits for a change held three frames (exprFilter)
	// and dim faces need more pixel evidence (depthDimMinResidual), so
	// that photos seen through a noisy camera are refused: the p50 target
	// of 0.5 s is not met, nor p95 <= 1.5 s in the dark, where tvl-real
	// waits for its head turn (docs/liveness.md).
	t.Run("lit", func(t *testing.T) { run(t, 0, 0, 0.75, 1.5) })
	t.Run("dark", func(t *testing.T) { run(t, 40, 0, 0.75, 2.3) })
	// A real webcam adds sensor noise, more in dim light: the photo
	// attacks are refused at these levels (TestLivenessRefusesPhotoAttacks).
	t.Run("lit, noise 8", func(t *testing.T) { run(t, 0, 8, 0.75, 1.5) })
	// In the dark with noise the gates pass few of retalking-face1's frames
	// (its contrast and sharpness sink under the noise): 3.6 s with this
	// noise sequence.
	t.Run("dark, noise 4", func(t *testing.T) { run(t, 40, 4, 1.1, 4.0) })
}

// enrolPhoto enrols name from the one face of the shared photo rel: the
// worst case for an attack with that photo, whose descriptor then matches
// exactly.
func (g *gallery) enrolPhoto(tb testing.TB, name, rel string) {
	tb.Helper()
	b, err := os.ReadFile(recognizertest.Testdata(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	face, err := mustEncoder(tb).EncodeOne(context.Background(), b)
	if err != nil {
		tb.Fatalf("enrol %s: %v", rel, err)
	}
	u := bolttest.MustCreateUser(tb, g.db, &models.User{FullName: name})
	bolttest.MustAddEncoding(tb, g.db, u.ID, face.Descriptor)
	g.matcher.SetUser(u.ID, []models.Descriptor{face.Descriptor})
	g.ids[name] = u.ID
	g.names[u.ID] = name
}

// attackFPS is the rate the photo attacks are written at: a kiosk gates
// about 7.5-15 frames a second, and each frame costs a gate; 30 s at 7.5
// fps keep the test within a minute per photo.
const attackFPS = 7.5

// attackDarkLuma is the face luma the photo attacks are darkened to for
// their dim scenes: a dim office, as TestLiveClipsRecordedOnce's dark run.
const attackDarkLuma = 40

// depthMargin is how far under its threshold every photo attack's depth
// score must stay.
const depthMargin = 1.25

// TestLivenessRefusesPhotoAttacks holds photos to the camera, cooldown 0,
// each photo's person enrolled from that very photo: a printed poster and a
// phone showing a face (photos-liveness), three darker-skinned people's
// news photos (faces-dark; Denzel Washington's 4.jpg is a 250x250 photo
// whose upscaled, blurred face the landmark predictor misreads when
// folded). The poster's face is turned (yaw 0.5): the pose gate refuses it
// before liveness is asked. Each photo is held still (7.5 s), shaken,
// tilted in 3D, folded along the nose and rocked 0-40 degrees seen from one
// photo width, and 0-60 degrees from 0.7 widths (5 s each); then, as a
// real webcam sees it, with Gaussian sensor noise new in every frame:
// tilted and folded with 4 or 8 grey levels, and shaken, tilted and folded
// darkened to a face luma of 40 (the camera's gain raising the noise) with
// 4 or 8 (3 s each), all with no gap (one track while the continuity check
// holds). Nothing may be recorded; the photos the gates accept must be
// identified and then fail liveness (so the test proves the refusal came
// from liveness); and no depth score of theirs may come within
// depthMargin of its threshold (docs/liveness.md; the poster, never
// identified, is only logged).
func TestLivenessRefusesPhotoAttacks(t *testing.T) {
	for _, ph := range []struct {
		rel   string
		luma  float64 // face luma as drawn, to darken it to attackDarkLuma
		gated bool    // frontal enough for the pose gate: identified, then refused by liveness
	}{
		{"photos-liveness/sf-F2-phone-attack.jpg", 148, true},
		{"photos-liveness/sf-F1-print-attack.jpg", 136, false},
		{"faces-dark/denzel_washington/4.jpg", 80, true},
		{"faces-dark/angela_bassett/1.jpg", 87, true},
		{"faces-dark/tyra_banks/1.jpg", 68, true},
	} {
		t.Run(filepath.Base(filepath.Dir(ph.rel))+"/"+filepath.Base(ph.rel), func(t *testing.T) {
			g := &gallery{db: bolttest.MustOpenDB(t), matcher: recognizer.NewMatcher(recognizer.DefaultMatcherConfig()),
				ids: map[string]string{}, names: map[string]string{}}
			g.enrolPhoto(t, "attacker", ph.rel)
			a := mustPerson(t, ph.rel, 150)
			n, k := int(math.Round(5*attackFPS)), int(math.Round(3*attackFPS))
			dark := attackDarkLuma / ph.luma
			video := mustWriteVideoAt(t, "attack", attackFPS,
				scene{frames: int(math.Round(7.5 * attackFPS)), draw: still(a)},
				scene{frames: n, draw: shifted(a)},
				scene{frames: n, draw: tilted(a)},
				scene{frames: n, draw: folded(a, 40, 1)},
				scene{frames: n, draw: folded(a, 60, 0.7)},
				scene{frames: k, draw: camera(tilted(a), 1, 8)},
				scene{frames: k, draw: camera(folded(a, 40, 1), 1, 4)},
				scene{frames: k, draw: camera(folded(a, 60, 0.7), 1, 8)},
				scene{frames: k, draw: camera(shifted(a), dark, 8)},
				scene{frames: k, draw: camera(tilted(a), dark, 4)},
				scene{frames: k, draw: camera(folded(a, 40, 1), dark, 8)},
				scene{frames: k, draw: camera(folded(a, 60, 0.7), dark, 4)},
			)
			cfg := testConfig(t, video)
			cfg.Cooldown = 0
			// Votes only need to agree once; liveness decides the rest.
			cfg.EncodeInterval = time.Second
			p := NewPipeline(cfg, mustOpenGater(t, cfg), mustEncoder(t), g.matcher, g.db, NewBus(), testLogger(t))
			var maxRange, maxDepth float64
			var vetoed int
			p.onGate = func(_ time.Time, _ *Gate, tr *track) {
				if tr != nil {
					maxRange = max(maxRange, tr.live.maxRange)
					maxDepth = max(maxDepth, tr.live.maxDepth)
					vetoed = max(vetoed, tr.live.vetoed)
				}
			}
			mustRun(t, p, 3*time.Minute)
			st := p.Status()
			t.Logf("largest expression change %.3f (threshold %v), %d frames over it vetoed as a flat picture; "+
				"highest depth score %.2f of its threshold; status %+v", maxRange, cfg.LivenessMotion, vetoed, maxDepth, st)
			if ph.gated && maxDepth > 1/depthMargin {
				t.Errorf("a depth score reached %.2f of its threshold, want under %.2f", maxDepth, 1/depthMargin)
			}
			if got := g.events(t); len(got) != 0 {
				t.Errorf("events = %v from a photo", got)
			}
			if ph.gated && st.LivenessFailed == 0 {
				t.Errorf("the photo was never identified and refused by liveness: status %+v", st)
			}
		})
	}
}
