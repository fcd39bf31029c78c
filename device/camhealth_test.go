package device

import (
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// TestCameraHealth drives the black/frozen judgement with made-up measures.
func TestCameraHealth(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	s := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }
	type obs struct {
		at        time.Time
		mean, std float64
		same      bool
		want      CameraState
	}
	for _, c := range []struct {
		name  string
		after time.Duration
		steps []obs
	}{
		{"a live scene is fine", 2 * time.Second, []obs{{s(0), 120, 40, false, ""}, {s(5), 120, 40, false, ""}}},
		{"black for the whole time", 2 * time.Second, []obs{
			{s(0), 3, 1, false, ""}, {s(1.9), 3, 1, false, ""}, {s(2), 3, 1, false, CameraBlack}, {s(2.1), 120, 40, false, ""},
		}},
		{"a dark room with a person is not black", 2 * time.Second, []obs{{s(0), 10, 9, false, ""}, {s(3), 10, 9, false, ""}}},
		{"one varied frame starts over", 2 * time.Second, []obs{
			{s(0), 3, 1, false, ""}, {s(1.5), 60, 20, false, ""}, {s(2), 3, 1, false, ""}, {s(3.9), 3, 1, false, ""}, {s(4), 3, 1, false, CameraBlack},
		}},
		{"frozen", 2 * time.Second, []obs{
			{s(0), 120, 40, false, ""}, {s(0.1), 120, 40, true, ""}, {s(2.1), 120, 40, true, CameraFrozen}, {s(2.2), 120, 40, false, ""},
		}},
		{"black and frozen is black", 1 * time.Second, []obs{{s(0), 0, 0, true, ""}, {s(1), 0, 0, true, CameraBlack}}},
		{"off", 0, []obs{{s(0), 0, 0, true, ""}, {s(100), 0, 0, true, ""}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := cameraHealth{after: c.after}
			for i, o := range c.steps {
				if got := h.observe(o.at, o.mean, o.std, o.same); got != o.want {
					t.Fatalf("step %d: %q, want %q", i, got, o.want)
				}
			}
		})
	}
}

// TestResolveCamera: a stable link that is gone or points elsewhere than a
// /dev/videoN device says so.
func TestResolveCamera(t *testing.T) {
	dir := t.TempDir()
	gone := filepath.Join(dir, "usb-cam-video-index0")
	if err := os.Symlink("/dev/video63-not-here", gone); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveCamera(gone); err == nil || !strings.Contains(err.Error(), "unplugged") {
		t.Errorf("link to a missing device: %v", err)
	}
	other := filepath.Join(dir, "other")
	if err := os.Symlink(dir, other); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveCamera(other); err == nil || !strings.Contains(err.Error(), "not a /dev/videoN") {
		t.Errorf("link to a folder: %v", err)
	}
}

// blankGater finds nothing in any frame.
type blankGater struct{}

func (blankGater) Check(gocv.Mat, time.Time) (Gate, error) { return Gate{}, nil }

// Probe finds no face.
func (blankGater) Probe(gocv.Mat) (bool, error) { return false, nil }

// MeasurePixels has nothing to measure.
func (blankGater) MeasurePixels(bool) {}

// flakyCamera is a live source that fails after a number of frames.
type flakyCamera struct{ left int }

func (c *flakyCamera) Read(m *gocv.Mat) error {
	if c.left == 0 {
		return errors.New("read /dev/video0: no frame")
	}
	c.left--
	time.Sleep(time.Millisecond)
	n := gocv.NewMatWithSize(48, 64, gocv.MatTypeCV8UC3)
	gocv.RandU(&n, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 255, 255, 0))
	n.CopyTo(m)
	n.Close()
	return nil
}
func (c *flakyCamera) Live() bool   { return true }
func (c *flakyCamera) FPS() float64 { return 30 }
func (c *flakyCamera) Close() error { return nil }

// TestCameraReopens: a camera that fails (unplugged) is reopened with
// backoff until it opens again, and status counts the reopens; driven by
// an injected opener, no device and no models.
func TestCameraReopens(t *testing.T) {
	cfg := testConfig(t, "/dev/v4l/by-id/usb-cam-video-index0")
	var mu sync.Mutex
	opens := 0
	p := NewPipeline(cfg, blankGater{}, nopEncoder{}, nopMatcher{}, nopStore{}, NewBus(), testLogger(t))
	p.OpenSource = func(*Config) (FrameSource, error) {
		mu.Lock()
		defer mu.Unlock()
		opens++
		switch opens {
		case 1:
			return &flakyCamera{left: 5}, nil // unplugged after 5 frames
		case 2, 3:
			return nil, errors.New("open camera: no such device")
		}
		return &flakyCamera{left: 1 << 30}, nil
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitFor(t, "running after three reopens", func() bool {
		st := p.Status()
		return st.State == CameraRunning && st.Reopens == 3 && st.Frames > 10
	})
	if st := p.Status(); st.LastError == "" {
		t.Errorf("status = %+v", st)
	}
}

// TestCameraBlackFrozen: real video files generated here, played through
// the real source and pipeline: black frames are reported black, one frame
// of a real photo repeated is reported frozen, each with what to check;
// a still room with sensor noise is neither.
func TestCameraBlackFrozen(t *testing.T) {
	dir := t.TempDir()
	black := gocv.NewMatWithSize(240, 320, gocv.MatTypeCV8UC3)
	defer black.Close()
	photo := gocv.IMRead(recognizertest.Testdata(t, "people/obama/1.jpg"), gocv.IMReadColor)
	defer photo.Close()
	gocv.Resize(photo, &photo, image.Pt(320, 240), 0, 0, gocv.InterpolationArea)
	for _, c := range []struct {
		name string
		path string
		want CameraState
		msg  string
	}{
		{"black", mustRepeatFrame(t, filepath.Join(dir, "black.avi"), black, 60), CameraBlack, "lens cover"},
		{"frozen", mustRepeatFrame(t, filepath.Join(dir, "frozen.avi"), photo, 60), CameraFrozen, "replug"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t, c.path)
			cfg.Loop = true
			cfg.CameraCheck = time.Second
			p := NewPipeline(cfg, mustOpenGater(t, cfg), nopEncoder{}, nopMatcher{}, nopStore{}, NewBus(), testLogger(t))
			if err := p.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			waitFor(t, string(c.want), func() bool { return p.Status().State == c.want })
			if st := p.Status(); !strings.Contains(st.Message, c.msg) {
				t.Errorf("message %q does not say %q", st.Message, c.msg)
			}
		})
	}
	t.Run("still room with noise", func(t *testing.T) {
		cfg := testConfig(t, mustStillScene(t, 90))
		cfg.CameraCheck = time.Second
		p := NewPipeline(cfg, mustOpenGater(t, cfg), nopEncoder{}, nopMatcher{}, nopStore{}, NewBus(), testLogger(t))
		var states []CameraState
		p.onGate = func(time.Time, *Gate, *track) { states = append(states, p.Status().State) }
		mustRun(t, p, time.Minute)
		for _, s := range states {
			if s == CameraBlack || s == CameraFrozen {
				t.Fatalf("a still room with sensor noise was reported %s", s)
			}
		}
		if len(states) == 0 {
			t.Fatal("no frame gated")
		}
	})
}

// mustRepeatFrame writes m n times to an MJPEG AVI at 30 fps.
func mustRepeatFrame(tb testing.TB, path string, m gocv.Mat, n int) string {
	tb.Helper()
	vw, err := gocv.VideoWriterFile(path, "MJPG", 30, m.Cols(), m.Rows(), true)
	if err != nil {
		tb.Fatal(err)
	}
	defer vw.Close()
	for range n {
		if err := vw.Write(m); err != nil {
			tb.Fatal(err)
		}
	}
	return path
}
