package device

import (
	"context"
	"image/color"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/encodertest"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// testConfig returns DefaultConfig with the real 68-point model, a replay
// source and no preview work.
func testConfig(tb testing.TB, source string) Config {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Source = source
	cfg.ShapePredictorPath = filepath.Join(recognizertest.ModelsDir(tb), "shape_predictor_68_face_landmarks.dat")
	cfg.ReopenMin = 20 * time.Millisecond
	cfg.ReopenMax = 200 * time.Millisecond
	return cfg
}

// mustEncoder returns the test binary's shared real encoder.
func mustEncoder(tb testing.TB) *recognizer.Encoder {
	tb.Helper()
	return encodertest.MustEncoder(tb)
}

// gallery is a real store and matcher with people enrolled from the shared
// photos.
type gallery struct {
	db      *bolt.DB
	matcher *recognizer.Matcher
	ids     map[string]string // person folder -> user id
	names   map[string]string // user id -> person folder
}

// mustGallery enrols each person of people/<name>/ with all their photos.
func mustGallery(tb testing.TB, people ...string) *gallery {
	tb.Helper()
	enc := mustEncoder(tb)
	g := &gallery{db: bolttest.MustOpenDB(tb), matcher: recognizer.NewMatcher(recognizer.DefaultMatcherConfig()),
		ids: map[string]string{}, names: map[string]string{}}
	for _, name := range people {
		files := recognizertest.Glob(tb, filepath.Join("people", name, "*")) // skips without them
		u := bolttest.MustCreateUser(tb, g.db, &models.User{FullName: name})
		var ds []models.Descriptor
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			face, err := enc.EncodeOne(context.Background(), b)
			if err != nil {
				tb.Fatalf("enrol %s: %v", f, err)
			}
			bolttest.MustAddEncoding(tb, g.db, u.ID, face.Descriptor)
			ds = append(ds, face.Descriptor)
		}
		g.matcher.SetUser(u.ID, ds)
		g.ids[name] = u.ID
		g.names[u.ID] = name
	}
	return g
}

// events returns the people with committed events, oldest first.
func (g *gallery) events(tb testing.TB) []string {
	tb.Helper()
	var out []string
	err := g.db.ForEachAttendance(context.Background(), models.AttendanceFilter{}, func(ev *models.AttendanceEvent) error {
		out = append(out, g.names[ev.UserID])
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// run replays cfg's source through a pipeline with g's store and matcher
// and returns the people recorded and the final status.
func (g *gallery) run(tb testing.TB, cfg Config) ([]string, CameraStatus) {
	tb.Helper()
	p := NewPipeline(cfg, mustOpenGater(tb, cfg), mustEncoder(tb), g.matcher, g.db, NewBus(), testLogger(tb))
	mustRun(tb, p, time.Minute)
	return g.events(tb), p.Status()
}

// feedbackLog collects feedback from the bus.
type feedbackLog struct {
	mu   sync.Mutex
	all  []models.Feedback
	done chan struct{}
}

func collectFeedback(tb testing.TB, bus *Bus) *feedbackLog {
	ch, cancel := bus.Subscribe(1024)
	l := &feedbackLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for f := range ch {
			l.mu.Lock()
			l.all = append(l.all, f)
			l.mu.Unlock()
		}
	}()
	tb.Cleanup(func() { cancel(); <-l.done })
	return l
}

func (l *feedbackLog) kinds() []models.FeedbackKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]models.FeedbackKind, len(l.all))
	for i, f := range l.all {
		out[i] = f.Kind
	}
	return out
}

func (l *feedbackLog) count(k models.FeedbackKind) int {
	n := 0
	for _, x := range l.kinds() {
		if x == k {
			n++
		}
	}
	return n
}

// testLogger logs to the test at warn level, debug with -v.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(b []byte) (int, error) {
	w.tb.Log(string(b))
	return len(b), nil
}

// mustRun starts p, waits until its replay ended and closes it.
func mustRun(tb testing.TB, p *Pipeline, timeout time.Duration) {
	tb.Helper()
	if err := p.Start(context.Background()); err != nil {
		tb.Fatalf("start: %v", err)
	}
	select {
	case <-p.Done():
	case <-time.After(timeout):
		tb.Errorf("replay did not end within %v: %+v", timeout, p.Status())
	}
	if err := p.Close(); err != nil {
		tb.Fatal(err)
	}
}

func gocvColor(r, g, b uint8) color.RGBA { return color.RGBA{R: r, G: g, B: b} }

// mustGater returns a Gater with the default (640x480 webcam) config and
// the real models.
func mustGater(tb testing.TB) *Gater {
	tb.Helper()
	return mustOpenGater(tb, testConfig(tb, "0"))
}

// mustOpenGater returns a Gater for cfg with the real models, freed when
// the test ends.
func mustOpenGater(tb testing.TB, cfg Config) *Gater {
	tb.Helper()
	g, closeGater, err := OpenGater(&cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { closeGater() })
	return g
}
