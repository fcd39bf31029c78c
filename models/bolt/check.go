package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// maxCheckErrors bounds how many problems one check reports.
const maxCheckErrors = 20

// Check verifies the file (bbolt's page-level check) and the store's own
// invariants: every encoding's user exists and decrypts under the key, every
// index agrees with the records both ways, outbox and attendance indexes
// match their messages and events. Tests run it after each test.
func (db *DB) Check() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return ErrClosed
	}
	return db.check(true)
}

// checker collects invariant violations.
type checker struct {
	errs []error
}

func (c *checker) failf(format string, args ...any) {
	if len(c.errs) < maxCheckErrors {
		c.errs = append(c.errs, fmt.Errorf(format, args...))
	}
}

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return errors.Join(c.errs...)
}

// check runs the consistency check; deep also decrypts every encoding. The
// caller holds db.mu (either way) with db.bolt open. The parts run in
// parallel, each in its own read transaction: at Open nothing writes, and
// afterwards every part is still a consistent snapshot of its own buckets
// (a concurrent write can only make the cross-bucket parts report a
// transient difference, which Check's callers, tests at cleanup, avoid).
func (db *DB) check(deep bool) error {
	var c checker
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		ver, err := schemaVersion(tx)
		if err != nil {
			c.failf("%w", err)
			return nil
		}
		if ver != SchemaVersion {
			c.failf("schema version %d, want %d", ver, SchemaVersion)
			return nil
		}
		for _, name := range [][]byte{bucketUsers, bucketEncodings, bucketEncodingIDs, bucketEmailIndex,
			bucketExtIDIndex, bucketNameIndex, bucketTombstones, bucketAttendance, bucketAttendanceID,
			bucketLatest, bucketOutbox, bucketOutboxKeys, bucketOutboxUsers, bucketAccounts, bucketMeta} {
			if tx.Bucket(name) == nil {
				c.failf("bucket %s is missing", name)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := c.err(); err != nil {
		return err
	}

	parts := []func(tx *bbolt.Tx, c *checker){
		func(tx *bbolt.Tx, c *checker) {
			for err := range tx.Check() {
				c.failf("bbolt: %w", err)
			}
		},
		checkUsers,
		func(tx *bbolt.Tx, c *checker) { db.checkEncodings(tx, c, deep) },
		func(tx *bbolt.Tx, c *checker) {
			checkAttendance(tx, c)
			db.checkOutbox(tx, c)
			checkAccounts(tx, c)
		},
	}
	results := make([]checker, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.bolt.View(func(tx *bbolt.Tx) error {
				part(tx, &results[i])
				return nil
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, r := range results {
		for _, e := range r.errs {
			c.failf("%w", e)
		}
	}
	return c.err()
}

// userIndexed is the part of a stored user that the indexes cover.
type userIndexed struct {
	ID         string `json:"id"`
	ExternalID string `json:"external_id"`
	Email      string `json:"email"`
	FullName   string `json:"full_name"`
}

func checkUsers(tx *bbolt.Tx, c *checker) {
	emails, extIDs, names := tx.Bucket(bucketEmailIndex), tx.Bucket(bucketExtIDIndex), tx.Bucket(bucketNameIndex)
	nUsers, nExt := 0, 0
	_ = tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
		nUsers++
		var u userIndexed // only what the indexes need: a faster decode
		if err := json.Unmarshal(v, &u); err != nil {
			c.failf("user %q: %w", k, err)
			return nil
		}
		if u.ID != string(k) {
			c.failf("user %q: record says id %q", k, u.ID)
		}
		if !bytes.Equal(emails.Get([]byte(u.Email)), k) {
			c.failf("user %q: email index entry for %q is %q", k, u.Email, emails.Get([]byte(u.Email)))
		}
		if u.ExternalID != "" {
			nExt++
			if !bytes.Equal(extIDs.Get([]byte(u.ExternalID)), k) {
				c.failf("user %q: external id index entry for %q is %q", k, u.ExternalID, extIDs.Get([]byte(u.ExternalID)))
			}
		}
		if !bytes.Equal(names.Get(nameIndexKey(&models.User{ID: u.ID, FullName: u.FullName})), k) {
			c.failf("user %q: name index entry missing", k)
		}
		return nil
	})
	// Each user has its own entry in each index (checked above), so equal
	// counts mean no index entry points elsewhere.
	if n := emails.Stats().KeyN; n != nUsers {
		c.failf("email index has %d entries for %d users", n, nUsers)
	}
	if n := extIDs.Stats().KeyN; n != nExt {
		c.failf("external id index has %d entries for %d users with an external id", n, nExt)
	}
	if n := names.Stats().KeyN; n != nUsers {
		c.failf("name index has %d entries for %d users", n, nUsers)
	}
	_ = tx.Bucket(bucketTombstones).ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			c.failf("tombstone %q: %d-byte version", k, len(v))
		}
		return nil
	})
}

func (db *DB) checkEncodings(tx *bbolt.Tx, c *checker, deep bool) {
	users, ids := tx.Bucket(bucketUsers), tx.Bucket(bucketEncodingIDs)
	n := 0
	var enc models.FaceEncoding
	var buf []byte
	_ = tx.Bucket(bucketEncodings).ForEach(func(k, v []byte) error {
		n++
		uid, eid, ok := splitEncodingKey(k)
		if !ok {
			c.failf("encoding key %q is malformed", k)
			return nil
		}
		if users.Get([]byte(uid)) == nil {
			c.failf("encoding %q belongs to missing user %q", eid, uid)
		}
		if got := ids.Get([]byte(eid)); string(got) != uid {
			c.failf("encoding %q: id index says user %q, key says %q", eid, got, uid)
		}
		if _, err := parseEncodingHeader(v); err != nil {
			c.failf("encoding %q: %w", eid, err)
			return nil
		}
		if deep {
			var err error
			if buf, err = db.aead.openEncoding(k, v, &enc, buf); err != nil {
				c.failf("encoding %q: %w", eid, err)
			}
		}
		return nil
	})
	if m := ids.Stats().KeyN; m != n {
		c.failf("encoding id index has %d entries for %d encodings", m, n)
	}
}

func checkAttendance(tx *bbolt.Tx, c *checker) {
	ids, latest := tx.Bucket(bucketAttendanceID), tx.Bucket(bucketLatest)
	newest := map[string][]byte{}
	n := 0
	_ = tx.Bucket(bucketAttendance).ForEach(func(k, v []byte) error {
		n++
		ev, err := decodeEvent(v)
		if err != nil {
			c.failf("attendance %x: %w", k, err)
			return nil
		}
		if !bytes.Equal(k, attendanceKey(ev.Time, ev.ID)) {
			c.failf("attendance %q: key does not match its time and id", ev.ID)
		}
		if !bytes.Equal(ids.Get([]byte(ev.ID)), k) {
			c.failf("attendance %q: id index entry is wrong", ev.ID)
		}
		newest[ev.UserID] = cloneBytes(k) // keys ascend: the last one wins
		return nil
	})
	if m := ids.Stats().KeyN; m != n {
		c.failf("attendance id index has %d entries for %d events", m, n)
	}
	for uid, k := range newest {
		if !bytes.Equal(latest.Get([]byte(uid)), k) {
			c.failf("latest attendance of user %q does not point at the user's newest event", uid)
		}
	}
	if m := latest.Stats().KeyN; m != len(newest) {
		c.failf("latest attendance index has %d entries for %d users with events", m, len(newest))
	}
}

// checkOutbox checks that every message decrypts and matches its key and
// user index entries, and that the indexes hold nothing else.
func (db *DB) checkOutbox(tx *bbolt.Tx, c *checker) {
	outbox, index, users := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxKeys), tx.Bucket(bucketOutboxUsers)
	n, nUsers := 0, 0
	_ = outbox.ForEach(func(k, v []byte) error {
		n++
		if len(k) != 8 {
			c.failf("outbox key %x is not a sequence number", k)
			return nil
		}
		m, err := db.openOutbox(k, v)
		if err != nil {
			c.failf("outbox %d: %w", binary.BigEndian.Uint64(k), err)
			return nil
		}
		seq := binary.BigEndian.Uint64(k)
		if m.Seq != seq {
			c.failf("outbox %d: message says seq %d", seq, m.Seq)
		}
		if seq > outbox.Sequence() {
			c.failf("outbox %d: beyond the bucket sequence %d", seq, outbox.Sequence())
		}
		if !hasKey(index, outboxKeyIndex(m.Key, seq)) {
			c.failf("outbox %d: key index entry for %q missing", seq, m.Key)
		}
		if m.UserID != "" {
			nUsers++
			if !hasKey(users, outboxUserIndex(m.UserID, seq)) {
				c.failf("outbox %d: user index entry for %q missing", seq, m.UserID)
			}
		}
		return nil
	})
	if m := index.Stats().KeyN; m != n {
		c.failf("outbox key index has %d entries for %d messages", m, n)
	}
	if m := users.Stats().KeyN; m != nUsers {
		c.failf("outbox user index has %d entries for %d messages naming a user", m, nUsers)
	}
}

// hasKey reports whether b holds k (whose value may be empty).
func hasKey(b *bbolt.Bucket, k []byte) bool {
	got, _ := b.Cursor().Seek(k)
	return bytes.Equal(got, k)
}

func checkAccounts(tx *bbolt.Tx, c *checker) {
	_ = tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
		a, err := decodeAccount(v)
		if err != nil {
			c.failf("account %q: %w", k, err)
			return nil
		}
		if string(k) != strings.ToLower(a.Email) {
			c.failf("account %q: record says email %q", k, a.Email)
		}
		return nil
	})
}
