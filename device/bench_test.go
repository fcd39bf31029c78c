package device

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// BenchmarkGate640x480Empty: the per-frame cost with nobody in view (one
// HOG scan), on one goroutine. Goal: >= 30 fps on one core.
func BenchmarkGate640x480Empty(b *testing.B) {
	g := mustGater(b)
	f := background()
	defer f.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.Check(f, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fps")
}

// BenchmarkGate640x480OnePerson: HOG scan, 68 landmarks, sharpness,
// exposure and pose with one person in view. Goal: >= 15 fps on one core.
func BenchmarkGate640x480OnePerson(b *testing.B) {
	g := mustGater(b)
	f := mustOnePersonFrame(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		gt, err := g.Check(f, time.Time{})
		if err != nil || !gt.Passed() {
			b.Fatalf("gate: %v %v", gt.Problem, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fps")
}

// BenchmarkGate640x480OnePersonTracked is BenchmarkGate640x480OnePerson
// with frame times 133 ms apart, so each frame also tracks the face's
// pixels from the previous one (the flat-picture measure, parallax.go).
func BenchmarkGate640x480OnePersonTracked(b *testing.B) {
	g := mustGater(b)
	f := mustOnePersonFrame(b)
	at := time.Unix(0, 0)
	measured := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at = at.Add(133 * time.Millisecond)
		gt, err := g.Check(f, at)
		if err != nil || !gt.Passed() {
			b.Fatalf("gate: %v %v", gt.Problem, err)
		}
		if gt.Face.Planarity != nil {
			measured++
		}
	}
	if b.N > 1 && measured < b.N-1 {
		b.Errorf("planarity measured on %d of %d frames", measured, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fps")
}

// BenchmarkTimeToAttendance replays the Hamilton clip from frame 70 (just
// before Lin-Manuel Miranda faces the camera) at its real pace, liveness
// on, and measures from the wall time of the track's first gated frame to
// the event committed in bbolt. p50 and p95 over b.N replays; the medians
// of the steps on the way (ms after the first gated frame): first encode
// started and finished, first and second vote (K=2), liveness proven,
// committed. Each replay's steps are logged.
func BenchmarkTimeToAttendance(b *testing.B) { benchTimeToAttendance(b, true, true) }

// BenchmarkTimeToAttendanceEveryFrame is BenchmarkTimeToAttendance with the
// idle gate off (every frame to the face detector): the reference the idle
// gate must not make slower.
func BenchmarkTimeToAttendanceEveryFrame(b *testing.B) { benchTimeToAttendance(b, true, false) }

// BenchmarkTimeToAttendanceLivenessOff is BenchmarkTimeToAttendance with
// liveness off: the time the pipeline itself needs (gates, encodes, K-of-M
// vote, commit), without waiting for the face to prove it is alive.
func BenchmarkTimeToAttendanceLivenessOff(b *testing.B) { benchTimeToAttendance(b, false, true) }

func benchTimeToAttendance(b *testing.B, liveness, idleGate bool) {
	g := mustGallery(b, "lin_manuel_miranda", "alex_lacamoire")
	clip := mustTrimClip(b, 70, 160)
	var lat []time.Duration
	steps := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db := g.db
		cfg := testConfig(b, clip)
		cfg.MinFaceSize = 70
		cfg.Pace = true
		cfg.Cooldown = 0
		cfg.Liveness = liveness
		if !idleGate {
			cfg.IdleHeartbeat = 0
		}
		p := NewPipeline(cfg, mustOpenGater(b, cfg), mustEncoder(b), g.matcher, db, NewBus(), nil)
		var got time.Duration
		p.onRecord = func(_ *models.AttendanceEvent, t *track, _ time.Time) { got = time.Since(t.firstGated) }
		tr := &traceLog{}
		p.onTrace = tr.add
		mustRun(b, p, time.Minute)
		if got == 0 {
			b.Fatalf("no event in replay %d", i)
		}
		lat = append(lat, got)
		bd := tr.breakdown()
		for k, v := range bd.steps {
			steps[k] = append(steps[k], v)
		}
		b.Logf("replay %d: %v; %s", i, got.Round(time.Millisecond), bd.line)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*95+99)/100-1].Milliseconds()), "p95-ms")
	for _, k := range []string{"encode1", "encoded1", "vote1", "vote2", "live", "committed"} {
		if v := steps[k]; len(v) > 0 {
			slices.Sort(v)
			b.ReportMetric(float64(v[len(v)/2].Milliseconds()), k+"-ms")
		}
	}
}

// traceLog records a replay's Pipeline.onTrace steps.
type traceLog struct {
	mu    sync.Mutex
	steps []traceStep
}

type traceStep struct {
	step  string
	track uint64
	seq   int
	wall  time.Time
}

func (l *traceLog) add(step string, track uint64, seq int, wall time.Time) {
	l.mu.Lock()
	l.steps = append(l.steps, traceStep{step, track, seq, wall})
	l.mu.Unlock()
}

// breakdown is the committed track's way from its first gated frame to the
// commit: each step's wall time after the first gated frame's capture.
type breakdown struct {
	steps map[string]time.Duration // encode1, encoded1, vote1, vote2, live, committed
	line  string
}

func (l *traceLog) breakdown() breakdown {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := breakdown{steps: map[string]time.Duration{}}
	var id uint64
	for _, s := range l.steps {
		if s.step == "committed" {
			id = s.track
		}
	}
	var t0 time.Time
	var seq0 int
	for _, s := range l.steps {
		if s.track == id && s.step == "gated" {
			t0, seq0 = s.wall, s.seq
			break
		}
	}
	if t0.IsZero() {
		return out
	}
	ms := func(t time.Time) int64 { return t.Sub(t0).Milliseconds() }
	var sb strings.Builder
	fmt.Fprintf(&sb, "first gated frame %d;", seq0)
	n := map[string]int{}
	gates, gateSum := 0, time.Duration(0)
	var gateStart time.Time
	lastSeq := seq0
	for _, s := range l.steps {
		if s.track == 0 {
			// Frames gated after the first gated frame, up to the commit.
			if s.seq < seq0 || out.steps["committed"] != 0 {
				continue
			}
			if s.step == "gate" {
				gateStart = s.wall
			} else if !gateStart.IsZero() {
				gates++
				gateSum += s.wall.Sub(gateStart)
				lastSeq = s.seq
			}
			continue
		}
		if s.track != id || s.step == "gated" {
			continue
		}
		n[s.step]++
		key := s.step
		if s.step != "live" && s.step != "committed" && s.step != "commit" {
			key = fmt.Sprintf("%s%d", s.step, n[s.step])
		}
		if _, ok := out.steps[key]; !ok {
			out.steps[key] = s.wall.Sub(t0)
		}
		if s.seq >= 0 {
			fmt.Fprintf(&sb, " %s(f%d)+%d", s.step, s.seq, ms(s.wall))
		} else {
			fmt.Fprintf(&sb, " %s+%d", s.step, ms(s.wall))
		}
	}
	if gates > 0 {
		fmt.Fprintf(&sb, "; %d frames gated of %d read (f%d-f%d), gate mean %v", gates, lastSeq-seq0+1, seq0, lastSeq, (gateSum / time.Duration(gates)).Round(time.Millisecond))
	}
	out.line = sb.String()
	return out
}

// mustTrimClip writes frames [from, to) of the Hamilton clip to an MJPEG AVI.
func mustTrimClip(tb testing.TB, from, to int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "trim.avi")
	vw, last, _ := mustCopyClip(tb, path, from, to)
	last.Close()
	if err := vw.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// mustCopyClip copies frames [from, to) of the Hamilton clip to an MJPEG AVI
// at path, at the clip's rate and size. It returns the writer, still open
// for more frames (the caller closes it), the last frame read and the rate.
func mustCopyClip(tb testing.TB, path string, from, to int) (*gocv.VideoWriter, gocv.Mat, float64) {
	tb.Helper()
	return mustCopyClipFrom(tb, "video/short_hamilton_clip.mp4", path, clipCopy{from: from, to: to})
}

// TestExtractFrames writes the Hamilton clip's frames as JPEGs into
// $KIOSK_EXTRACT_FRAMES, for scripts/peer_video.py (the venv has no OpenCV).
// Skipped unless the variable is set.
func TestExtractFrames(t *testing.T) {
	dir := os.Getenv("KIOSK_EXTRACT_FRAMES")
	if dir == "" {
		t.Skip("set KIOSK_EXTRACT_FRAMES=dir")
	}
	src, err := gocv.VideoCaptureFile(recognizertest.Testdata(t, "video/short_hamilton_clip.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m := gocv.NewMat()
	defer m.Close()
	for i := 0; src.Read(&m); i++ {
		if !gocv.IMWriteWithParams(fmt.Sprintf("%s/%05d.jpg", dir, i), m, []int{gocv.IMWriteJpegQuality, 95}) {
			t.Fatal("write frame")
		}
	}
}

// BenchmarkTimeToAttendanceLive replays the first seconds of every real
// person's clip (video/live, each person enrolled from an early frame of
// their own clip, all eight enrolled) and the Hamilton clip at their real
// pace, liveness on, shipped defaults (the Hamilton clip's stage faces need
// min_face_size 70), and measures the wall time from the first frame with
// a face to the event committed: what a person at the door waits. It
// reports p50, p95 and max over the clips and logs each clip's figure.
func BenchmarkTimeToAttendanceLive(b *testing.B) { benchTimeToAttendanceLive(b, 0) }

// BenchmarkTimeToAttendanceLiveDark is BenchmarkTimeToAttendanceLive on the
// same clips darkened so the face's mean luma is about 40 (a dim office).
func BenchmarkTimeToAttendanceLiveDark(b *testing.B) { benchTimeToAttendanceLive(b, 40) }

// liveFaceLuma is each live clip's mean face luma in its first frames
// (measured with the gates), to darken it to a target.
var liveFaceLuma = map[string]float64{
	"lp-d0": 131, "lp-d3": 76, "lp-d6": 132, "lp-d9": 124, "lp-d10": 123,
	"retalking-face1": 124, "retalking-face2": 86, "tvl-real": 137,
}

func benchTimeToAttendanceLive(b *testing.B, faceLuma float64) {
	g := mustLiveGallery(b)
	lin := mustGallery(b, "lin_manuel_miranda")
	type clip struct {
		name, path string
		g          *gallery
		minFace    int
	}
	var clips []clip
	for _, c := range liveClips {
		var gain float64
		if faceLuma > 0 {
			gain = faceLuma / liveFaceLuma[c.name]
		}
		path, _ := mustClipCopy(b, "video/live/"+c.name+".mp4", clipCopy{to: liveClipSeconds * 30, gain: gain})
		clips = append(clips, clip{c.name, path, g, 0})
	}
	if faceLuma == 0 {
		clips = append(clips, clip{"hamilton", mustTrimClip(b, 70, 160), lin, 70})
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, c := range clips {
			cfg := testConfig(b, c.path)
			cfg.Pace = true
			cfg.Cooldown = 0
			if c.minFace > 0 {
				cfg.MinFaceSize = c.minFace
			}
			p := NewPipeline(cfg, mustOpenGater(b, cfg), mustEncoder(b), c.g.matcher, c.g.db, NewBus(), nil)
			var first time.Time
			var got time.Duration
			p.onGate = func(at time.Time, gt *Gate, _ *track) {
				if first.IsZero() && len(gt.Faces) > 0 {
					first = at
				}
			}
			p.onRecord = func(*models.AttendanceEvent, *track, time.Time) {
				if got == 0 {
					got = time.Since(first)
				}
			}
			mustRun(b, p, time.Minute)
			if got == 0 {
				b.Errorf("%s: no event in replay %d", c.name, i)
				got = liveClipSeconds * time.Second
			}
			b.Logf("%s: %v", c.name, got.Round(time.Millisecond))
			lat = append(lat, got)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*95+99)/100-1].Milliseconds()), "p95-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
}
