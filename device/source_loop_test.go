package device

import (
	"testing"

	"github.com/kioskd/kioskd/models"
)

// TestVideoFileLoops: with Loop, a real clip (90 frames of the Hamilton
// clip) starts over at its end instead of ending, and the cooldown still
// records Lin-Manuel Miranda once however often he comes round.
func TestVideoFileLoops(t *testing.T) {
	g := mustGallery(t, "lin_manuel_miranda", "alex_lacamoire")
	const clipFrames = 90
	cfg := testConfig(t, mustTrimClip(t, 70, 70+clipFrames))
	cfg.MinFaceSize = 70
	cfg.Loop = true
	bus := NewBus()
	fb := collectFeedback(t, bus)
	p := NewPipeline(cfg, mustOpenGater(t, cfg), mustEncoder(t), g.matcher, g.db, bus, testLogger(t))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitFor(t, "two and a half plays of the clip", func() bool { return p.Status().Frames >= clipFrames*5/2 })
	select {
	case <-p.Done():
		t.Fatalf("a looping file ended: %+v", p.Status())
	default:
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := g.events(t); len(got) != 1 || got[0] != "lin_manuel_miranda" {
		t.Errorf("events = %v, want lin_manuel_miranda once", got)
	}
	again := 0
	fb.mu.Lock()
	for _, f := range fb.all {
		if f.Kind == models.FeedbackRecognised && f.Message == "Already recorded." {
			again++
		}
	}
	fb.mu.Unlock()
	if again == 0 {
		t.Errorf("the second play did not say \"Already recorded.\": %v", fb.kinds())
	}
	if st := p.Status(); st.Reopens != 0 || st.Frames < clipFrames*5/2 {
		t.Errorf("status = %+v", st)
	}
}

// TestFolderLoops: an image folder with Loop starts over after its last
// image.
func TestFolderLoops(t *testing.T) {
	cfg := testConfig(t, mustFrameFolder(t, 5))
	cfg.Loop = true
	p := NewPipeline(cfg, mustOpenGater(t, cfg), nopEncoder{}, nopMatcher{}, nopStore{}, NewBus(), testLogger(t))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitFor(t, "three plays of the folder", func() bool { return p.Status().Frames >= 15 })
	if st := p.Status(); st.State != CameraRunning || st.Reopens != 0 {
		t.Errorf("status = %+v", st)
	}
}
