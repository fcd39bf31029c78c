package bolt_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// mustRestore restores the backup at path into a new store and opens it.
func mustRestore(t *testing.T, path, keyPath string) *bolt.DB {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dbPath := filepath.Join(t.TempDir(), "restored.db")
	if err := bolt.RestoreBackup(f, keyPath, dbPath); err != nil {
		t.Fatalf("restore %s: %v", path, err)
	}
	db := bolt.NewDB(dbPath)
	db.KeyPath, db.NoSync = keyPath, true
	if err := db.Open(); err != nil {
		t.Fatalf("open restored %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Check(); err != nil {
		t.Fatalf("restored %s: %v", path, err)
	}
	return db
}

// Backups are encrypted (no descriptor form, name or email in clear), and
// deleting a user prunes it, its encodings and its pending enrolments from
// every backup already written, at the scrub after the deletion.
func TestBackupEncryptedAndPrunedOnDelete(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(21, 22))
	backups := t.TempDir()
	db := bolttest.MustOpenDBWith(t, func(db *bolt.DB) { db.BackupDir = backups })
	gone := bolttest.MustCreateUser(t, db, &models.User{FullName: "Hedy Lamarr"})
	dGone := bolttest.RandomDescriptor(rng)
	bolttest.MustAddEncoding(t, db, gone.ID, dGone)
	if err := db.Enqueue(ctx, &models.OutboxMessage{Kind: models.OutboxEnrolment, Key: "enrol-gone", UserID: gone.ID, Payload: enrolmentPayload(t, gone, &dGone)}); err != nil {
		t.Fatal(err)
	}
	kept := bolttest.MustCreateUser(t, db, &models.User{FullName: "Katherine Johnson"})
	dKept := bolttest.RandomDescriptor(rng)
	bolttest.MustAddEncoding(t, db, kept.ID, dKept)
	if err := db.RecordAttendance(ctx, &models.AttendanceEvent{UserID: gone.ID, Time: bolttest.FixedNow, KioskID: "door", Distance: 0.3}); err != nil {
		t.Fatal(err)
	}

	var paths []string
	for _, name := range []string{"kioskd-1.backup", "kioskd-2.backup"} {
		p := filepath.Join(backups, name)
		if _, err := db.WriteBackup(p); err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
			t.Fatalf("backup mode %v, want 0600", st.Mode().Perm())
		}
		paths = append(paths, p)
	}
	for _, p := range paths {
		raw := mustReadFile(t, p)
		for who, f := range map[string]personalForms{"gone": formsOf(gone.FullName, &dGone), "kept": formsOf(kept.FullName, &dKept)} {
			if found := findForms(raw, f); len(found) != 0 {
				t.Fatalf("backup %s holds %s's %v in clear", p, who, found)
			}
		}
		r := mustRestore(t, p, db.KeyPath)
		if _, err := r.GetUser(ctx, gone.ID); err != nil {
			t.Fatalf("before the deletion the backup lacks the user (is the check working?): %v", err)
		}
	}

	if err := db.DeleteUser(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.Scrub(); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		r := mustRestore(t, p, db.KeyPath)
		if _, err := r.GetUser(ctx, gone.ID); models.ErrorCode(err) != models.ENOTFOUND {
			t.Fatalf("%s: deleted user restored: %v", p, err)
		}
		if _, err := r.GetUserByEmail(ctx, gone.Email); models.ErrorCode(err) != models.ENOTFOUND {
			t.Fatalf("%s: deleted user's email index restored: %v", p, err)
		}
		msgs, _ := r.PendingOutbox(ctx, 0, 100)
		for _, m := range msgs {
			if m.UserID == gone.ID {
				t.Fatalf("%s: deleted user's enrolment restored", p)
			}
		}
		if len(msgs) != 1 || msgs[0].Kind != models.OutboxAttendance {
			t.Fatalf("%s: restored outbox %+v, want the attendance event only", p, msgs)
		}
		encs, err := r.ListEncodings(ctx, kept.ID)
		if err != nil || len(encs) != 1 || encs[0].Descriptor != dKept {
			t.Fatalf("%s: kept user's encodings %v %v", p, encs, err)
		}
		if n, _ := r.CountEncodings(ctx); n != 1 {
			t.Fatalf("%s: %d encodings restored, want 1", p, n)
		}
	}
	entries, _ := os.ReadDir(backups)
	if len(entries) != 2 {
		t.Fatalf("backup dir holds %d files after pruning, want 2 (no temporary left)", len(entries))
	}
}

// Backups written while users are deleted, scrubbed and pruned, and the
// store closed meanwhile, neither deadlock nor leave a backup that fails to
// restore.
func TestBackupConcurrentWithScrubAndClose(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(31, 32))
	backups := t.TempDir()
	db := bolttest.MustOpenDBWith(t, func(db *bolt.DB) { db.BackupDir = backups })
	var ids []string
	for range 40 {
		u := bolttest.MustCreateUser(t, db, nil)
		bolttest.MustAddEncoding(t, db, u.ID, bolttest.RandomDescriptor(rng))
		ids = append(ids, u.ID)
	}
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if _, err := db.WriteBackup(filepath.Join(backups, "kioskd-"+strconv.Itoa(i%3)+".backup")); err != nil {
				done <- err
				return
			}
		}
	}()
	for _, id := range ids[:20] {
		if err := db.DeleteUser(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := db.Scrub(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, bolt.ErrClosed) {
		t.Fatalf("backup writer stopped with %v, want ErrClosed", err)
	}
	entries, _ := os.ReadDir(backups)
	for _, e := range entries {
		r := mustRestore(t, filepath.Join(backups, e.Name()), db.KeyPath)
		for _, id := range ids[:20] {
			if _, err := r.GetUser(ctx, id); models.ErrorCode(err) != models.ENOTFOUND {
				t.Fatalf("%s: deleted user %s restored after close pruned: %v", e.Name(), id, err)
			}
		}
	}
}

// A deletion committed while a prune runs (pruning goes on beside writers)
// keeps its mark: the next prune removes that user from the backups the
// running one had already passed. (The crash campaign found a deleted user
// in a backup after the prune cleared a newer deletion's mark.)
func TestBackupDeletionDuringPruneKeepsMark(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(41, 42))
	backups := t.TempDir()
	db := bolttest.MustOpenDBWith(t, func(db *bolt.DB) { db.BackupDir = backups })
	var ids []string
	for range 60 {
		u := bolttest.MustCreateUser(t, db, nil)
		bolttest.MustAddEncoding(t, db, u.ID, bolttest.RandomDescriptor(rng))
		ids = append(ids, u.ID)
	}
	for i := range 4 {
		if _, err := db.WriteBackup(filepath.Join(backups, "kioskd-"+strconv.Itoa(i)+".backup")); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	pruned := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				pruned <- nil
				return
			default:
			}
			if err := db.Scrub(); err != nil {
				pruned <- err
				return
			}
		}
	}()
	for _, id := range ids[:40] {
		if err := db.DeleteUser(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-pruned; err != nil {
		t.Fatal(err)
	}
	if err := db.Scrub(); err != nil { // the last deletions' prune
		t.Fatal(err)
	}
	for i := range 4 {
		r := mustRestore(t, filepath.Join(backups, "kioskd-"+strconv.Itoa(i)+".backup"), db.KeyPath)
		for _, id := range ids[:40] {
			if _, err := r.GetUser(ctx, id); models.ErrorCode(err) != models.ENOTFOUND {
				t.Fatalf("backup %d brings back deleted user %s: %v", i, id, err)
			}
		}
	}
}
