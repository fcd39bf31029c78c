package bolt_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// TestEnrolWritesChangeAndMessageTogether: every change made on the device
// and its outbox message for central commit in one transaction. With the
// message's write failing, nothing of the change is left; without, both
// are there and the message carries the change.
func TestEnrolWritesChangeAndMessageTogether(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	injected := errors.New("injected outbox failure")
	mustOutboxLen := func(want int) {
		t.Helper()
		if n, err := db.OutboxLen(ctx); err != nil || n != want {
			t.Fatalf("outbox holds %d messages (err %v), want %d", n, err, want)
		}
	}

	// Create: a failed message leaves no user.
	db.FailEnrolmentMessagesForTest(injected)
	u := &models.User{Email: "ada@example.org", FullName: "Ada Lovelace", Role: models.RoleTrainee}
	if _, err := db.Enrol(ctx, &models.Enrolment{Op: models.EnrolCreateUser, User: u}); !errors.Is(err, injected) {
		t.Fatalf("Enrol(create) = %v, want the injected failure", err)
	}
	if _, err := db.GetUserByEmail(ctx, "ada@example.org"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("user after a failed enrolment message: err %v, want not_found", err)
	}
	mustOutboxLen(0)

	db.FailEnrolmentMessagesForTest(nil)
	u = &models.User{Email: "ada@example.org", FullName: "Ada Lovelace", Role: models.RoleTrainee}
	if _, err := db.Enrol(ctx, &models.Enrolment{Op: models.EnrolCreateUser, User: u}); err != nil {
		t.Fatal(err)
	}
	mustOutboxLen(1)

	// Add a face: a failed message leaves no encoding.
	enc := &models.FaceEncoding{UserID: u.ID, Descriptor: bolttest.RandomDescriptor(rng)}
	db.FailEnrolmentMessagesForTest(injected)
	if _, err := db.Enrol(ctx, &models.Enrolment{Op: models.EnrolAddFace, Encoding: enc}); !errors.Is(err, injected) {
		t.Fatalf("Enrol(add_face) = %v, want the injected failure", err)
	}
	if n, err := db.CountEncodings(ctx); err != nil || n != 0 {
		t.Fatalf("encodings after a failed enrolment message: %d (err %v), want 0", n, err)
	}
	mustOutboxLen(1)
	db.FailEnrolmentMessagesForTest(nil)
	enc.ID = ""
	if _, err := db.Enrol(ctx, &models.Enrolment{Op: models.EnrolAddFace, Encoding: enc}); err != nil {
		t.Fatal(err)
	}
	mustOutboxLen(2)
	msgs, err := db.PendingOutbox(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := msgs[len(msgs)-1].EnrolmentRecord()
	if err != nil {
		t.Fatal(err)
	}
	if rec.User.ID != u.ID || len(rec.Encodings) != 1 || rec.Encodings[0].Descriptor != enc.Descriptor {
		t.Fatalf("enrolment message carries user %q with %d encodings, want %q with the added face", rec.User.ID, len(rec.Encodings), u.ID)
	}

	// Delete: a failed notice leaves the user; a written one drops the
	// user's pending enrolments and stays alone.
	db.FailEnrolmentMessagesForTest(injected)
	if _, err := db.Enrol(ctx, &models.Enrolment{Op: models.EnrolDeleteUser, UserID: u.ID}); !errors.Is(err, injected) {
		t.Fatalf("Enrol(delete_user) = %v, want the injected failure", err)
	}
	if _, err := db.GetUser(ctx, u.ID); err != nil {
		t.Fatalf("user after a failed deletion notice: %v", err)
	}
	db.FailEnrolmentMessagesForTest(nil)
	if _, err := db.Enrol(ctx, &models.Enrolment{Op: models.EnrolDeleteUser, UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	mustOutboxLen(1)
	if msgs, err = db.PendingOutbox(ctx, 0, 10); err != nil {
		t.Fatal(err)
	}
	if rec, err = msgs[0].EnrolmentRecord(); err != nil || !rec.Deleted || rec.User.ID != u.ID {
		t.Fatalf("outbox holds %+v (err %v), want the deletion notice of %s", rec, err, u.ID)
	}
}

// TestUpsertLocalUsersQueuesEnrolments: bulk import writes each user with
// its enrolment message, and a failed message rolls the batch back.
func TestUpsertLocalUsersQueuesEnrolments(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	rng := rand.New(rand.NewPCG(3, 4))
	recs := []models.UserRecord{bolttest.NewUserRecord(rng, "u1", 0, 1), bolttest.NewUserRecord(rng, "u2", 0, 1)}
	db.FailEnrolmentMessagesForTest(errors.New("injected outbox failure"))
	if _, err := db.UpsertLocalUsers(ctx, recs); err == nil {
		t.Fatal("UpsertLocalUsers with failing enrolment messages succeeded")
	}
	if n, err := db.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("users after a failed batch: %d (err %v), want 0", n, err)
	}
	db.FailEnrolmentMessagesForTest(nil)
	res, err := db.UpsertLocalUsers(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
	}
	if n, err := db.OutboxLen(ctx); err != nil || n != 2 {
		t.Fatalf("outbox holds %d messages (err %v), want 2", n, err)
	}
}
