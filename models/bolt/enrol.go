package bolt

import (
	"context"
	"time"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// Enrol applies one change made on the device and queues its
// OutboxEnrolment message in the same transaction: when it returns nil both
// survive a crash, and when it fails neither was written.
func (db *DB) Enrol(ctx context.Context, e *models.Enrolment) (*models.User, error) {
	now := db.Now().UTC()
	var out *models.User
	switch e.Op {
	case models.EnrolCreateUser, models.EnrolUpdateUser:
		if e.User == nil {
			return nil, models.Errorf(models.EINVALID, "enrolment: %s without a user", e.Op)
		}
		if err := prepareUser(e.User, e.Op == models.EnrolCreateUser); err != nil {
			return nil, err
		}
		if e.User.ID == "" {
			e.User.ID = models.NewID()
		}
		e.User.UpdatedAt = now
	case models.EnrolAddFace:
		if e.Encoding == nil {
			return nil, models.Errorf(models.EINVALID, "enrolment: %s without an encoding", e.Op)
		}
		if err := prepareEncoding(e.Encoding, now); err != nil {
			return nil, err
		}
	case models.EnrolDeleteUser, models.EnrolDeleteFace:
	default:
		return nil, models.Errorf(models.EINVALID, "enrolment: unknown operation %q", e.Op)
	}
	err := db.update(ctx, func(tx *bbolt.Tx, w *writeState) error {
		var err error
		out, err = db.txEnrol(tx, w, e, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// txEnrol writes e's change and its outbox message, returning the user.
func (db *DB) txEnrol(tx *bbolt.Tx, w *writeState, e *models.Enrolment, now time.Time) (*models.User, error) {
	userID := e.UserID
	switch e.Op {
	case models.EnrolCreateUser:
		if err := txCreateUser(tx, e.User); err != nil {
			return nil, err
		}
		userID = e.User.ID
	case models.EnrolUpdateUser:
		if err := txUpdateUser(tx, e.User); err != nil {
			return nil, err
		}
		userID = e.User.ID
	case models.EnrolAddFace:
		if err := db.txAddEncoding(tx, e.Encoding); err != nil {
			return nil, err
		}
		userID = e.Encoding.UserID
	case models.EnrolDeleteFace:
		if uid := tx.Bucket(bucketEncodingIDs).Get([]byte(e.EncodingID)); string(uid) != e.UserID {
			return nil, models.Errorf(models.ENOTFOUND, "This user has no face encoding %q.", e.EncodingID)
		}
		if _, err := txDeleteEncoding(tx, w, e.EncodingID); err != nil {
			return nil, err
		}
	case models.EnrolDeleteUser:
		u, err := txGetUser(tx, e.UserID)
		if err != nil {
			return nil, err
		}
		if err := db.txDeleteUser(tx, w, u); err != nil {
			return nil, err
		}
		// The notice outlives the user's pending enrolments, which
		// txDeleteUser dropped.
		return u, db.txEnqueueEnrolment(tx, &models.UserRecord{User: *u, Deleted: true}, now)
	}
	rec, err := db.txLocalRecord(tx, userID)
	if err != nil {
		return nil, err
	}
	return &rec.User, db.txEnqueueEnrolment(tx, rec, now)
}

// txLocalRecord returns the stored user with the encodings enrolled on the
// device: what central hears of a local enrolment.
func (db *DB) txLocalRecord(tx *bbolt.Tx, userID string) (*models.UserRecord, error) {
	u, err := txGetUser(tx, userID)
	if err != nil {
		return nil, err
	}
	encs, err := db.txUserEncodings(tx, userID)
	if err != nil {
		return nil, err
	}
	rec := &models.UserRecord{User: *u}
	for _, e := range encs {
		if e.Source == models.SourceLocal {
			rec.Encodings = append(rec.Encodings, *e)
		}
	}
	return rec, nil
}

// txEnqueueEnrolment queues the OutboxEnrolment message for rec.
func (db *DB) txEnqueueEnrolment(tx *bbolt.Tx, rec *models.UserRecord, now time.Time) error {
	if db.enqueueFault != nil {
		return db.enqueueFault
	}
	m, err := models.NewEnrolmentMessage(rec)
	if err != nil {
		return err
	}
	m.CreatedAt = now
	return db.txEnqueue(tx, m)
}
