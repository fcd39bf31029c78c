package bolt_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

func TestStoreUserCRUD(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	rng := rand.New(rand.NewPCG(1, 2))

	u := bolttest.MustCreateUser(t, db, &models.User{FullName: "Ada Lovelace", Email: " Ada@Example.org ", ExternalID: "S001"})
	if u.ID == "" || u.Email != "ada@example.org" {
		t.Fatalf("created user = %+v", u)
	}
	d := bolttest.RandomDescriptor(rng)
	enc := bolttest.MustAddEncoding(t, db, u.ID, d)

	got, err := db.GetUserByEmail(ctx, "ADA@example.org")
	if err != nil || got.ID != u.ID {
		t.Fatalf("GetUserByEmail = %v, %v", got, err)
	}
	got, err = db.GetUserByExternalID(ctx, "S001")
	if err != nil || got.ID != u.ID {
		t.Fatalf("GetUserByExternalID = %v, %v", got, err)
	}
	encs, err := db.ListEncodings(ctx, u.ID)
	if err != nil || len(encs) != 1 || encs[0].Descriptor != d || encs[0].ID != enc.ID {
		t.Fatalf("ListEncodings = %v, %v", encs, err)
	}

	db = bolttest.MustReopenDB(t, db)
	n := 0
	if err := db.ForEachEncoding(ctx, func(e *models.FaceEncoding) error {
		n++
		if e.Descriptor != d || e.UserID != u.ID {
			t.Errorf("ForEachEncoding got %+v", e)
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("ForEachEncoding: n=%d err=%v", n, err)
	}
	if err := db.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetUser(ctx, u.ID); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("GetUser after delete: %v", err)
	}
	if n, _ := db.CountEncodings(ctx); n != 0 {
		t.Fatalf("CountEncodings = %d", n)
	}
}
