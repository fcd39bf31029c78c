package models_test

import (
	"context"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/modelstest"
)

// A central account (Source central) can never replace a device-local one
// with the same email, whatever its version; a local account may replace a
// local one.
func TestStoreCentralCannotReplaceLocalAccount(t *testing.T) {
	ctx := context.Background()
	db := modelstest.MustOpenDB(t)
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
