package bolt

import (
	"bytes"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// adopt re-keys the device-created user localID (version 0) to central's id
// inside the central batch's transaction, so that central's record for the
// same person then updates it instead of conflicting on its email: the
// user's indexes are dropped (finish rebuilds them for id), its encodings
// are re-sealed under id, its attendance events and latest-event entry move
// to id. Outbox messages already queued keep the kiosk id, in their payload
// and in the outbox's user index (central maps them through local_id). A
// localID that is unknown, central's own or written earlier in the batch is
// left alone.
func (cw *centralWriter) adopt(localID, id string) error {
	if localID == id || cw.unindexed[localID] {
		return nil
	}
	lu, err := cw.stored(localID)
	if err != nil || lu == nil || lu.Version != 0 {
		return err
	}
	tx := cw.tx
	if err := txDeleteUserIndexes(tx, lu); err != nil {
		return err
	}
	if err := tx.Bucket(bucketUsers).Delete([]byte(localID)); err != nil {
		return err
	}
	encs, err := cw.db.txUserEncodings(tx, localID)
	if err != nil {
		return err
	}
	if _, err := txDeleteEncodings(tx, cw.w, localID, func(models.EncodingSource) bool { return true }); err != nil {
		return err
	}
	for _, e := range encs {
		e.UserID = id
		if err := cw.db.txPutEncoding(tx, e); err != nil {
			return err
		}
	}
	cw.w.scrub = true // the encodings sealed under the kiosk id are freed
	if err := rekeyAttendance(tx, localID, id); err != nil {
		return err
	}
	return nil
}

// rekeyAttendance moves localID's attendance events and latest-event entry
// to id (a scan of every event: adoption is rare).
func rekeyAttendance(tx *bbolt.Tx, localID, id string) error {
	events := tx.Bucket(bucketAttendance)
	type put struct{ k, v []byte }
	var puts []put
	c := events.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if !bytes.Contains(v, []byte(localID)) {
			continue // cheap filter before decoding
		}
		ev, err := decodeEvent(v)
		if err != nil {
			return err
		}
		if ev.UserID != localID {
			continue
		}
		ev.UserID = id
		nv, err := encodeEvent(ev)
		if err != nil {
			return err
		}
		puts = append(puts, put{cloneBytes(k), nv})
	}
	for _, p := range puts {
		if err := events.Put(p.k, p.v); err != nil {
			return err
		}
	}
	latest := tx.Bucket(bucketLatest)
	if v := latest.Get([]byte(localID)); v != nil {
		v = cloneBytes(v)
		if err := latest.Delete([]byte(localID)); err != nil {
			return err
		}
		return latest.Put([]byte(id), v)
	}
	return nil
}
