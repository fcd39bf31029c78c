package device

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// TestLeak10000Frames replays 10,000 small frames (a face in every
// fourth second: detection, landmarks, quality, liveness, encode crop and preview
// all run) and checks that every Mat is closed and RSS stays flat. It needs
// gocv's Mat profile: go test -tags matprofile -run Leak ./device/
func TestLeak10000Frames(t *testing.T) {
	if !haveMatProfile {
		t.Skip("needs -tags matprofile (make test runs it)")
	}
	const w, h = 200, 150
	face := mustPerson(t, "people/obama/1.jpg", 100)
	path := t.TempDir() + "/leak.avi"
	vw, err := gocv.VideoWriterFile(path, "MJPG", 30, w, h, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		f := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(150, 160, 170, 0), h, w, gocv.MatTypeCV8UC3)
		if (i/30)%4 == 1 {
			paste(&f, face, w/2+i%3, h/2)
		}
		vw.Write(f)
		f.Close()
	}
	vw.Close()
	cfg := testConfig(t, path)
	cfg.MinFaceSize = 80
	cfg.DetectWidth = 0
	cfg.PreviewInterval = 5 * time.Millisecond
	start := liveMats()
	// The gater keeps scratch Mats and the last 400 ms of face views (for the
	// pixel tracking) until it is closed, after the pipeline.
	gater, closeGater, err := OpenGater(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline(cfg, gater, nopEncoder{}, nopMatcher{}, nopStore{}, NewBus(), nil)
	var rss1 int64
	p.onGate = func(time.Time, *Gate, *track) {
		if rss1 == 0 && p.status.Processed+p.status.Idle >= 2000 { // read on the processing goroutine
			rss1 = rssBytes(t)
		}
	}
	mustRun(t, p, 4*time.Minute)
	closeGater()
	rss2 := rssBytes(t)
	st := p.Status()
	if st.Processed+st.Idle != 10000 || st.Idle == 0 || st.Encodings == 0 {
		t.Errorf("status = %+v", st)
	}
	if n := liveMats(); n != start {
		t.Errorf("Mats open: %d at start, %d after Close\n%s", start, n, matProfileDump())
	}
	t.Logf("RSS after 2,000 frames %d MB, after 10,000 %d MB", rss1>>20, rss2>>20)
	if rss2-rss1 > 32<<20 {
		t.Errorf("RSS grew by %d MB over 8,000 frames", (rss2-rss1)>>20)
	}
}

func rssBytes(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b))
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * int64(os.Getpagesize())
}
