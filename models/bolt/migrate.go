package bolt

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// SchemaVersion is the layout this code writes. Open migrates older files
// forward and refuses newer ones.
const SchemaVersion = 3

// migration moves the layout from version to-1 to version to. Migrations run
// in order, all in one transaction: a failed upgrade leaves the file as it was.
type migration struct {
	to   int
	name string
	fn   func(db *DB, tx *bbolt.Tx) error
}

// migrations is the ordered history of the layout. Never edit a released
// entry; append a new one.
var migrations = []migration{
	{1, "create entity buckets", func(_ *DB, tx *bbolt.Tx) error { return migrateV1(tx) }},
	{2, "add name index and per-user latest attendance index", func(_ *DB, tx *bbolt.Tx) error { return migrateV2(tx) }},
	{3, "seal outbox messages, add the outbox user index", (*DB).migrateV3},
}

// migrateV1 creates the original layout.
func migrateV1(tx *bbolt.Tx) error {
	for _, name := range [][]byte{
		bucketSchema, bucketUsers, bucketEncodings, bucketEncodingIDs,
		bucketEmailIndex, bucketExtIDIndex, bucketTombstones,
		bucketAttendance, bucketAttendanceID, bucketOutbox, bucketOutboxKeys,
		bucketAccounts, bucketMeta,
	} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateV2 adds idx_name (ListUsers' order) and attendance_latest
// (LastAttendance), built from the existing records.
func migrateV2(tx *bbolt.Tx) error {
	names, err := tx.CreateBucketIfNotExists(bucketNameIndex)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
		u, err := decodeUser(v)
		if err != nil {
			return fmt.Errorf("user %q: %w", k, err)
		}
		return names.Put(nameIndexKey(u), []byte(u.ID))
	}); err != nil {
		return err
	}
	latest, err := tx.CreateBucketIfNotExists(bucketLatest)
	if err != nil {
		return err
	}
	// Keys are time-ordered, so the last event seen per user is its newest.
	return tx.Bucket(bucketAttendance).ForEach(func(k, v []byte) error {
		ev, err := decodeEvent(v)
		if err != nil {
			return fmt.Errorf("attendance %x: %w", k, err)
		}
		return latest.Put([]byte(ev.UserID), k)
	})
}

// migrateV3 seals every outbox message with the descriptor key (they held
// enrolments' names and descriptors in clear) and creates outbox_users. The
// cleartext now sits in freed pages: the file is marked for a scrub, which
// Open runs right after the migration.
func (db *DB) migrateV3(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketOutboxUsers); err != nil {
		return err
	}
	outbox := tx.Bucket(bucketOutbox)
	type rec struct{ k, v []byte }
	var recs []rec
	if err := outbox.ForEach(func(k, v []byte) error {
		var m models.OutboxMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("outbox %x: %w", k, err)
		}
		sv, err := db.sealOutbox(k, &m)
		if err != nil {
			return err
		}
		recs = append(recs, rec{cloneBytes(k), sv})
		return nil
	}); err != nil {
		return err
	}
	for _, r := range recs {
		if err := outbox.Put(r.k, r.v); err != nil {
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return tx.Bucket(bucketSchema).Put(scrubPendingKey, []byte{1})
}

// schemaVersion reads the stored layout version; 0 for an empty file.
func schemaVersion(tx *bbolt.Tx) (int, error) {
	b := tx.Bucket(bucketSchema)
	if b == nil {
		return 0, nil
	}
	v := b.Get(schemaVersionKey)
	if len(v) != 8 {
		return 0, fmt.Errorf("schema version is malformed (%d bytes)", len(v))
	}
	return int(binary.BigEndian.Uint64(v)), nil
}

// migrate brings the file to SchemaVersion and makes sure a key check is
// stored.
func (db *DB) migrate() error {
	return db.bolt.Update(func(tx *bbolt.Tx) error {
		ver, err := schemaVersion(tx)
		if err != nil {
			return err
		}
		if ver > SchemaVersion {
			return fmt.Errorf("database schema version %d is newer than this kioskd understands (%d): upgrade kioskd", ver, SchemaVersion)
		}
		from := ver
		for _, m := range migrations {
			if m.to <= ver {
				continue
			}
			if err := m.fn(db, tx); err != nil {
				return fmt.Errorf("migrate to schema %d (%s): %w", m.to, m.name, err)
			}
			db.Logger.Info("migrated store", "from", ver, "to", m.to, "step", m.name)
			ver = m.to
		}
		b := tx.Bucket(bucketSchema)
		if ver != from {
			if err := b.Put(schemaVersionKey, binary.BigEndian.AppendUint64(nil, uint64(ver))); err != nil {
				return err
			}
		}
		if b.Get(keyCheckKey) == nil {
			kc, err := db.aead.keyCheck()
			if err != nil {
				return err
			}
			return b.Put(keyCheckKey, kc)
		}
		return nil
	})
}
