package device

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
)

func TestParseSource(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		in    string
		kind  SourceKind
		index int
		bad   bool
	}{
		{"0", SourceCamera, 0, false},
		{"2", SourceCamera, 2, false},
		{"/dev/video1", SourceCamera, 1, false},
		{"/dev/videox", "", 0, true},
		{"-1", "", 0, true},
		{"rtsp://user:pw@cam/stream", SourceURL, 0, false},
		{"http://cam/mjpg", SourceURL, 0, false},
		{"ftp://cam/x", "", 0, true},
		{dir, SourceFolder, 0, false},
		{"clip.mp4", SourceFile, 0, false},
		{"", "", 0, true},
	} {
		kind, index, err := ParseSource(c.in)
		if (err != nil) != c.bad || kind != c.kind || index != c.index {
			t.Errorf("ParseSource(%q) = %v, %v, %v", c.in, kind, index, err)
		}
	}
	if got := redactURL("rtsp://admin:secret@10.0.0.2/s"); got != "rtsp://admin:xxxxx@10.0.0.2/s" {
		t.Errorf("redactURL = %q", got)
	}
}

func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"0", "/dev/video3", "rtsp://a:b@c/d", "http://x", "file.mp4", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kind, index, err := ParseSource(s)
		if err == nil && kind == SourceCamera && (index < 0 || index > 63) {
			t.Fatalf("camera index %d accepted", index)
		}
		_ = redactURL(s)
	})
}

// mustFrameFolder writes n small frames (a grey gradient) as JPEGs.
func mustFrameFolder(tb testing.TB, n int) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "frames")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n; i++ {
		m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(i%200), 120, 140, 0), 120, 160, gocv.MatTypeCV8UC3)
		if !gocv.IMWrite(filepath.Join(dir, fmt.Sprintf("%05d.jpg", i)), m) {
			tb.Fatal("write frame")
		}
		m.Close()
	}
	return dir
}

// TestSourceFailsMidStream: the image folder disappears while it plays (a
// camera unplugged); the pipeline reports it, says so on the bus, keeps
// retrying with backoff and carries on when it comes back.
func TestSourceFailsMidStream(t *testing.T) {
	dir := mustFrameFolder(t, 40)
	cfg := testConfig(t, dir)
	cfg.Pace = true
	cfg.FPS = 40
	bus := NewBus()
	fb := collectFeedback(t, bus)
	p := NewPipeline(cfg, mustOpenGater(t, cfg), nopEncoder{}, nopMatcher{}, nopStore{}, bus, testLogger(t))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitFor(t, "10 frames", func() bool { return p.Status().Frames >= 10 })
	hidden := dir + ".away"
	if err := os.Rename(dir, hidden); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reconnecting", func() bool { return p.Status().State == CameraReconnecting })
	waitFor(t, "two reopen attempts", func() bool { return p.Status().Reopens >= 2 })
	if err := os.Rename(hidden, dir); err != nil {
		t.Fatal(err)
	}
	before := p.Status().Frames
	waitFor(t, "frames again", func() bool { return p.Status().Frames > before+5 })
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("replay did not end: %+v", p.Status())
	}
	st := p.Status()
	if st.State != CameraEnded || st.LastError == "" || st.Reopens < 2 {
		t.Errorf("status = %+v", st)
	}
	if fb.count(models.FeedbackCameraLost) == 0 {
		t.Errorf("no camera_lost feedback: %v", fb.kinds())
	}
}

// TestSourceMissingAtStart: kioskd starts without its camera and reports it.
func TestSourceMissingAtStart(t *testing.T) {
	cfg := testConfig(t, filepath.Join(t.TempDir(), "missing.mp4"))
	p := NewPipeline(cfg, mustOpenGater(t, cfg), nopEncoder{}, nopMatcher{}, nopStore{}, NewBus(), testLogger(t))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reconnecting", func() bool { return p.Status().State == CameraReconnecting && p.Status().Reopens >= 1 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.State != CameraStopped {
		t.Errorf("state after Close = %v", st.State)
	}
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
