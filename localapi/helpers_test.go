package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/models/password"
	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/encodertest"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// mustEncoder returns the test binary's shared real encoder.
func mustEncoder(tb testing.TB) *recognizer.Encoder {
	tb.Helper()
	return encodertest.MustEncoder(tb)
}

// testClock is a settable clock for token expiry and throttling.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEnv is a real server on 127.0.0.1:0 with a real bbolt store, the real
// encoder and a real matcher.
type testEnv struct {
	t       testing.TB
	srv     *Server
	db      *bolt.DB
	matcher *recognizer.Matcher
	clock   *testClock
	url     string
	admin   string // tokens
	tech    string
	client  *http.Client
}

const (
	adminEmail = "admin@kiosk.test"
	techEmail  = "tech@kiosk.test"
	adminPW    = "violet-harbour-71-kettle"
	techPW     = "amber-window-93-ladder"
)

var (
	hashOnce           sync.Once
	adminHash, techHsh string
)

// mustServer starts a server; configure may change the config and deps.
func mustServer(tb testing.TB, configure func(*Config, *Deps)) *testEnv {
	tb.Helper()
	db := bolttest.MustOpenDB(tb)
	m := recognizer.NewMatcher(recognizer.DefaultMatcherConfig())
	clock := &testClock{t: time.Now()}
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.TempDir = filepath.Join(tb.TempDir(), "tmp")
	cfg.DeviceID = "kiosk-test"
	// The gallery is recalibrated on every change and its threshold left
	// as configured: tests see the calibration of what they just enrolled.
	calCfg := recognizer.DefaultCalibratorConfig()
	calCfg.Apply, calCfg.MinInterval = false, 0
	deps := Deps{Store: db, Enroller: recognizer.NewGallery(db, m, nil), Encoder: mustEncoder(tb), Matcher: m, Now: clock.Now,
		Gallery: recognizer.NewCalibrator(m, calCfg, nil)}
	if configure != nil {
		configure(&cfg, &deps)
	}
	hashOnce.Do(func() {
		adminHash, _ = password.HashPassword(adminPW)
		techHsh, _ = password.HashPassword(techPW)
	})
	ctx := context.Background()
	for _, a := range []*models.LocalAccount{
		{Email: adminEmail, Role: models.AccountAdmin, PasswordHash: adminHash},
		{Email: techEmail, Role: models.AccountTechnician, PasswordHash: techHsh},
	} {
		if err := db.PutAccount(ctx, a); err != nil {
			tb.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(&tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := NewServer(cfg, deps, logger.With("component", "localapi"))
	if err := srv.Open(); err != nil {
		tb.Fatalf("open server: %v", err)
	}
	env := &testEnv{t: tb, srv: srv, db: db, matcher: m, clock: clock, url: srv.URL(), client: &http.Client{Timeout: 2 * time.Minute}}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("close server: %v", err)
		}
	})
	env.admin = env.mustLogin(adminEmail, adminPW)
	env.tech = env.mustLogin(techEmail, techPW)
	return env
}

// tbWriter sends server logs to the test log.
type tbWriter struct{ tb testing.TB }

func (w *tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func (e *testEnv) mustLogin(email, pw string) string {
	e.t.Helper()
	var r LoginResponse
	if st := e.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: email, Password: pw}, &r); st != 200 {
		e.t.Fatalf("login %s: status %d", email, st)
	}
	return r.Token
}

// do sends a request and returns the response (body read into b).
func (e *testEnv) do(method, path, token, contentType string, body io.Reader) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// doJSON sends in as JSON (nil: no body) and decodes the reply into out.
func (e *testEnv) doJSON(method, path, token string, in, out any) int {
	e.t.Helper()
	var body io.Reader
	ct := ""
	if in != nil {
		b, _ := json.Marshal(in)
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, b := e.do(method, path, token, ct, body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: status %d, decode %q: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// upload posts files as multipart fields (field -> name -> bytes); a
// namedFile without a name is a text field.
func (e *testEnv) upload(path, token string, files map[string]namedFile, out any) int {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for field, f := range files {
		var w io.Writer
		if f.name == "" {
			w, _ = mw.CreateFormField(field)
		} else {
			w, _ = mw.CreateFormFile(field, f.name)
		}
		w.Write(f.data)
	}
	mw.Close()
	resp, b := e.do("POST", path, token, mw.FormDataContentType(), &buf)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("POST %s: status %d, decode %q: %v", path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type namedFile struct {
	name string
	data []byte
}

func mustRead(tb testing.TB, p string) []byte {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// photo reads a shared test photo.
func photo(tb testing.TB, rel string) []byte {
	tb.Helper()
	return mustRead(tb, recognizertest.Testdata(tb, rel))
}

// mustCreateUser creates a user through the API.
func (e *testEnv) mustCreateUser(name, email string) *models.User {
	e.t.Helper()
	var u models.User
	if st := e.doJSON("POST", "/api/v1/users", e.tech, UserInput{FullName: name, Email: email, Role: models.RoleTrainee}, &u); st != 201 {
		e.t.Fatalf("create user %s: status %d", email, st)
	}
	return &u
}

func errCode(b []byte) string {
	var r ErrorResponse
	_ = json.Unmarshal(b, &r)
	return r.Error.Code
}

func (e *testEnv) mustStatus(want, got int, what string, body ...[]byte) {
	e.t.Helper()
	if want != got {
		extra := ""
		if len(body) > 0 {
			extra = string(body[0])
		}
		e.t.Fatalf("%s: status %d, want %d %s", what, got, want, extra)
	}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

func readDirNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}

// testBus is a feedback bus with the pipeline's semantics (each subscriber
// its own buffered channel; a full one drops), publishing real
// models.Feedback values through FeedbackSource.
type testBus struct {
	mu   sync.Mutex
	subs map[chan models.Feedback]bool
}

func newTestBus() *testBus { return &testBus{subs: map[chan models.Feedback]bool{}} }

func (b *testBus) Subscribe(buffer int) (<-chan models.Feedback, func()) {
	ch := make(chan models.Feedback, buffer)
	b.mu.Lock()
	b.subs[ch] = true
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		if b.subs[ch] {
			delete(b.subs, ch)
			close(ch)
		}
		b.mu.Unlock()
	}
}

func (b *testBus) Publish(f models.Feedback) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- f:
		default:
		}
	}
}

func (b *testBus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
