package sync_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/synctest"
)

// A central account push may not take over an account created on the
// device: an upsert for a local admin's email (new hash, then a delete) is
// refused, reported to central as a failed result, and the local admin
// keeps its password and stays.
func TestAccountPushCannotTakeOverLocalAdmin(t *testing.T) {
	b := synctest.MustMosquitto(t)
	reg := mustRegistry(t, b.URL, nil)
	db := bolttest.MustOpenDB(t)
	ctx := context.Background()
	const localHash = "argon2id$v=19$m=65536,t=3,p=2$local$hash"
	if err := db.PutAccount(ctx, &models.LocalAccount{Email: "owner@example.org", Role: models.AccountAdmin, PasswordHash: localHash}); err != nil {
		t.Fatal(err)
	}
	k := mustKiosk(t, testConfig(b.URL, "kiosk-a"), db)
	waitConnected(t, k)

	const djangoHash = "pbkdf2_sha256$600000$Ax5QYgVtmHZ2$Oq0gVQwoB9jzg6z2ZBJZUz4cLHtBMJt4CRLgmJGwXY8="
	pushes := []ksync.AccountPush{
		{Op: "upsert", Email: "Owner@Example.org", Role: "admin", PasswordHash: djangoHash, EmailVerified: true, Version: 5},
		{Op: "delete", Email: "owner@example.org", Version: 6},
	}
	for _, ap := range pushes {
		if err := reg.SendAccount(ctx, "kiosk-a", ap); err != nil {
			t.Fatal(err)
		}
	}
	accountResults := func() []ksync.CommandResult {
		return slices.DeleteFunc(reg.Results(), func(r ksync.CommandResult) bool { return r.Purpose != ksync.DownAccount })
	}
	waitFor(t, 15*time.Second, "two account results", func() bool { return len(accountResults()) == 2 })
	for _, r := range accountResults() {
		if r.OK || !strings.Contains(r.Error, "created on the device") {
			t.Fatalf("push %s reported %+v, want refused as a device-local account", r.Name, r)
		}
	}
	a, err := db.GetAccount(ctx, "owner@example.org")
	if err != nil {
		t.Fatalf("local admin gone: %v", err)
	}
	if a.PasswordHash != localHash || a.Source != models.SourceLocal || a.Version != 0 {
		t.Fatalf("local admin changed by central: %+v", a)
	}
}
