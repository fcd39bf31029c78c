package bolt_test

import (
	"context"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// A central account (Source central) can never replace a device-local one
// with the same email, whatever its version; a local account may replace a
// local one.
func TestStoreCentralCannotReplaceLocalAccount(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	local := &models.LocalAccount{Email: "owner@example.org", Role: models.AccountAdmin, PasswordHash: "argon2id$local"}
	if err := db.PutAccount(ctx, local); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int64{0, 1, 1 << 40} {
		push := &models.LocalAccount{Email: "OWNER@example.org ", Role: models.AccountAdmin, PasswordHash: "pbkdf2_sha256$x", Source: models.SourceCentral, Version: v}
		if err := db.PutAccount(ctx, push); models.ErrorCode(err) != models.EFORBIDDEN {
			t.Fatalf("central push version %d over a local account: %v, want EFORBIDDEN", v, err)
		}
	}
	got, err := db.GetAccount(ctx, "owner@example.org")
	if err != nil || got.PasswordHash != "argon2id$local" || got.Source != models.SourceLocal {
		t.Fatalf("local account after refused pushes: %+v %v", got, err)
	}
	local.PasswordHash = "argon2id$changed"
	if err := db.PutAccount(ctx, local); err != nil {
		t.Fatalf("local update of a local account: %v", err)
	}
}

// UpdateAccount edits a central account on the device without touching
// central's Source and Version, marks it overridden, validates the result
// and writes nothing when fn or validation fails; PutAccount of a newer
// central version clears the mark.
func TestStoreUpdateAccountKeepsCentralVersion(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	push := &models.LocalAccount{Email: "trainer@example.org", Role: models.AccountTechnician, PasswordHash: "pbkdf2_sha256$x", Source: models.SourceCentral, Version: 3}
	if err := db.PutAccount(ctx, push); err != nil {
		t.Fatal(err)
	}
	got, err := db.UpdateAccount(ctx, "Trainer@example.org", func(a *models.LocalAccount) error {
		a.Role, a.Disabled, a.Version, a.Source = models.AccountAdmin, true, 99, models.SourceLocal
		return nil
	})
	if err != nil || got.Role != models.AccountAdmin || !got.Disabled || got.Version != 3 || got.Source != models.SourceCentral || !got.LocalOverride {
		t.Fatalf("UpdateAccount: %+v %v", got, err)
	}
	if _, err := db.UpdateAccount(ctx, push.Email, func(a *models.LocalAccount) error { a.Role = "owner"; return nil }); models.ErrorCode(err) != models.EINVALID {
		t.Fatalf("invalid role: %v, want EINVALID", err)
	}
	if _, err := db.UpdateAccount(ctx, "nobody@example.org", func(*models.LocalAccount) error { return nil }); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("missing account: %v, want ENOTFOUND", err)
	}
	if err := db.PutAccount(ctx, &models.LocalAccount{Email: push.Email, Role: models.AccountTechnician, PasswordHash: "pbkdf2_sha256$x", Source: models.SourceCentral, Version: 3}); models.ErrorCode(err) != models.ESTALE {
		t.Fatalf("replayed version 3: %v, want ESTALE", err)
	}
	if a, err := db.GetAccount(ctx, push.Email); err != nil || a.Role != models.AccountAdmin || !a.LocalOverride {
		t.Fatalf("after refused edits: %+v %v", a, err)
	}
	if err := db.PutAccount(ctx, &models.LocalAccount{Email: push.Email, Role: models.AccountTechnician, PasswordHash: "pbkdf2_sha256$x", Source: models.SourceCentral, Version: 4}); err != nil {
		t.Fatal(err)
	}
	if a, err := db.GetAccount(ctx, push.Email); err != nil || a.Role != models.AccountTechnician || a.Disabled || a.LocalOverride {
		t.Fatalf("after central's version 4: %+v %v", a, err)
	}
}
