package localapi

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
)

// TestServeForSchemathesis runs a real server (real store, encoder and
// matcher, a few users and faces) until SIGINT/SIGTERM or 20 minutes, for
// scripts/schemathesis.sh. It runs only with KIOSK_ST_SERVE set to a file
// name, where it writes "URL TOKEN" once listening.
func TestServeForSchemathesis(t *testing.T) {
	out := os.Getenv("KIOSK_ST_SERVE")
	if out == "" {
		t.Skip("set KIOSK_ST_SERVE=FILE (scripts/schemathesis.sh does)")
	}
	env := mustServer(t, func(c *Config, d *Deps) {
		// A camera stand-in and a config store, so that every operation is
		// reachable (without them capture and PUT /config answer 503).
		d.Capturer = photoCapturer{enc: mustEncoder(t), img: photo(t, "people/kit_harington/1.jpg")}
		d.Config = &memConfig{v: map[string]any{"kiosk": map[string]any{"id": "kiosk-st"}}}
		c.TokenTTL = 2 * time.Hour
		c.TrustLoopback = false
		c.LoginMaxFailures, c.LoginMaxFailuresPerAddr = 1000, 1000 // fuzzing logs in wrongly a lot
	})
	ctx := context.Background()
	for _, p := range []string{"people/obama/1.jpg", "people/biden/1.jpg"} {
		u := &models.User{FullName: "Seed " + p, Email: "seed" + itoa(len(p)) + p[7:9] + "@example.com", Role: models.RoleTrainee}
		if err := env.db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		f, err := mustEncoder(t).EncodeOne(ctx, photo(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if err := env.db.AddEncoding(ctx, &models.FaceEncoding{UserID: u.ID, Descriptor: f.Descriptor, Source: models.SourceLocal}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(out, []byte(env.url+" "+env.admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(20 * time.Minute):
	}
	if st := env.doJSON("GET", "/healthz", "", nil, nil); st != 200 {
		t.Fatalf("healthz after fuzzing: %d", st)
	}
}

// photoCapturer plays the camera: it "captures" one real photo through the
// real encoder.
type photoCapturer struct {
	enc interface {
		EncodeOne(ctx context.Context, img []byte) (*models.Face, error)
	}
	img []byte
}

func (p photoCapturer) CaptureFaces(ctx context.Context, _ int) ([]models.Face, []byte, error) {
	f, err := p.enc.EncodeOne(ctx, p.img)
	if err != nil {
		return nil, nil, err
	}
	return []models.Face{*f}, p.img, nil
}

// memConfig is a ConfigProvider holding a JSON object; UpdateConfig applies
// a merge patch of top-level keys.
type memConfig struct {
	mu sync.Mutex
	v  map[string]any
}

func (m *memConfig) Config() any { m.mu.Lock(); defer m.mu.Unlock(); return m.v }

func (m *memConfig) UpdateConfig(_ context.Context, patch []byte) (any, error) {
	var p map[string]any
	if err := json.Unmarshal(patch, &p); err != nil || p == nil {
		return nil, models.Errorf(models.EINVALID, "config: want a JSON object")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range p {
		if v == nil {
			delete(m.v, k)
		} else {
			m.v[k] = v
		}
	}
	return m.v, nil
}
