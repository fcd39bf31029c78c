package bolt_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// secrets are the bytes of one stored encoding that must vanish from the
// file once it is deleted.
type secrets struct {
	name       string
	plaintext  []byte // the descriptor as the sealer sees it
	ciphertext []byte // nonce and sealed descriptor, as stored
	stored     []byte // the whole stored value
}

func captureSecrets(t *testing.T, db *bolt.DB, enc *models.FaceEncoding) secrets {
	t.Helper()
	v := db.RawEncodingForTest(enc.UserID, enc.ID)
	if v == nil {
		t.Fatalf("encoding %s not stored", enc.ID)
	}
	return secrets{
		name:       enc.ID,
		plaintext:  bolt.DescriptorBytesForTest(&enc.Descriptor),
		ciphertext: v[len(v)-(24+512+16):],
		stored:     v,
	}
}

// scanFile reports which secrets are found in the raw file (and any file
// next to it: a leftover temporary copy would leak them too).
func scanFile(t *testing.T, path string, ss []secrets) (found []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		// A 32-byte window of the ciphertext is enough to identify it.
		if bytes.Contains(raw, s.ciphertext[24:56]) || bytes.Contains(raw, s.ciphertext[:24]) {
			found = append(found, s.name+" ciphertext")
		}
		if bytes.Contains(raw, s.plaintext[:64]) {
			found = append(found, s.name+" plaintext")
		}
	}
	return found
}

func TestStoreScrubDeleteUser(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	db := bolttest.MustOpenDB(t)
	u := bolttest.MustCreateUser(t, db, &models.User{FullName: "Grace Hopper"})
	keep := bolttest.MustCreateUser(t, db, &models.User{FullName: "Kept User"})
	var ss []secrets
	for range 2 {
		ss = append(ss, captureSecrets(t, db, bolttest.MustAddEncoding(t, db, u.ID, bolttest.RandomDescriptor(rng))))
	}
	kept := captureSecrets(t, db, bolttest.MustAddEncoding(t, db, keep.ID, bolttest.RandomDescriptor(rng)))

	path := db.Path()
	db = bolttest.MustReopenDB(t, db) // flush everything to the file
	if got := scanFile(t, path, ss); len(got) != 2 {
		t.Fatalf("before delete, scan found %v; want both ciphertexts (is the scan working?)", got)
	}
	if err := db.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := scanFile(t, path, ss); len(got) != 0 {
		t.Fatalf("after delete and close, found %v in the file", got)
	}
	if got := scanFile(t, path, []secrets{kept}); len(got) != 1 {
		t.Fatalf("the kept user's encoding: found %v, want its ciphertext", got)
	}
	assertNoStrays(t, path)
	db = bolttest.MustReopenDB(t, db)
	if n, _ := db.CountEncodings(ctx); n != 1 {
		t.Fatalf("CountEncodings after scrub = %d, want 1", n)
	}
}

// assertNoStrays fails when a temporary copy of the database was left next
// to it.
func assertNoStrays(t *testing.T, path string) {
	t.Helper()
	for _, suffix := range []string{".scrub", ".tmp"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Fatalf("%s%s left behind", path, suffix)
		}
	}
}

func TestStoreScrubDeleteEncoding(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	db := bolttest.MustOpenDB(t)
	u := bolttest.MustCreateUser(t, db, nil)
	gone := bolttest.MustAddEncoding(t, db, u.ID, bolttest.RandomDescriptor(rng))
	stay := bolttest.MustAddEncoding(t, db, u.ID, bolttest.RandomDescriptor(rng))
	sGone, sStay := captureSecrets(t, db, gone), captureSecrets(t, db, stay)
	if err := db.DeleteEncoding(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	// Scrub (what the background scrubber does after ScrubDelay) without
	// closing: the running store must keep working on the new file.
	if err := db.Scrub(); err != nil {
		t.Fatal(err)
	}
	if db.Scrubs() != 1 {
		t.Fatalf("Scrubs() = %d, want 1", db.Scrubs())
	}
	if got := scanFile(t, db.Path(), []secrets{sGone}); len(got) != 0 {
		t.Fatalf("after DeleteEncoding and scrub, found %v", got)
	}
	if got := scanFile(t, db.Path(), []secrets{sStay}); len(got) != 1 {
		t.Fatalf("kept encoding: found %v", got)
	}
	encs, err := db.ListEncodings(ctx, u.ID)
	if err != nil || len(encs) != 1 || encs[0].ID != stay.ID {
		t.Fatalf("ListEncodings after scrub = %v, %v", encs, err)
	}
	if err := db.DeleteEncoding(ctx, gone.ID); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("second DeleteEncoding: %v", err)
	}
}

func TestStoreScrubCentralDeletions(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	db := bolttest.MustOpenDB(t)
	recs := []models.UserRecord{
		bolttest.NewUserRecord(rng, "u1", 1, 2),
		bolttest.NewUserRecord(rng, "u2", 1, 2),
		bolttest.NewUserRecord(rng, "u3", 1, 2),
	}
	if _, err := db.ApplyUserRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	secretsOf := func(rec models.UserRecord) []secrets {
		var ss []secrets
		for i := range rec.Encodings {
			ss = append(ss, captureSecrets(t, db, &rec.Encodings[i]))
		}
		return ss
	}
	s1, s2, s3 := secretsOf(recs[0]), secretsOf(recs[1]), secretsOf(recs[2])

	// u1 goes by tombstone, u2 by absence from a snapshot.
	if _, err := db.ApplyUserRecords(ctx, []models.UserRecord{{User: models.User{ID: "u1", Version: 2}, Deleted: true}}); err != nil {
		t.Fatal(err)
	}
	if err := db.ReplaceAllUsers(ctx, []models.UserRecord{recs[2]}); err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := scanFile(t, path, append(s1, s2...)); len(got) != 0 {
		t.Fatalf("after tombstone and snapshot deletions, found %v", got)
	}
	if got := scanFile(t, path, s3); len(got) != 2 {
		t.Fatalf("u3 (still in the snapshot): found %v, want both ciphertexts", got)
	}
}

func TestStoreScrubBatchesDeletions(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 10))
	db := bolttest.MustOpenDB(t)
	var recs []models.UserRecord
	for i := range 300 {
		recs = append(recs, bolttest.NewUserRecord(rng, "c"+string(rune('a'+i%26))+string(rune('a'+i/26)), 1, 2))
	}
	if _, err := db.ApplyUserRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	var tombs []models.UserRecord
	for _, r := range recs {
		tombs = append(tombs, models.UserRecord{User: models.User{ID: r.User.ID, Version: 2}, Deleted: true})
	}
	if _, err := db.ApplyUserRecords(ctx, tombs); err != nil {
		t.Fatal(err)
	}
	// One transaction of 300 deletions, then many single deletions: the
	// scrubber has not run yet (DefaultScrubDelay) and runs once.
	for range 20 {
		u := bolttest.MustCreateUser(t, db, nil)
		if err := db.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.Scrubs(); n != 0 {
		t.Fatalf("scrubbed %d times before the delay", n)
	}
	if err := db.Scrub(); err != nil {
		t.Fatal(err)
	}
	if err := db.Scrub(); err != nil {
		t.Fatal(err)
	}
	if n := db.Scrubs(); n != 1 {
		t.Fatalf("Scrubs() = %d, want 1", n)
	}
}
