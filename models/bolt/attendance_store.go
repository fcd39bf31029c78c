package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// attendanceKey orders events by time: 8 bytes of unix nanoseconds with the
// sign bit flipped (so times before 1970 sort first), then the event id.
func attendanceKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, timeBits(t))
	return append(k, id...)
}

func timeBits(t time.Time) uint64 { return uint64(t.UnixNano()) ^ (1 << 63) }

// timeKey is the smallest attendance key at time t.
func timeKey(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, timeBits(t)) }

func encodeEvent(ev *models.AttendanceEvent) ([]byte, error) { return json.Marshal(ev) }

func decodeEvent(v []byte) (*models.AttendanceEvent, error) {
	var ev models.AttendanceEvent
	if err := json.Unmarshal(v, &ev); err != nil {
		return nil, fmt.Errorf("decode attendance event: %w", err)
	}
	return &ev, nil
}

// prepareEvent validates ev and fills defaults.
func prepareEvent(ev *models.AttendanceEvent) error {
	if ev.ID == "" {
		ev.ID = models.NewID()
	}
	if err := validID("id", ev.ID); err != nil {
		return err
	}
	if err := validID("user_id", ev.UserID); err != nil {
		return err
	}
	if ev.Time.IsZero() {
		return models.Errorf(models.EINVALID, "time: required").WithDetail("field", "time")
	}
	ev.Time = ev.Time.UTC()
	if err := validID("kiosk_id", ev.KioskID); err != nil {
		return err
	}
	if math.IsNaN(ev.Distance) || math.IsInf(ev.Distance, 0) || ev.Distance < 0 {
		return models.Errorf(models.EINVALID, "distance: must be a finite number >= 0").WithDetail("field", "distance")
	}
	if len(ev.Liveness) > models.MaxFieldLen {
		return models.Errorf(models.EINVALID, "liveness: longer than %d characters", models.MaxFieldLen).WithDetail("field", "liveness")
	}
	if len(ev.SessionID) > models.MaxFieldLen {
		return models.Errorf(models.EINVALID, "session_id: longer than %d characters", models.MaxFieldLen).WithDetail("field", "session_id")
	}
	switch ev.SyncState {
	case "":
		ev.SyncState = models.SyncPending
	case models.SyncPending, models.SyncAcked:
	default:
		return models.Errorf(models.EINVALID, "sync_state: %q is not one of pending, acked", ev.SyncState).WithDetail("field", "sync_state")
	}
	return nil
}

// RecordAttendance validates ev, assigns ev.ID when empty, and commits the
// event, its indexes and its outbox message (Kind OutboxAttendance, Key the
// event id, Payload the event JSON) in one transaction.
// Errors: EINVALID, ECONFLICT (an event with that id exists).
func (db *DB) RecordAttendance(ctx context.Context, ev *models.AttendanceEvent) error {
	if err := prepareEvent(ev); err != nil {
		return err
	}
	payload, err := encodeEvent(ev)
	if err != nil {
		return err
	}
	return db.update(ctx, func(tx *bbolt.Tx, _ *writeState) error {
		ids := tx.Bucket(bucketAttendanceID)
		if ids.Get([]byte(ev.ID)) != nil {
			return models.Errorf(models.ECONFLICT, "id: attendance event %q already recorded", ev.ID).WithDetail("field", "id")
		}
		k := attendanceKey(ev.Time, ev.ID)
		events := tx.Bucket(bucketAttendance)
		events.FillPercent = 0.95 // time-ordered keys: nearly append-only
		if err := events.Put(k, payload); err != nil {
			return err
		}
		if err := ids.Put([]byte(ev.ID), k); err != nil {
			return err
		}
		latest := tx.Bucket(bucketLatest)
		if cur := latest.Get([]byte(ev.UserID)); cur == nil || bytes.Compare(k, cur) > 0 {
			if err := latest.Put([]byte(ev.UserID), k); err != nil {
				return err
			}
		}
		if ev.SyncState == models.SyncAcked {
			return nil // nothing left to send
		}
		return db.txEnqueue(tx, &models.OutboxMessage{Kind: models.OutboxAttendance, Key: ev.ID, Payload: payload, CreatedAt: db.Now().UTC()})
	})
}

// attendanceRange returns the key bounds for f: [lo, hi), hi nil = no bound.
func attendanceRange(f models.AttendanceFilter) (lo, hi []byte) {
	if !f.From.IsZero() {
		lo = timeKey(f.From)
	}
	if !f.To.IsZero() {
		hi = timeKey(f.To)
	}
	return lo, hi
}

func eventMatches(ev *models.AttendanceEvent, f models.AttendanceFilter) bool {
	return (f.UserID == "" || ev.UserID == f.UserID) && (f.SessionID == "" || ev.SessionID == f.SessionID)
}

// ListAttendance returns matching events, newest first, and the total.
func (db *DB) ListAttendance(ctx context.Context, f models.AttendanceFilter) ([]*models.AttendanceEvent, int, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = models.DefaultPageSize
	}
	if !f.Unlimited {
		limit = min(limit, models.MaxPageSize)
	} else if f.Limit <= 0 {
		limit = math.MaxInt
	}
	offset := max(f.Offset, 0)
	lo, hi := attendanceRange(f)
	var out []*models.AttendanceEvent
	total := 0
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAttendance).Cursor()
		var k, v []byte
		if hi == nil {
			k, v = c.Last()
		} else {
			c.Seek(hi)
			k, v = c.Prev()
		}
		for ; k != nil && (lo == nil || bytes.Compare(k, lo) >= 0); k, v = c.Prev() {
			ev, err := decodeEvent(v)
			if err != nil {
				return err
			}
			if !eventMatches(ev, f) {
				continue
			}
			if total >= offset && len(out) < limit {
				out = append(out, ev)
			}
			total++
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// ForEachAttendance calls fn for each matching event, oldest first, in one
// read transaction, ignoring Offset and Limit. fn must not call the store.
func (db *DB) ForEachAttendance(ctx context.Context, f models.AttendanceFilter, fn func(ev *models.AttendanceEvent) error) error {
	lo, hi := attendanceRange(f)
	return db.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAttendance).Cursor()
		var k, v []byte
		if lo == nil {
			k, v = c.First()
		} else {
			k, v = c.Seek(lo)
		}
		for n := 0; k != nil && (hi == nil || bytes.Compare(k, hi) < 0); k, v = c.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			ev, err := decodeEvent(v)
			if err != nil {
				return err
			}
			if !eventMatches(ev, f) {
				continue
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// LastAttendance returns the user's latest event. Errors: ENOTFOUND.
func (db *DB) LastAttendance(ctx context.Context, userID string) (*models.AttendanceEvent, error) {
	var ev *models.AttendanceEvent
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		k := tx.Bucket(bucketLatest).Get([]byte(userID))
		if k == nil {
			return models.Errorf(models.ENOTFOUND, "no attendance for user %q", userID)
		}
		v := tx.Bucket(bucketAttendance).Get(k)
		if v == nil {
			return fmt.Errorf("latest index of %q points at a missing event", userID)
		}
		var err error
		ev, err = decodeEvent(v)
		return err
	})
	return ev, err
}

// DeleteAttendanceBefore removes acknowledged events older than t, in one
// transaction, and returns how many it removed; pending events are kept
// whatever their age.
func (db *DB) DeleteAttendanceBefore(ctx context.Context, t time.Time) (int, error) {
	hi := timeKey(t)
	var n int
	err := db.update(ctx, func(tx *bbolt.Tx, _ *writeState) error {
		n = 0
		events, ids, latest := tx.Bucket(bucketAttendance), tx.Bucket(bucketAttendanceID), tx.Bucket(bucketLatest)
		var doomed [][]byte
		keptLatest := map[string][]byte{} // user -> newest kept event before t
		lostLatest := map[string]bool{}   // users whose latest event is doomed
		c := events.Cursor()
		for k, v := c.First(); k != nil && bytes.Compare(k, hi) < 0; k, v = c.Next() {
			ev, err := decodeEvent(v)
			if err != nil {
				return err
			}
			if ev.SyncState != models.SyncAcked {
				keptLatest[ev.UserID] = cloneBytes(k)
				continue
			}
			doomed = append(doomed, cloneBytes(k))
			if bytes.Equal(latest.Get([]byte(ev.UserID)), k) {
				lostLatest[ev.UserID] = true
			}
		}
		for _, k := range doomed {
			if err := events.Delete(k); err != nil {
				return err
			}
			if err := ids.Delete(k[8:]); err != nil {
				return err
			}
		}
		for uid := range lostLatest {
			var err error
			if k, ok := keptLatest[uid]; ok {
				err = latest.Put([]byte(uid), k)
			} else {
				err = latest.Delete([]byte(uid))
			}
			if err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}
