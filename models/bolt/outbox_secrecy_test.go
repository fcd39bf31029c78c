package bolt_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// personalForms are the byte strings a descriptor and a name take in outbox
// payloads and backups: float32 little-endian, its base64, JSON numbers, and
// the name.
type personalForms map[string][]byte

func formsOf(name string, d *models.Descriptor) personalForms {
	le := bolt.DescriptorBytesForTest(d)
	js, _ := json.Marshal(d[:8])
	return personalForms{
		"float32 LE":   le[:64],
		"base64":       []byte(base64.StdEncoding.EncodeToString(le)[:64]),
		"JSON numbers": js[1 : len(js)-1],
		"name":         []byte(name),
	}
}

// findForms reports which forms occur in the raw bytes.
func findForms(raw []byte, f personalForms) []string {
	var found []string
	for what, b := range f {
		if strings.Contains(string(raw), string(b)) {
			found = append(found, what)
		}
	}
	return found
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enrolmentPayload is the shape sync and the API queue for an enrolment:
// the user record with the descriptor in JSON numbers and in base64.
func enrolmentPayload(t *testing.T, u *models.User, d *models.Descriptor) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"user":      u,
		"encodings": []map[string]any{{"descriptor": d[:], "b64": base64.StdEncoding.EncodeToString(bolt.DescriptorBytesForTest(d))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An enrolment queued for central never sits in the file in clear; when the
// user is deleted before it was sent, the message is dropped and scrubbed;
// the deletion notice (no descriptor) stays queued.
func TestOutboxSealedAndDroppedWithUser(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 12))
	db := bolttest.MustOpenDB(t)
	u := bolttest.MustCreateUser(t, db, &models.User{FullName: "Ada Lovelace"})
	d := bolttest.RandomDescriptor(rng)
	bolttest.MustAddEncoding(t, db, u.ID, d)
	enrol := &models.OutboxMessage{Kind: models.OutboxEnrolment, Key: "enrol-1", UserID: u.ID, Payload: enrolmentPayload(t, u, &d)}
	if err := db.Enqueue(ctx, enrol); err != nil {
		t.Fatal(err)
	}
	forms := formsOf("Ada Lovelace", &d)
	db = bolttest.MustReopenDB(t, db)
	// The name is in the live user record; the outbox adds no clear copy.
	raw := mustReadFile(t, db.Path())
	if found := findForms(raw, forms); len(found) != 1 || found[0] != "name" {
		t.Fatalf("with the user live and its enrolment queued, the file holds %v in clear; want only the user's name", found)
	}
	if got, _ := db.PendingOutbox(ctx, 0, 10); len(got) != 1 || string(got[0].Payload) != string(enrol.Payload) || got[0].UserID != u.ID {
		t.Fatalf("PendingOutbox = %+v", got)
	}

	if err := db.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	notice := &models.OutboxMessage{Kind: models.OutboxEnrolment, Key: "delete-1", Payload: []byte(`{"user":{"id":"` + u.ID + `"},"deleted":true}`)}
	if err := db.Enqueue(ctx, notice); err != nil {
		t.Fatal(err)
	}
	got, _ := db.PendingOutbox(ctx, 0, 10)
	if len(got) != 1 || got[0].Key != "delete-1" {
		t.Fatalf("after the deletion the outbox holds %+v; want only the deletion notice", got)
	}
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if found := findForms(mustReadFile(t, path), forms); len(found) != 0 {
		t.Fatalf("after deleting the user and the scrub, the file holds %v", found)
	}
}

// An acknowledged enrolment leaves no trace: the ack schedules a scrub, so
// the freed pages of the message are wiped even while the user stays.
func TestOutboxAckScrubs(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 14))
	db := bolttest.MustOpenDB(t)
	d := bolttest.RandomDescriptor(rng)
	u := &models.User{ID: "u-ack", FullName: "Alan Turing"}
	// A payload sealed or not, the descriptor of a user the store does not
	// hold must vanish after the ack: scan for the ciphertext's absence
	// through the plaintext forms and the stored bytes.
	if err := db.Enqueue(ctx, &models.OutboxMessage{Kind: models.OutboxEnrolment, Key: "k1", UserID: u.ID, Payload: enrolmentPayload(t, u, &d)}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordAttendance(ctx, &models.AttendanceEvent{UserID: "u-other", Time: bolttest.FixedNow, KioskID: "door", Distance: 0.3}); err != nil {
		t.Fatal(err)
	}
	sealed := db.RawOutboxForTest(1)
	if len(sealed) < 64 {
		t.Fatalf("raw outbox message: %d bytes", len(sealed))
	}
	db = bolttest.MustReopenDB(t, db)
	if !strings.Contains(string(mustReadFile(t, db.Path())), string(sealed[30:62])) {
		t.Fatal("the sealed message is not in the file (is the scan working?)")
	}
	before := db.Scrubs()
	if n, err := db.AckOutbox(ctx, []string{"k1"}); err != nil || n != 1 {
		t.Fatalf("AckOutbox = %d, %v", n, err)
	}
	if err := db.Scrub(); err != nil {
		t.Fatal(err)
	}
	if db.Scrubs() != before+1 {
		t.Fatalf("an enrolment's ack scheduled no scrub")
	}
	raw := mustReadFile(t, db.Path())
	if strings.Contains(string(raw), string(sealed[30:62])) {
		t.Fatal("the acked enrolment is still in the file after the scrub")
	}
	if found := findForms(raw, formsOf("Alan Turing", &d)); len(found) != 0 {
		t.Fatalf("the file holds %v", found)
	}
	// An attendance ack adds no scrub: the event stays in the store anyway.
	evs, _ := db.PendingOutbox(ctx, 0, 10)
	if _, err := db.AckOutbox(ctx, []string{evs[0].Key}); err != nil {
		t.Fatal(err)
	}
	if err := db.Scrub(); err != nil {
		t.Fatal(err)
	}
	if db.Scrubs() != before+1 {
		t.Fatalf("an attendance ack scheduled a scrub")
	}
}
