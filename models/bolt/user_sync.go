package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// UpsertBatchSize is how many records UpsertLocalUsers writes per
// transaction: large enough to amortise fsync, small enough not to hold the
// writer lock for long.
const UpsertBatchSize = 200

// withIndex prefixes a coded error's message with the record's position, so
// a refused batch names the record and the field.
func withIndex(i int, err error) error {
	var e *models.Error
	if errors.As(err, &e) {
		e2 := *e
		e2.Message = fmt.Sprintf("records[%d].%s", i, e.Message)
		if e2.Details == nil {
			e2.Details = map[string]any{}
		}
		e2.Details["index"] = i
		return &e2
	}
	return err
}

// prepareCentralRecord validates one record from central and fills encoding
// defaults. Encodings become SourceCentral.
func prepareCentralRecord(rec *models.UserRecord, now time.Time) error {
	if err := validID("id", rec.User.ID); err != nil {
		return err
	}
	if rec.User.Version <= 0 {
		return models.Errorf(models.EINVALID, "version: central records need a positive version").WithDetail("field", "version")
	}
	if rec.Deleted {
		return nil
	}
	if err := prepareUser(&rec.User, false); err != nil {
		return err
	}
	if len(rec.Encodings) > models.MaxEncodingsPerUser {
		return models.Errorf(models.EINVALID, "encodings: %d encodings, more than the maximum %d", len(rec.Encodings), models.MaxEncodingsPerUser).WithDetail("field", "encodings")
	}
	seen := make(map[string]bool, len(rec.Encodings))
	for j := range rec.Encodings {
		enc := &rec.Encodings[j]
		if enc.UserID == "" {
			enc.UserID = rec.User.ID
		}
		if enc.UserID != rec.User.ID {
			return models.Errorf(models.EINVALID, "encodings[%d].user_id: %q is not the record's user %q", j, enc.UserID, rec.User.ID).WithDetail("field", "encodings.user_id")
		}
		enc.Source = models.SourceCentral
		if err := prepareEncoding(enc, now); err != nil {
			return models.Errorf(models.EINVALID, "encodings[%d].%s", j, models.ErrorMessage(err)).WithDetail("field", "encodings")
		}
		if seen[enc.ID] {
			return models.Errorf(models.EINVALID, "encodings[%d].id: %q appears twice", j, enc.ID).WithDetail("field", "encodings.id")
		}
		seen[enc.ID] = true
	}
	return nil
}

// tombstoneVersion returns the version of id's tombstone, 0 when none.
func tombstoneVersion(tx *bbolt.Tx, id string) int64 {
	v := tx.Bucket(bucketTombstones).Get([]byte(id))
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// raiseTombstone sets id's tombstone to version when that is higher and
// reports whether it changed.
func raiseTombstone(tx *bbolt.Tx, id string, version int64) (bool, error) {
	if version <= tombstoneVersion(tx, id) {
		return false, nil
	}
	return true, tx.Bucket(bucketTombstones).Put([]byte(id), binary.BigEndian.AppendUint64(nil, uint64(version)))
}

// centralWriter applies central records inside one transaction. Index
// entries of the users it touches are removed first and rebuilt in finish,
// so that a batch may swap emails or external ids between its users.
type centralWriter struct {
	db        *DB
	tx        *bbolt.Tx
	w         *writeState
	unindexed map[string]bool // ids whose record is written but not indexed
	order     []string
}

func newCentralWriter(db *DB, tx *bbolt.Tx, w *writeState) *centralWriter {
	denseFill(tx)
	return &centralWriter{db: db, tx: tx, w: w, unindexed: map[string]bool{}}
}

// stored returns the current user with id, or nil.
func (cw *centralWriter) stored(id string) (*models.User, error) {
	v := cw.tx.Bucket(bucketUsers).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	return decodeUser(v)
}

// upsert writes rec's user (unindexed until finish) and replaces its central
// encodings with rec's.
func (cw *centralWriter) upsert(old *models.User, rec *models.UserRecord) error {
	if old != nil && !cw.unindexed[old.ID] {
		if err := txDeleteUserIndexes(cw.tx, old); err != nil {
			return err
		}
	}
	if old != nil && cw.unindexed[old.ID] {
		// The name index is keyed by name: drop the entry written for old.
		if err := cw.tx.Bucket(bucketNameIndex).Delete(nameIndexKey(old)); err != nil {
			return err
		}
	}
	u := rec.User
	v, err := encodeUser(&u)
	if err != nil {
		return err
	}
	if err := cw.tx.Bucket(bucketUsers).Put([]byte(u.ID), v); err != nil {
		return err
	}
	if err := cw.tx.Bucket(bucketNameIndex).Put(nameIndexKey(&u), []byte(u.ID)); err != nil {
		return err
	}
	if !cw.unindexed[u.ID] {
		cw.unindexed[u.ID] = true
		cw.order = append(cw.order, u.ID)
	}
	return cw.replaceCentralEncodings(u.ID, rec.Encodings)
}

// replaceCentralEncodings makes the user's central encodings exactly encs,
// leaving them untouched (no rewrite, no scrub) when they are unchanged.
func (cw *centralWriter) replaceCentralEncodings(userID string, encs []models.FaceEncoding) error {
	existing, err := cw.db.txUserEncodings(cw.tx, userID)
	if err != nil {
		return err
	}
	var central []*models.FaceEncoding
	for _, e := range existing {
		if e.Source == models.SourceCentral {
			central = append(central, e)
		}
	}
	if sameEncodings(central, encs) {
		return nil
	}
	if _, err := txDeleteEncodings(cw.tx, cw.w, userID, func(s models.EncodingSource) bool { return s == models.SourceCentral }); err != nil {
		return err
	}
	ids := cw.tx.Bucket(bucketEncodingIDs)
	for j := range encs {
		enc := &encs[j]
		if owner := ids.Get([]byte(enc.ID)); owner != nil && string(owner) != userID {
			return models.Errorf(models.ECONFLICT, "encodings[%d].id: %q belongs to user %q", j, enc.ID, owner).WithDetail("field", "encodings.id")
		}
		if err := cw.db.txPutEncoding(cw.tx, enc); err != nil {
			return err
		}
	}
	return nil
}

// sameEncodings reports whether stored and want hold the same ids with the
// same descriptors and models.
func sameEncodings(stored []*models.FaceEncoding, want []models.FaceEncoding) bool {
	if len(stored) != len(want) {
		return false
	}
	byID := make(map[string]*models.FaceEncoding, len(stored))
	for _, e := range stored {
		byID[e.ID] = e
	}
	for j := range want {
		e, ok := byID[want[j].ID]
		if !ok || e.Descriptor != want[j].Descriptor || e.Model != want[j].Model {
			return false
		}
	}
	return true
}

// remove deletes old (which may be unindexed).
func (cw *centralWriter) remove(old *models.User) error {
	if cw.unindexed[old.ID] {
		delete(cw.unindexed, old.ID)
		if err := cw.db.txDeleteUserOutbox(cw.tx, cw.w, old.ID); err != nil {
			return err
		}
		if err := cw.tx.Bucket(bucketNameIndex).Delete(nameIndexKey(old)); err != nil {
			return err
		}
		if err := cw.tx.Bucket(bucketUsers).Delete([]byte(old.ID)); err != nil {
			return err
		}
		_, err := txDeleteEncodings(cw.tx, cw.w, old.ID, func(models.EncodingSource) bool { return true })
		cw.w.scrub, cw.w.prune = true, true
		return err
	}
	return cw.db.txDeleteUser(cw.tx, cw.w, old)
}

// finish indexes every written user, failing with ECONFLICT when an email
// or external id is taken by another user.
func (cw *centralWriter) finish() error {
	emails, extIDs := cw.tx.Bucket(bucketEmailIndex), cw.tx.Bucket(bucketExtIDIndex)
	for _, id := range cw.order {
		if !cw.unindexed[id] {
			continue
		}
		u, err := cw.stored(id)
		if err != nil {
			return err
		}
		if err := txUserConflict(cw.tx, u); err != nil {
			return err
		}
		if err := emails.Put([]byte(u.Email), []byte(id)); err != nil {
			return err
		}
		if u.ExternalID != "" {
			if err := extIDs.Put([]byte(u.ExternalID), []byte(id)); err != nil {
				return err
			}
		}
	}
	return nil
}

// ApplyUserRecords applies central's upserts and tombstones in one
// transaction. An upsert applies when its version is newer than both the
// stored user's and the tombstone's; a tombstone removes a stored user whose
// version is not newer, and is kept (the highest wins). Ties go to the
// tombstone, so any order of the same records, with duplicates, ends in the
// same state. Encodings replace the user's central encodings; local ones
// stay. recs are normalized in place. Errors: EINVALID, ECONFLICT (an email
// or external id held by a user outside the batch); nothing is written.
func (db *DB) ApplyUserRecords(ctx context.Context, recs []models.UserRecord) ([]bool, error) {
	now := db.Now().UTC()
	for i := range recs {
		if err := prepareCentralRecord(&recs[i], now); err != nil {
			return nil, withIndex(i, err)
		}
	}
	applied := make([]bool, len(recs))
	err := db.update(ctx, func(tx *bbolt.Tx, w *writeState) error {
		clear(applied)
		cw := newCentralWriter(db, tx, w)
		for i := range recs {
			rec := &recs[i]
			id := rec.User.ID
			old, err := cw.stored(id)
			if err != nil {
				return err
			}
			if rec.Deleted {
				if old != nil && rec.User.Version >= old.Version {
					if err := cw.remove(old); err != nil {
						return err
					}
					applied[i] = true
				}
				raised, err := raiseTombstone(tx, id, rec.User.Version)
				if err != nil {
					return err
				}
				applied[i] = applied[i] || raised
				continue
			}
			if old != nil && rec.User.Version <= old.Version || rec.User.Version <= tombstoneVersion(tx, id) {
				continue
			}
			if old == nil && rec.LocalID != "" {
				if err := cw.adopt(rec.LocalID, id); err != nil {
					return withIndex(i, err)
				}
			}
			if err := cw.upsert(old, rec); err != nil {
				return withIndex(i, err)
			}
			applied[i] = true
		}
		return cw.finish()
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// ReplaceAllUsers makes the central users and encodings exactly recs in one
// transaction: central users (Version > 0) missing from recs are deleted
// (with a tombstone at their version), records are written whatever their
// version (a snapshot is authoritative) and their tombstones cleared; users
// created on the device and not yet versioned stay, with their encodings.
// Records marked Deleted remove that user. Errors: EINVALID, ECONFLICT;
// nothing is written.
func (db *DB) ReplaceAllUsers(ctx context.Context, recs []models.UserRecord) error {
	now := db.Now().UTC()
	inSnapshot := make(map[string]int, len(recs))
	for i := range recs {
		if err := prepareCentralRecord(&recs[i], now); err != nil {
			return withIndex(i, err)
		}
		if _, dup := inSnapshot[recs[i].User.ID]; dup {
			return withIndex(i, models.Errorf(models.EINVALID, "id: %q appears twice in the snapshot", recs[i].User.ID).WithDetail("field", "id"))
		}
		inSnapshot[recs[i].User.ID] = i
	}
	return db.update(ctx, func(tx *bbolt.Tx, w *writeState) error {
		cw := newCentralWriter(db, tx, w)
		// Collect first: deleting while iterating a bucket is unsafe.
		var gone []*models.User
		if err := tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			if i, ok := inSnapshot[string(k)]; ok && !recs[i].Deleted {
				return nil
			}
			u, err := decodeUser(v)
			if err != nil {
				return err
			}
			if _, named := inSnapshot[u.ID]; u.Version > 0 || named {
				gone = append(gone, u)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, u := range gone {
			if err := cw.remove(u); err != nil {
				return err
			}
			if _, err := raiseTombstone(tx, u.ID, u.Version); err != nil {
				return err
			}
		}
		tombs := tx.Bucket(bucketTombstones)
		for i := range recs {
			rec := &recs[i]
			if rec.Deleted {
				if _, err := raiseTombstone(tx, rec.User.ID, rec.User.Version); err != nil {
					return err
				}
				continue
			}
			old, err := cw.stored(rec.User.ID)
			if err != nil {
				return err
			}
			if err := cw.upsert(old, rec); err != nil {
				return withIndex(i, err)
			}
			if err := tombs.Delete([]byte(rec.User.ID)); err != nil {
				return err
			}
		}
		return cw.finish()
	})
}

// UpsertLocalUsers creates or updates users created on the device (bulk
// import) in transactions of UpsertBatchSize records. A record is matched to
// an existing user by external id, then email; an unmatched one is created
// (with its ID, or a new UUID). A matched user created on the device gets
// the record's fields; a matched user owned by central (Version > 0) keeps
// central's fields and only gains the encodings. Encodings are added as
// SourceLocal, skipping exact duplicates of stored ones, and each written
// user's OutboxEnrolment message is queued in the same transaction (see
// Enrol). results[i].Err is
// the coded error for recs[i] (EINVALID, ECONFLICT, ETOOLARGE), and then
// nothing was written for it. err reports an I/O failure or cancellation.
func (db *DB) UpsertLocalUsers(ctx context.Context, recs []models.UserRecord) ([]models.UpsertResult, error) {
	results := make([]models.UpsertResult, len(recs))
	for start := 0; start < len(recs); start += UpsertBatchSize {
		end := min(start+UpsertBatchSize, len(recs))
		err := db.update(ctx, func(tx *bbolt.Tx, w *writeState) error {
			denseFill(tx)
			now := db.Now().UTC()
			for i := start; i < end; i++ {
				res, err := db.txUpsertLocal(tx, &recs[i], now)
				if err != nil {
					return err
				}
				results[i] = res
				if res.Err != nil {
					continue
				}
				rec, err := db.txLocalRecord(tx, res.UserID)
				if err != nil {
					return err
				}
				if err := db.txEnqueueEnrolment(tx, rec, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// txUpsertLocal validates and writes one bulk-import record. A coded error
// goes in the result (nothing written); a returned error aborts the batch.
func (db *DB) txUpsertLocal(tx *bbolt.Tx, rec *models.UserRecord, now time.Time) (models.UpsertResult, error) {
	refuse := func(err error) (models.UpsertResult, error) { return models.UpsertResult{Err: err}, nil }
	u := rec.User
	if rec.Deleted {
		return refuse(models.Errorf(models.EINVALID, "deleted: bulk import cannot delete users").WithDetail("field", "deleted"))
	}
	if err := prepareUser(&u, true); err != nil {
		return refuse(err)
	}
	lookup := func(index []byte) func(string) (*models.User, error) {
		return func(key string) (*models.User, error) {
			if id := tx.Bucket(index).Get([]byte(key)); id != nil {
				return txGetUser(tx, string(id))
			}
			return nil, nil
		}
	}
	// A clash on the email is refused below, by txUserConflict.
	old, _, err := models.MatchUser(&u, lookup(bucketExtIDIndex), lookup(bucketEmailIndex))
	if err != nil {
		return models.UpsertResult{}, err
	}
	created := old == nil
	switch {
	case created:
		if u.ID == "" {
			u.ID = models.NewID()
		} else if tx.Bucket(bucketUsers).Get([]byte(u.ID)) != nil {
			return refuse(models.Errorf(models.ECONFLICT, "id: %q is taken by a user with another email and external id", u.ID).WithDetail("field", "id"))
		}
		u.Version = 0
	case old.Version > 0:
		u = *old // central owns this user's fields
	default:
		u.ID = old.ID
		u.Version = 0
	}
	u.UpdatedAt = now
	if err := txUserConflict(tx, &u); err != nil {
		return refuse(err)
	}

	// Encodings: validate all, skip exact duplicates, bound the total.
	var existing []*models.FaceEncoding
	if !created {
		if existing, err = db.txUserEncodings(tx, u.ID); err != nil {
			return models.UpsertResult{}, err
		}
	}
	var add []models.FaceEncoding
	for j := range rec.Encodings {
		enc := rec.Encodings[j]
		enc.UserID = u.ID
		enc.Source = models.SourceLocal
		if err := prepareEncoding(&enc, now); err != nil {
			return refuse(models.Errorf(models.EINVALID, "encodings[%d].%s", j, models.ErrorMessage(err)).WithDetail("field", "encodings"))
		}
		if tx.Bucket(bucketEncodingIDs).Get([]byte(enc.ID)) != nil {
			return refuse(models.Errorf(models.ECONFLICT, "encodings[%d].id: %q is taken", j, enc.ID).WithDetail("field", "encodings.id"))
		}
		dup := false
		for _, e := range existing {
			dup = dup || e.Descriptor == enc.Descriptor
		}
		for _, e := range add {
			dup = dup || e.Descriptor == enc.Descriptor
		}
		if !dup {
			add = append(add, enc)
		}
	}
	if n := len(existing) + len(add); n > models.MaxEncodingsPerUser {
		return refuse(models.Errorf(models.ETOOLARGE, "encodings: the user would have %d encodings, more than the maximum %d", n, models.MaxEncodingsPerUser).WithDetail("max", models.MaxEncodingsPerUser))
	}

	// Everything checked: write.
	if created || old.Version == 0 {
		if err := txPutUser(tx, old, &u); err != nil {
			return models.UpsertResult{}, err
		}
	}
	for j := range add {
		if err := db.txPutEncoding(tx, &add[j]); err != nil {
			return models.UpsertResult{}, err
		}
	}
	return models.UpsertResult{UserID: u.ID, Created: created}, nil
}

// bulkFillPercent packs pages fuller than bbolt's default of half during
// bulk writes: ids from central and the indexes mostly arrive in key order,
// where half-full pages would double the file (and the startup RSS, since
// the check and the load touch every page).
const bulkFillPercent = 0.9

// denseFill sets bulkFillPercent on the user buckets for this transaction
// (a bucket handle is cached per transaction).
func denseFill(tx *bbolt.Tx) {
	for _, name := range [][]byte{bucketUsers, bucketEncodings, bucketEncodingIDs, bucketEmailIndex, bucketExtIDIndex, bucketNameIndex, bucketTombstones} {
		tx.Bucket(name).FillPercent = bulkFillPercent
	}
}
