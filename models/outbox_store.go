package models

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
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

func decodeOutbox(v []byte) (*OutboxMessage, error) {
	var m OutboxMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, fmt.Errorf("decode outbox message: %w", err)
	}
	return &m, nil
}

func validateOutbox(m *OutboxMessage) error {
	switch {
	case m.Kind == "":
		return Errorf(EINVALID, "kind: required").WithDetail("field", "kind")
	case len(m.Kind) > MaxFieldLen:
		return Errorf(EINVALID, "kind: longer than %d characters", MaxFieldLen).WithDetail("field", "kind")
	case m.Key == "":
		return Errorf(EINVALID, "key: required").WithDetail("field", "key")
	case len(m.Key) > MaxOutboxKeyLen:
		return Errorf(EINVALID, "key: longer than %d characters", MaxOutboxKeyLen).WithDetail("field", "key")
	case bytes.IndexByte([]byte(m.Key), 0) >= 0:
		return Errorf(EINVALID, "key: contains a NUL character").WithDetail("field", "key")
	case len(m.Payload) > MaxOutboxPayload:
		return Errorf(ETOOLARGE, "payload: %d bytes, more than %d", len(m.Payload), MaxOutboxPayload).WithDetail("field", "payload")
	}
	return nil
}

// txEnqueue assigns m.Seq and stores m with its key index entry.
func txEnqueue(tx *bolt.Tx, m *OutboxMessage) error {
	b := tx.Bucket(bucketOutbox)
	b.FillPercent = 0.95 // keys only ever grow
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	m.Seq = seq
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := b.Put(seqKey(seq), v); err != nil {
		return err
	}
	return tx.Bucket(bucketOutboxKeys).Put(outboxKeyIndex(m.Key, seq), nil)
}

// Enqueue appends messages in one transaction, assigning Seq and CreatedAt.
// Several messages may share a key; AckOutbox removes them all.
// Errors: EINVALID, ETOOLARGE (payload over MaxOutboxPayload).
func (db *DB) Enqueue(ctx context.Context, msgs ...*OutboxMessage) error {
	now := db.Now().UTC()
	for i, m := range msgs {
		if err := validateOutbox(m); err != nil {
			if len(msgs) > 1 {
				return withIndex(i, err)
			}
			return err
		}
	}
	return db.update(ctx, func(tx *bolt.Tx, _ *writeState) error {
		for _, m := range msgs {
			m.CreatedAt = now
			if err := txEnqueue(tx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// PendingOutbox returns up to limit messages (DefaultPageSize when <= 0,
// at most MaxPageSize) with Seq > afterSeq, in Seq order.
func (db *DB) PendingOutbox(ctx context.Context, afterSeq uint64, limit int) ([]*OutboxMessage, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	var out []*OutboxMessage
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if afterSeq == ^uint64(0) {
			return nil
		}
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(seqKey(afterSeq + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			m, err := decodeOutbox(v)
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
// It returns how many messages it removed.
func (db *DB) AckOutbox(ctx context.Context, keys []string) (int, error) {
	var n int
	err := db.update(ctx, func(tx *bolt.Tx, _ *writeState) error {
		n = 0
		outbox, index := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxKeys)
		events, eventIDs := tx.Bucket(bucketAttendance), tx.Bucket(bucketAttendanceID)
		for _, key := range keys {
			if key == "" {
				continue
			}
			prefix := append([]byte(key), 0)
			var entries [][]byte
			c := index.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if len(k) == len(prefix)+8 {
					entries = append(entries, cloneBytes(k))
				}
			}
			for _, k := range entries {
				if err := outbox.Delete(k[len(prefix):]); err != nil {
					return err
				}
				if err := index.Delete(k); err != nil {
					return err
				}
				n++
			}
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
			if ev.SyncState == SyncAcked {
				continue
			}
			ev.SyncState = SyncAcked
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
	err := db.view(ctx, func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return n, err
}

// GetMeta returns the value for key. Errors: ENOTFOUND.
func (db *DB) GetMeta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := db.view(ctx, func(tx *bolt.Tx) error {
		v = cloneBytes(tx.Bucket(bucketMeta).Get([]byte(key)))
		if v == nil {
			return Errorf(ENOTFOUND, "meta %q not set", key)
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
		return Errorf(EINVALID, "key: required").WithDetail("field", "key")
	case len(key) > MaxMetaKeyLen:
		return Errorf(EINVALID, "key: longer than %d characters", MaxMetaKeyLen).WithDetail("field", "key")
	case len(value) > MaxMetaValue:
		return Errorf(ETOOLARGE, "value: %d bytes, more than %d", len(value), MaxMetaValue).WithDetail("field", "value")
	}
	if value == nil {
		value = []byte{}
	}
	return db.update(ctx, func(tx *bolt.Tx, _ *writeState) error {
		return tx.Bucket(bucketMeta).Put([]byte(key), value)
	})
}
