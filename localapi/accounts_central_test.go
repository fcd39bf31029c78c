package localapi

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
	"github.com/kioskd/kioskd/recognizer"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

// centralLink connects a sync client on the test server's store and a
// registry simulator through a real Mosquitto.
func centralLink(t *testing.T, e *testEnv) *registrysim.Registry {
	t.Helper()
	b := synctest.MustMosquitto(t)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) // tests only
	cfg := ksync.DefaultConfig()
	cfg.Broker, cfg.DeviceID, cfg.SiteID = b.URL, "kiosk-test", "site1"
	cfg.RegistryPublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	cfg.ConnectTimeout, cfg.MinBackoff, cfg.CloseTimeout = 3*time.Second, 100*time.Millisecond, 3*time.Second
	client := ksync.NewClient(cfg, e.db, recognizer.NewGallery(e.db, e.matcher, nil), synctest.Logger(t, "sync"))
	client.PasswordHashSupported = password.PasswordHashSupported
	if err := client.Open(context.Background()); err != nil {
		t.Fatalf("open sync client: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	reg := registrysim.New(registrysim.Config{Broker: b.URL, Site: "site1", PrivateKey: key}, synctest.Logger(t, "registry"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := reg.Open(ctx); err != nil {
		t.Fatalf("open registry: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	waitUntil(t, "sync client connected", func() bool { return client.Status().Connected })
	return reg
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pushAccount sends ap from the registry and waits for the kiosk's result.
func pushAccount(t *testing.T, reg *registrysim.Registry, ap ksync.AccountPush) ksync.CommandResult {
	t.Helper()
	accountResults := func() []ksync.CommandResult {
		return slices.DeleteFunc(reg.Results(), func(r ksync.CommandResult) bool { return r.Purpose != ksync.DownAccount })
	}
	n := len(accountResults())
	if err := reg.SendAccount(context.Background(), "kiosk-test", ap); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "account result", func() bool { return len(accountResults()) > n })
	return accountResults()[n]
}

// Central's accounts are managed on the device too: a local admin disables,
// enables and re-roles one and its holder changes the password although the
// stored version stays central's (no "not newer" 409); the override stands
// against a replay of that version and gives way to a newer one; a newer
// push that is disabled or unverified ends the holder's session at once.
func TestCentralAccountLocalOverride(t *testing.T) {
	e := mustServer(t, nil)
	reg := centralLink(t, e)
	const email, pw, newPW = "trainer@example.org", "copper-lantern-48-meadow", "silver-orchard-27-violin"
	h, err := password.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	push := ksync.AccountPush{Op: "upsert", Email: email, Role: "technician", PasswordHash: h, EmailVerified: true, Version: 3}
	if r := pushAccount(t, reg, push); !r.OK {
		t.Fatalf("central push v3: %+v", r)
	}
	holder := e.mustLogin(email, pw)

	// The holder, a technician, changes the password; the account stays
	// central's.
	e.mustStatus(204, e.doJSON("PUT", "/api/v1/me/password", holder, PasswordChange{Current: pw, New: newPW}, nil), "holder changes the password")
	holder = e.mustLogin(email, newPW)
	if a, err := e.db.GetAccount(context.Background(), email); err != nil || a.Source != models.SourceCentral || a.Version != 3 || !a.LocalOverride {
		t.Fatalf("after the holder's password change: %+v %v", a, err)
	}

	// The admin re-roles and disables it; the holder's session ends.
	var got models.LocalAccount
	f, tr := false, true
	e.mustStatus(200, e.doJSON("PUT", "/api/v1/accounts/"+email, e.admin, AccountInput{Role: models.AccountAdmin, Disabled: &tr}, &got), "admin disables a central account")
	if !got.Disabled || got.Role != models.AccountAdmin || got.Source != models.SourceCentral || got.Version != 3 || !got.LocalOverride {
		t.Fatalf("after the local edit: %+v", got)
	}
	e.mustStatus(401, e.doJSON("GET", "/api/v1/me", holder, nil, nil), "session of a locally disabled account")
	e.mustStatus(200, e.doJSON("PUT", "/api/v1/accounts/"+email, e.admin, AccountInput{Disabled: &f}, &got), "admin enables it again")

	holder = e.mustLogin(email, newPW)

	// A replay of version 3 does not undo the override.
	if r := pushAccount(t, reg, push); !r.OK {
		t.Fatalf("replayed v3: %+v", r)
	}
	a, err := e.db.GetAccount(context.Background(), email)
	if err != nil || a.Role != models.AccountAdmin || a.Disabled || !a.LocalOverride || a.Source != models.SourceCentral {
		t.Fatalf("override after a replay of v3: %+v %v", a, err)
	}
	e.mustStatus(200, e.doJSON("GET", "/api/v1/me", holder, nil, nil), "holder's session after a stale push")

	// A newer unverified push disables the account and ends the session.
	e.clock.Advance(2 * accountCacheTTL)
	unverified := push
	unverified.Version, unverified.EmailVerified = 4, false
	if r := pushAccount(t, reg, unverified); !r.OK {
		t.Fatalf("unverified v4: %+v", r)
	}
	e.clock.Advance(2 * accountCacheTTL)
	e.mustStatus(401, e.doJSON("GET", "/api/v1/me", holder, nil, nil), "session after central's unverified push")
	if a, err = e.db.GetAccount(context.Background(), email); err != nil || !a.Disabled || a.Version != 4 || a.LocalOverride {
		t.Fatalf("after the unverified push: %+v %v", a, err)
	}

	// A newer verified push replaces the override: central's role and
	// password again; then a disabled push ends the new session.
	push.Version = 5
	if r := pushAccount(t, reg, push); !r.OK {
		t.Fatalf("central push v5: %+v", r)
	}
	holder = e.mustLogin(email, pw)
	if a, err = e.db.GetAccount(context.Background(), email); err != nil || a.Role != models.AccountTechnician || a.Disabled || a.LocalOverride {
		t.Fatalf("after v5: %+v %v", a, err)
	}
	push.Version, push.Disabled = 6, true
	if r := pushAccount(t, reg, push); !r.OK {
		t.Fatalf("disabled v6: %+v", r)
	}
	e.clock.Advance(2 * accountCacheTTL)
	e.mustStatus(401, e.doJSON("GET", "/api/v1/me", holder, nil, nil), "session after central's disabled push")
}
