package bolt_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

func TestStoreUserValidationAndConflicts(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	a := bolttest.MustCreateUser(t, db, &models.User{Email: "a@example.org", ExternalID: "A1"})
	for _, tc := range []struct {
		code, field string
		u           models.User
	}{
		{models.EINVALID, "email", models.User{FullName: "X", Email: "bad", Role: models.RoleTrainee}},
		{models.EINVALID, "full_name", models.User{Email: "x@example.org", Role: models.RoleTrainee}},
		{models.EINVALID, "role", models.User{FullName: "X", Email: "x@example.org", Role: "boss"}},
		{models.EINVALID, "id", models.User{ID: "a\x01", FullName: "X", Email: "x@example.org", Role: models.RoleTrainee}},
		{models.ECONFLICT, "email", models.User{FullName: "X", Email: "A@example.org", Role: models.RoleTrainee}},
		{models.ECONFLICT, "external_id", models.User{FullName: "X", Email: "x@example.org", ExternalID: "A1", Role: models.RoleTrainee}},
		{models.ECONFLICT, "id", models.User{ID: a.ID, FullName: "X", Email: "x@example.org", Role: models.RoleTrainee}},
	} {
		u := tc.u
		err := db.CreateUser(ctx, &u)
		if models.ErrorCode(err) != tc.code || !strings.HasPrefix(models.ErrorMessage(err), tc.field+":") {
			t.Errorf("%s %s: err = %v", tc.code, tc.field, err)
		}
	}
	if n, _ := db.CountUsers(ctx); n != 1 {
		t.Fatalf("refused creates wrote users: %d", n)
	}
	// Update: email change frees the old email.
	a.Email = "a2@example.org"
	if err := db.UpdateUser(ctx, a); err != nil {
		t.Fatal(err)
	}
	bolttest.MustCreateUser(t, db, &models.User{Email: "a@example.org"})
	if err := db.UpdateUser(ctx, &models.User{ID: "ghost", FullName: "G", Email: "g@example.org", Role: models.RoleTrainee}); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("update ghost: %v", err)
	}
	// Encodings: unknown user, bad descriptor, too many.
	rng := rand.New(rand.NewPCG(1, 1))
	if err := db.AddEncoding(ctx, &models.FaceEncoding{UserID: "ghost", Descriptor: bolttest.RandomDescriptor(rng)}); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("encoding for ghost: %v", err)
	}
	if err := db.AddEncoding(ctx, &models.FaceEncoding{UserID: a.ID}); models.ErrorCode(err) != models.EINVALID {
		t.Fatalf("zero descriptor: %v", err)
	}
	for range models.MaxEncodingsPerUser {
		bolttest.MustAddEncoding(t, db, a.ID, bolttest.RandomDescriptor(rng))
	}
	if err := db.AddEncoding(ctx, &models.FaceEncoding{UserID: a.ID, Descriptor: bolttest.RandomDescriptor(rng)}); models.ErrorCode(err) != models.ETOOLARGE {
		t.Fatalf("one too many: %v", err)
	}
}

func TestStoreListUsers(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	names := []string{"zoe Adams", "Bob Brown", "alice Clark", "Bob Brown", "Carol Diaz"}
	for i, n := range names {
		bolttest.MustCreateUser(t, db, &models.User{ID: fmt.Sprintf("id%d", i), FullName: n, ExternalID: fmt.Sprintf("EXT-%d", i), ClassGroup: "G" + fmt.Sprint(i%2)})
	}
	users, total, err := db.ListUsers(ctx, models.UserFilter{})
	if err != nil || total != 5 {
		t.Fatal(total, err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.FullName+"/"+u.ID)
	}
	want := "alice Clark/id2,Bob Brown/id1,Bob Brown/id3,Carol Diaz/id4,zoe Adams/id0"
	if strings.Join(got, ",") != want {
		t.Fatalf("order = %v, want %s", got, want)
	}
	page, total, _ := db.ListUsers(ctx, models.UserFilter{Offset: 1, Limit: 2})
	if total != 5 || len(page) != 2 || page[0].ID != "id1" || page[1].ID != "id3" {
		t.Fatalf("page = %v total %d", page, total)
	}
	for q, n := range map[string]int{"BROWN": 2, "ext-4": 1, "user": 5 /* emails are userN@ */, "nobody": 0} {
		if _, total, _ := db.ListUsers(ctx, models.UserFilter{Query: q}); total != n {
			t.Errorf("Query %q: total %d, want %d", q, total, n)
		}
	}
	if _, total, _ := db.ListUsers(ctx, models.UserFilter{ClassGroup: "g1", Query: "bob"}); total != 2 {
		t.Errorf("class group + query: %d", total)
	}
}

func TestStoreForEachEncodingSkipsInactive(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(2, 2))
	db := bolttest.MustOpenDB(t)
	on := bolttest.MustCreateUser(t, db, nil)
	off := bolttest.MustCreateUser(t, db, &models.User{Status: models.UserSuspended})
	bolttest.MustAddEncoding(t, db, on.ID, bolttest.RandomDescriptor(rng))
	bolttest.MustAddEncoding(t, db, off.ID, bolttest.RandomDescriptor(rng))
	var users []string
	if err := db.ForEachEncoding(ctx, func(e *models.FaceEncoding) error {
		users = append(users, e.UserID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0] != on.ID {
		t.Fatalf("ForEachEncoding users = %v", users)
	}
}

func TestStoreKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.db")
	open := func() error {
		db := bolt.NewDB(path)
		db.NoSync = true
		err := db.Open()
		if err == nil {
			db.Close()
		}
		return err
	}
	if err := open(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path + ".key")
	if err != nil || fi.Size() != bolt.KeySize || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("db mode %v", fi.Mode())
	}
	key, _ := os.ReadFile(path + ".key")

	os.Chmod(path+".key", 0o640)
	if err := open(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key: %v", err)
	}
	os.Chmod(path+".key", 0o600)
	os.WriteFile(path+".key", key[:16], 0o600)
	if err := open(); err == nil || !strings.Contains(err.Error(), "holds 16 bytes") {
		t.Fatalf("short key: %v", err)
	}
	other := bytes.Repeat([]byte{7}, bolt.KeySize)
	os.WriteFile(path+".key", other, 0o600)
	if err := open(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("wrong key: %v", err)
	}
	os.Remove(path + ".key")
	if err := open(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key: %v", err)
	}
	os.WriteFile(path+".key", key, 0o600)
	if err := open(); err != nil {
		t.Fatalf("restored key: %v", err)
	}
}

func TestStoreOpenRefusesInconsistentFile(t *testing.T) {
	db := bolttest.MustOpenDB(t)
	u := bolttest.MustCreateUser(t, db, &models.User{Email: "x@example.org"})
	if err := db.RawUpdateForTest(func(tx *bbolt.Tx) error {
		return tx.Bucket(bolt.BucketEmailForTest).Delete([]byte(u.Email))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err == nil {
		t.Fatal("Check passed with a missing email index entry")
	}
	db.Close()
	db2 := bolt.NewDB(db.Path())
	db2.NoSync = true
	err := db2.Open()
	if err == nil || !strings.Contains(err.Error(), "consistency check") || !strings.Contains(err.Error(), "email index") {
		db2.Close()
		t.Fatalf("Open = %v, want a consistency error naming the email index", err)
	}
}

// TestStoreMigrateFromV1 writes a schema-1 file by hand (no name index, no
// per-user latest attendance index, no key check) and checks Open migrates
// it.
func TestStoreMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "v1.db")
	key := bytes.Repeat([]byte{42}, bolt.KeySize)
	if err := os.WriteFile(path+".key", key, 0o600); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	d := bolttest.RandomDescriptor(rng)
	t0 := bolttest.FixedNow

	bdb, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bbolt.Tx) error {
		if err := bolt.MigrateV1ForTest(tx); err != nil {
			return err
		}
		if err := tx.Bucket(bolt.BucketSchemaForTest).Put([]byte("version"), binary.BigEndian.AppendUint64(nil, 1)); err != nil {
			return err
		}
		for _, u := range []models.User{
			{ID: "u2", Email: "b@example.org", FullName: "Zed", Role: models.RoleTrainee, Status: models.UserActive},
			{ID: "u1", Email: "a@example.org", FullName: "Amy", Role: models.RoleTrainer, Status: models.UserActive, ExternalID: "E1"},
		} {
			v, _ := json.Marshal(u)
			tx.Bucket(bolt.BucketUsersForTest).Put([]byte(u.ID), v)
			tx.Bucket(bolt.BucketEmailForTest).Put([]byte(u.Email), []byte(u.ID))
			if u.ExternalID != "" {
				tx.Bucket(bolt.BucketExtIDForTest).Put([]byte(u.ExternalID), []byte(u.ID))
			}
		}
		enc := &models.FaceEncoding{ID: "e1", UserID: "u1", Descriptor: d, Source: models.SourceCentral, Model: models.DefaultModelName, CreatedAt: t0}
		sealed, err := bolt.SealEncodingForTest(key, enc)
		if err != nil {
			return err
		}
		tx.Bucket(bolt.BucketEncodingsForTest).Put(bolt.EncodingKeyForTest("u1", "e1"), sealed)
		tx.Bucket(bolt.BucketEncIDsForTest).Put([]byte("e1"), []byte("u1"))
		for i, uid := range []string{"u1", "u2", "u1"} {
			ev := models.AttendanceEvent{ID: fmt.Sprintf("ev%d", i), UserID: uid, Time: t0.Add(time.Duration(i) * time.Hour), KioskID: "k", SyncState: models.SyncAcked}
			v, _ := json.Marshal(ev)
			k := bolt.AttendanceKeyForTest(ev.Time, ev.ID)
			tx.Bucket(bolt.BucketAttendanceForTest).Put(k, v)
			tx.Bucket(bolt.BucketAttIDsForTest).Put([]byte(ev.ID), k)
		}
		// An enrolment queued in clear, as before schema 3.
		ob := tx.Bucket(bolt.BucketOutboxForTest)
		ob.SetSequence(1)
		seq := binary.BigEndian.AppendUint64(nil, 1)
		m, _ := json.Marshal(models.OutboxMessage{Seq: 1, Kind: models.OutboxEnrolment, Key: "k-old", Payload: []byte(`{"full_name":"Old Clear Name"}`)})
		ob.Put(seq, m)
		tx.Bucket(bolt.BucketOutboxKeysForTest).Put(append([]byte("k-old\x00"), seq...), nil)
		return nil
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}

	db := bolt.NewDB(path)
	db.NoSync = true
	if err := db.Open(); err != nil {
		t.Fatalf("open v1 file: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatalf("check after migration: %v", err)
	}
	users, _, err := db.ListUsers(ctx, models.UserFilter{})
	if err != nil || len(users) != 2 || users[0].ID != "u1" {
		t.Fatalf("ListUsers after migration = %v %v", users, err)
	}
	if last, err := db.LastAttendance(ctx, "u1"); err != nil || last.ID != "ev2" {
		t.Fatalf("LastAttendance after migration = %v %v", last, err)
	}
	encs, err := db.ListEncodings(ctx, "u1")
	if err != nil || len(encs) != 1 || encs[0].Descriptor != d {
		t.Fatalf("encodings after migration = %v %v", encs, err)
	}
	// The queued message is sealed, and its clear copy scrubbed at Open.
	if msgs, err := db.PendingOutbox(ctx, 0, 10); err != nil || len(msgs) != 1 || string(msgs[0].Payload) != `{"full_name":"Old Clear Name"}` {
		t.Fatalf("outbox after migration = %v %v", msgs, err)
	}
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, []byte("Old Clear Name")) {
		t.Fatal("the outbox message is still in clear in the file after migration")
	}
	// The key check is now stored: a different key is refused.
	db.Close()
	os.WriteFile(path+".key", bytes.Repeat([]byte{1}, bolt.KeySize), 0o600)
	db3 := bolt.NewDB(path)
	if err := db3.Open(); err == nil || !strings.Contains(err.Error(), "does not match") {
		db3.Close()
		t.Fatalf("wrong key after migration: %v", err)
	}
}

func TestStoreRefusesNewerSchema(t *testing.T) {
	db := bolttest.MustOpenDB(t)
	db.RawUpdateForTest(func(tx *bbolt.Tx) error {
		return tx.Bucket(bolt.BucketSchemaForTest).Put([]byte("version"), binary.BigEndian.AppendUint64(nil, bolt.SchemaVersion+1))
	})
	db.Close()
	db2 := bolt.NewDB(db.Path())
	if err := db2.Open(); err == nil || !strings.Contains(err.Error(), "newer") {
		db2.Close()
		t.Fatalf("Open = %v", err)
	}
}

func TestStoreBackup(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(4, 4))
	db := bolttest.MustOpenDB(t)
	u := bolttest.MustCreateUser(t, db, nil)
	d := bolttest.RandomDescriptor(rng)
	bolttest.MustAddEncoding(t, db, u.ID, d)
	gone := bolttest.MustCreateUser(t, db, nil)
	secret := captureSecrets(t, db, bolttest.MustAddEncoding(t, db, gone.ID, bolttest.RandomDescriptor(rng)))
	if err := db.DeleteUser(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := db.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup = %d %v", n, err)
	}
	if bytes.Contains(buf.Bytes(), secret.ciphertext[24:56]) {
		t.Fatal("backup holds a deleted encoding (freed pages were copied)")
	}
	if bytes.Contains(buf.Bytes(), []byte(u.FullName)) || bytes.Contains(buf.Bytes(), []byte(u.Email)) {
		t.Fatal("backup holds a name or email in clear")
	}
	dir := t.TempDir()
	bpath := filepath.Join(dir, "restored.db")
	if err := bolt.RestoreBackup(bytes.NewReader(buf.Bytes()), db.KeyPath, bpath); err != nil {
		t.Fatal(err)
	}
	if err := bolt.RestoreBackup(bytes.NewReader(buf.Bytes()), db.KeyPath, bpath); err == nil {
		t.Fatal("restore over an existing file succeeded")
	}
	r := bolt.NewDB(bpath)
	r.KeyPath = db.KeyPath
	r.NoSync = true
	if err := r.Open(); err != nil {
		t.Fatalf("open restored backup: %v", err)
	}
	defer r.Close()
	encs, err := r.ListEncodings(ctx, u.ID)
	if err != nil || len(encs) != 1 || encs[0].Descriptor != d {
		t.Fatalf("restored encodings = %v %v", encs, err)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}

	// Another key, a flipped byte or a truncated file are refused.
	other := filepath.Join(dir, "other.key")
	os.WriteFile(other, bytes.Repeat([]byte{9}, bolt.KeySize), 0o600)
	b := buf.Bytes()
	flipped := append([]byte(nil), b...)
	flipped[len(flipped)/2] ^= 1
	for name, tc := range map[string]struct {
		data []byte
		key  string
	}{"other key": {b, other}, "flipped": {flipped, db.KeyPath}, "truncated": {b[:len(b)-40], db.KeyPath}} {
		if err := bolt.RestoreBackup(bytes.NewReader(tc.data), tc.key, filepath.Join(dir, name+".db")); err == nil {
			t.Fatalf("%s: restore succeeded", name)
		}
		if _, err := os.Stat(filepath.Join(dir, name+".db")); err == nil {
			t.Fatalf("%s: a failed restore left a database", name)
		}
	}
}
