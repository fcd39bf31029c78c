package sync_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/models/password"
	"github.com/kioskd/kioskd/recognizer"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

const testSite = "site1"

var testKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) // tests only

// kiosk is a client on a real bbolt store and a real matcher.
type kiosk struct {
	db      models.Store
	matcher *recognizer.Matcher
	client  *ksync.Client
	cfg     ksync.Config
}

// testConfig is a configuration with short timeouts so faults heal quickly.
func testConfig(broker, device string) ksync.Config {
	cfg := ksync.DefaultConfig()
	cfg.Broker, cfg.DeviceID, cfg.SiteID = broker, device, testSite
	cfg.RegistryPublicKey = base64.StdEncoding.EncodeToString(testKey.Public().(ed25519.PublicKey))
	cfg.Heartbeat = time.Second
	cfg.KeepAlive = 2 * time.Second
	cfg.ConnectTimeout = 3 * time.Second
	cfg.AckTimeout = 3 * time.Second
	cfg.MinBackoff = 100 * time.Millisecond
	cfg.MaxBackoff = 2 * time.Second
	cfg.SnapshotTimeout = 5 * time.Second
	cfg.GapGrace = time.Second
	cfg.OutboxPoll = 50 * time.Millisecond
	cfg.CloseTimeout = 3 * time.Second
	return cfg
}

func mustKiosk(tb testing.TB, cfg ksync.Config, store models.Store) *kiosk {
	tb.Helper()
	if store == nil {
		store = bolttest.MustOpenDB(tb)
	}
	k := &kiosk{db: store, matcher: newTestMatcher(), cfg: cfg}
	k.client = ksync.NewClient(cfg, store, recognizer.NewGallery(store, k.matcher, nil), synctest.Logger(tb, "sync/"+cfg.DeviceID))
	k.client.PasswordHashSupported = password.PasswordHashSupported
	if err := k.client.Open(context.Background()); err != nil {
		tb.Fatalf("open client: %v", err)
	}
	tb.Cleanup(func() { k.client.Close() })
	return k
}

func mustRegistry(tb testing.TB, broker string, mut func(c *registrysim.Config)) *registrysim.Registry {
	tb.Helper()
	cfg := registrysim.Config{Broker: broker, Site: testSite, PrivateKey: testKey}
	if mut != nil {
		mut(&cfg)
	}
	r := registrysim.New(cfg, synctest.Logger(tb, "registry"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.Open(ctx); err != nil {
		tb.Fatalf("open registry: %v", err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// waitFor polls cond until it holds or d passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitConnected(tb testing.TB, k *kiosk) {
	tb.Helper()
	waitFor(tb, 15*time.Second, k.cfg.DeviceID+" connected", func() bool { return k.client.Status().Connected })
}

// storeState returns the store's central users with their versions and
// sorted descriptors, for comparison with the registry.
func storeState(tb testing.TB, s models.Store) map[string]string {
	tb.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for off := 0; ; off += models.MaxPageSize {
		us, _, err := s.ListUsers(ctx, models.UserFilter{Offset: off, Limit: models.MaxPageSize})
		if err != nil {
			tb.Fatal(err)
		}
		for _, u := range us {
			encs, err := s.ListEncodings(ctx, u.ID)
			if err != nil {
				tb.Fatal(err)
			}
			out[u.ID] = fingerprint(u, encs)
		}
		if len(us) < models.MaxPageSize {
			return out
		}
	}
}

func registryState(r *registrysim.Registry) map[string]string {
	out := map[string]string{}
	for _, rec := range r.Live() {
		u := rec.User
		u.Normalize()
		encs := make([]*models.FaceEncoding, len(rec.Encodings))
		for i := range rec.Encodings {
			encs[i] = &rec.Encodings[i]
		}
		out[u.ID] = fingerprint(&u, encs)
	}
	return out
}

func fingerprint(u *models.User, encs []*models.FaceEncoding) string {
	ds := make([]string, len(encs))
	for i, e := range encs {
		ds[i] = fmt.Sprint(e.Descriptor[:4])
	}
	slices.Sort(ds)
	return fmt.Sprintf("v%d|%s|%s|%s|%s|%v", u.Version, u.Email, u.FullName, u.Status, u.ClassGroup, ds)
}

func diffStates(a, b map[string]string) string {
	var diffs []string
	for k, v := range a {
		if b[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: store %q registry %q", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing in store (registry %q)", k, v))
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("... %d differences", len(diffs)))
	}
	return fmt.Sprint(diffs)
}

// randomUser returns a valid user record with n encodings.
func randomUser(id string, version int64, n int, seed int) models.UserRecord {
	rec := models.UserRecord{User: models.User{ID: id, Email: fmt.Sprintf("%s.v%d@example.org", id, version),
		FullName: fmt.Sprintf("User %s v%d", id, version), Role: models.RoleTrainee, Status: models.UserActive, Version: version}}
	for i := 0; i < n; i++ {
		rec.Encodings = append(rec.Encodings, models.FaceEncoding{ID: fmt.Sprintf("%s-e%d", id, i), UserID: id,
			Descriptor: testDescriptor(seed*7 + i), Source: models.SourceCentral, Model: models.DefaultModelName})
	}
	return rec
}
