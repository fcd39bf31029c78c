package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// Limits on outbox messages and meta values.
const (
	MaxOutboxKeyLen  = 256
	MaxOutboxPayload = 1 << 20
	MaxMetaKeyLen    = 256
	MaxMetaValue     = 1 << 20
)

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// outboxKeyIndex is the outbox_keys entry of one message: key 0x00 seq.
func outboxKeyIndex(key string, seq uint64) []byte {
	k := make([]byte, 0, len(key)+9)
	k = append(k, key...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// outboxUserIndex is the outbox_users entry of one message: user id 0x00
// seq.
func outboxUserIndex(userID string, seq uint64) []byte {
	k := make([]byte, 0, len(userID)+9)
	k = append(k, userID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// sealOutbox returns the stored form of m under its seq key k.
func (db *DB) sealOutbox(k []byte, m *models.OutboxMessage) ([]byte, error) {
	pt, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	v, err := db.aead.sealRecord(bucketOutbox, k, pt)
	clear(pt)
	return v, err
}

// openOutbox decrypts and decodes the stored message v under seq key k.
func (db *DB) openOutbox(k, v []byte) (*models.OutboxMessage, error) {
	pt, err := db.aead.openRecord(bucketOutbox, k, v)
	if err != nil {
		return nil, fmt.Errorf("outbox message: %w", err)
	}
	var m models.OutboxMessage
	err = json.Unmarshal(pt, &m)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("decode outbox message: %w", err)
	}
	return &m, nil
}

// outboxPersonal reports whether a message of this kind may carry personal
// data beyond the live records: attendance messages repeat an event the
// store keeps anyway and unknown-face counts name nobody; everything else
// (enrolments: names and descriptors) is wiped from the file once gone.
func outboxPersonal(kind string) bool {
	return kind != models.OutboxAttendance && kind != models.OutboxUnknown
}

func validateOutbox(m *models.OutboxMessage) error {
	switch {
	case m.Kind == "":
		return models.Errorf(models.EINVALID, "kind: required").WithDetail("field", "kind")
	case len(m.Kind) > models.MaxFieldLen:
		return models.Errorf(models.EINVALID, "kind: longer than %d characters", models.MaxFieldLen).WithDetail("field", "kind")
	case m.Key == "":
		return models.Errorf(models.EINVALID, "key: required").WithDetail("field", "key")
	case len(m.Key) > MaxOutboxKeyLen:
		return models.Errorf(models.EINVALID, "key: longer than %d characters", MaxOutboxKeyLen).WithDetail("field", "key")
	case bytes.IndexByte([]byte(m.Key), 0) >= 0:
		return models.Errorf(models.EINVALID, "key: contains a NUL character").WithDetail("field", "key")
	case m.UserID != "" && validID("user_id", m.UserID) != nil:
		return validID("user_id", m.UserID)
	case len(m.Payload) > MaxOutboxPayload:
		return models.Errorf(models.ETOOLARGE, "payload: %d bytes, more than %d", len(m.Payload), MaxOutboxPayload).WithDetail("field", "payload")
	}
	return nil
}

// txEnqueue assigns m.Seq and stores m sealed, with its index entries.
func (db *DB) txEnqueue(tx *bbolt.Tx, m *models.OutboxMessage) error {
	b := tx.Bucket(bucketOutbox)
	b.FillPercent = 0.95 // keys only ever grow
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	m.Seq = seq
	k := seqKey(seq)
	v, err := db.sealOutbox(k, m)
	if err != nil {
		return err
	}
	if err := b.Put(k, v); err != nil {
		return err
	}
	if m.UserID != "" {
		if err := tx.Bucket(bucketOutboxUsers).Put(outboxUserIndex(m.UserID, seq), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketOutboxKeys).Put(outboxKeyIndex(m.Key, seq), nil)
}

// txDeleteOutbox removes the message at seq (already decoded as m) and its
// index entries, and asks for a scrub when it carried personal data.
func txDeleteOutbox(tx *bbolt.Tx, w *writeState, m *models.OutboxMessage) error {
	if err := tx.Bucket(bucketOutbox).Delete(seqKey(m.Seq)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketOutboxKeys).Delete(outboxKeyIndex(m.Key, m.Seq)); err != nil {
		return err
	}
	if m.UserID != "" {
		if err := tx.Bucket(bucketOutboxUsers).Delete(outboxUserIndex(m.UserID, m.Seq)); err != nil {
			return err
		}
	}
	if outboxPersonal(m.Kind) || m.UserID != "" {
		w.scrub = true
	}
	return nil
}

// txDeleteUserOutbox drops the pending messages that carry the user's data.
func (db *DB) txDeleteUserOutbox(tx *bbolt.Tx, w *writeState, userID string) error {
	_, err := db.txDeleteIndexed(tx, w, tx.Bucket(bucketOutboxUsers), userPrefix(userID))
	return err
}

// txDeleteIndexed deletes the messages whose entries in index (prefix, then
// a big-endian seq) start with prefix, and returns how many it deleted.
func (db *DB) txDeleteIndexed(tx *bbolt.Tx, w *writeState, index *bbolt.Bucket, prefix []byte) (int, error) {
	var seqs [][]byte
	c := index.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+8 {
			seqs = append(seqs, cloneBytes(k[len(prefix):]))
		}
	}
	outbox := tx.Bucket(bucketOutbox)
	for _, sk := range seqs {
		v := outbox.Get(sk)
		if v == nil {
			return 0, fmt.Errorf("outbox index points at missing message %x", sk)
		}
		m, err := db.openOutbox(sk, v)
		if err != nil {
			return 0, err
		}
		if err := txDeleteOutbox(tx, w, m); err != nil {
			return 0, err
		}
	}
	return len(seqs), nil
}

// Enqueue appends messages in one transaction, assigning Seq and CreatedAt.
// Several messages may share a key; AckOutbox removes them all.
// Errors: EINVALID, ETOOLARGE (payload over MaxOutboxPayload).
func (db *DB) Enqueue(ctx context.Context, msgs ...*models.OutboxMessage) error {
	now := db.Now().UTC()
	for i, m := range msgs {
		if err := validateOutbox(m); err != nil {
			if len(msgs) > 1 {
				return withIndex(i, err)
			}
			return err
		}
	}
	return db.update(ctx, func(tx *bbolt.Tx, _ *writeState) error {
		for _, m := range msgs {
			m.CreatedAt = now
			if err := db.txEnqueue(tx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// PendingOutbox returns up to limit messages (DefaultPageSize when <= 0,
// at most MaxPageSize) with Seq > afterSeq, in Seq order.
func (db *DB) PendingOutbox(ctx context.Context, afterSeq uint64, limit int) ([]*models.OutboxMessage, error) {
	if limit <= 0 {
		limit = models.DefaultPageSize
	}
	limit = min(limit, models.MaxPageSize)
	var out []*models.OutboxMessage
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if afterSeq == ^uint64(0) {
			return nil
		}
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(seqKey(afterSeq + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			m, err := db.openOutbox(k, v)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// AckOutbox removes the messages with these keys and marks attendance
// events with these ids acked, in one transaction. Unknown keys are ignored.
// A removed message that carried personal data (an enrolment) schedules a
// scrub, so its freed pages do not keep it. It returns how many messages it
// removed.
func (db *DB) AckOutbox(ctx context.Context, keys []string) (int, error) {
	var n int
	err := db.update(ctx, func(tx *bbolt.Tx, w *writeState) error {
		n = 0
		index := tx.Bucket(bucketOutboxKeys)
		events, eventIDs := tx.Bucket(bucketAttendance), tx.Bucket(bucketAttendanceID)
		for _, key := range keys {
			if key == "" {
				continue
			}
			removed, err := db.txDeleteIndexed(tx, w, index, append([]byte(key), 0))
			if err != nil {
				return err
			}
			n += removed
			ek := eventIDs.Get([]byte(key))
			if ek == nil {
				continue
			}
			v := events.Get(ek)
			if v == nil {
				return fmt.Errorf("attendance index points at a missing event %q", key)
			}
			ev, err := decodeEvent(v)
			if err != nil {
				return err
			}
			if ev.SyncState == models.SyncAcked {
				continue
			}
			ev.SyncState = models.SyncAcked
			nv, err := encodeEvent(ev)
			if err != nil {
				return err
			}
			if err := events.Put(cloneBytes(ek), nv); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// OutboxLen returns the number of messages waiting.
func (db *DB) OutboxLen(ctx context.Context) (int, error) {
	var n int
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return n, err
}

// GetMeta returns the value for key. Errors: ENOTFOUND.
func (db *DB) GetMeta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		v = cloneBytes(tx.Bucket(bucketMeta).Get([]byte(key)))
		if v == nil {
			return models.Errorf(models.ENOTFOUND, "meta %q not set", key)
		}
		return nil
	})
	return v, err
}

// SetMeta stores value under key. Errors: EINVALID (empty or long key),
// ETOOLARGE (value over MaxMetaValue).
func (db *DB) SetMeta(ctx context.Context, key string, value []byte) error {
	switch {
	case key == "":
		return models.Errorf(models.EINVALID, "key: required").WithDetail("field", "key")
	case len(key) > MaxMetaKeyLen:
		return models.Errorf(models.EINVALID, "key: longer than %d characters", MaxMetaKeyLen).WithDetail("field", "key")
	case len(value) > MaxMetaValue:
		return models.Errorf(models.ETOOLARGE, "value: %d bytes, more than %d", len(value), MaxMetaValue).WithDetail("field", "value")
	}
	if value == nil {
		value = []byte{}
	}
	return db.update(ctx, func(tx *bbolt.Tx, _ *writeState) error {
		return tx.Bucket(bucketMeta).Put([]byte(key), value)
	})
}
