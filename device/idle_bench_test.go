package device

import (
	"image"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// BenchmarkCPU reports the pipeline's CPU use in CPU milliseconds (user
// and system, of the whole process, from rusage) per frame read, and what
// that is in % of one core at 30 fps: "idle" is 10 s of a still, empty room
// at 640x480 30 fps with sensor noise, "busy" a real person talking into the
// camera (video/live/lp-d3, nobody enrolled, so the encoder keeps working).
// "detector" is the default idle gate, "every-frame" gives every frame to
// the face detector (the behaviour before the idle gate). The clips play
// unpaced, every frame processed on the media clock (the heartbeat counts
// media time), so the figure does not depend on how busy the machine is:
// paced on a loaded machine, frames the pipeline has no CPU for are
// dropped and the % measures the load instead. Run with -benchtime=1x.
func BenchmarkCPU(b *testing.B) {
	still := mustStillScene(b, 300)
	busy := recognizertest.Testdata(b, "video/live/lp-d3.mp4")
	for _, c := range []struct {
		name, clip string
		heartbeat  time.Duration
	}{
		{"idle/detector", still, DefaultConfig().IdleHeartbeat},
		{"idle/every-frame", still, 0},
		{"busy/detector", busy, DefaultConfig().IdleHeartbeat},
		{"busy/every-frame", busy, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			var cpu time.Duration
			var st CameraStatus
			for i := 0; i < b.N; i++ {
				cfg := testConfig(b, c.clip)
				cfg.IdleHeartbeat = c.heartbeat
				p := NewPipeline(cfg, mustOpenGater(b, cfg), mustEncoder(b), recognizer.NewMatcher(recognizer.DefaultMatcherConfig()), nopStore{}, NewBus(), nil)
				c0 := cpuTime(b)
				mustRun(b, p, 2*time.Minute)
				cpu += cpuTime(b) - c0
				st = p.Status()
			}
			perFrame := cpu.Seconds() * 1000 / float64(b.N) / float64(st.Frames)
			b.ReportMetric(perFrame, "cpu-ms/frame")
			b.ReportMetric(perFrame*30/10, "cpu-%@30fps")
			b.ReportMetric(float64(st.Processed), "gated")
			b.ReportMetric(float64(st.Idle), "idle")
			b.ReportMetric(float64(st.Frames), "frames")
		})
	}
}

// cpuTime returns the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mustStillScene writes n frames of an empty room at 640x480 30 fps to an
// MJPEG AVI: the first frame of a real clip blurred until no face is left
// in it, with fresh Gaussian noise (sigma 4 grey levels) on every frame as
// a webcam's sensor gives.
func mustStillScene(tb testing.TB, n int) string {
	tb.Helper()
	vc, err := gocv.VideoCaptureFile(recognizertest.Testdata(tb, "video/live/lp-d3.mp4"))
	if err != nil {
		tb.Fatal(err)
	}
	first := gocv.NewMat()
	defer first.Close()
	ok := vc.Read(&first)
	vc.Close()
	if !ok {
		tb.Fatal("read the first frame of lp-d3")
	}
	room := gocv.NewMat()
	defer room.Close()
	gocv.Resize(first, &room, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
	gocv.GaussianBlur(room, &room, image.Pt(0, 0), 60, 60, gocv.BorderReflect)
	if g, err := mustGater(tb).Check(room, time.Time{}); err != nil || len(g.Faces) != 0 {
		tb.Fatalf("the blurred room still holds %d faces (%v)", len(g.Faces), err)
	}
	base := gocv.NewMat()
	defer base.Close()
	room.ConvertTo(&base, gocv.MatTypeCV16SC3)
	noise := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV16SC3)
	defer noise.Close()
	sum, out := gocv.NewMat(), gocv.NewMat()
	defer sum.Close()
	defer out.Close()
	path := filepath.Join(tb.TempDir(), "still.avi")
	vw, err := gocv.VideoWriterFile(path, "MJPG", 30, 640, 480, true)
	if err != nil {
		tb.Fatal(err)
	}
	defer vw.Close()
	for i := 0; i < n; i++ {
		gocv.RandN(&noise, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(4, 4, 4, 0))
		gocv.Add(base, noise, &sum)
		sum.ConvertTo(&out, gocv.MatTypeCV8UC3)
		if err := vw.Write(out); err != nil {
			tb.Fatal(err)
		}
	}
	return path
}

// BenchmarkChangeMeter640x480: the idle gate's and the camera check's own
// cost on every frame (80x60 grey copy, difference, mean and deviation,
// whole-frame comparison with the previous frame).
func BenchmarkChangeMeter640x480(b *testing.B) {
	f := background()
	defer f.Close()
	c := newChangeMeter()
	defer c.Close()
	for i := 0; i < b.N; i++ {
		c.measure(f)
		c.stats(f)
		c.keep()
	}
}
