package models

import "context"

// EnrolOp names a change made on the device to a user or its faces.
type EnrolOp string

// Enrolment operations.
const (
	EnrolCreateUser EnrolOp = "create_user" // Enrolment.User, ID assigned when empty
	EnrolUpdateUser EnrolOp = "update_user" // Enrolment.User, matched by ID
	EnrolDeleteUser EnrolOp = "delete_user" // Enrolment.UserID
	EnrolAddFace    EnrolOp = "add_face"    // Enrolment.Encoding (its UserID names the user)
	EnrolDeleteFace EnrolOp = "delete_face" // Enrolment.UserID and Enrolment.EncodingID
)

// Enrolment is one change made on the device (API, camera capture) to a
// user or its faces. Only the fields its Op names are read.
type Enrolment struct {
	Op         EnrolOp
	User       *User
	UserID     string
	Encoding   *FaceEncoding
	EncodingID string
}

// EnrolmentStore writes changes made on the device together with the news
// for central, so a crash can never keep one without the other.
type EnrolmentStore interface {
	// Enrol applies e and, in the same transaction, queues the
	// OutboxEnrolment message with the user's resulting record (its local
	// encodings) or, for EnrolDeleteUser, the notice of its deletion. It
	// returns the user as stored after the change (as it was, for a
	// deletion). Errors: those of CreateUser, UpdateUser, DeleteUser,
	// AddEncoding and DeleteEncoding; EINVALID for an unknown Op.
	Enrol(ctx context.Context, e *Enrolment) (*User, error)
}

// Enroller is the one owner of changes to users and their faces: every
// path (API upload and camera capture, bulk import, local deletes, central's
// upserts, deletes and snapshots) goes through it. It writes the store
// (changes made on the device with their outbox message, in one
// transaction) and keeps the Matcher in step with what was written.
type Enroller interface {
	// Enrol is EnrolmentStore.Enrol, then the matcher refreshed for the user.
	Enrol(ctx context.Context, e *Enrolment) (*User, error)
	// UpsertLocalUsers is UserStore.UpsertLocalUsers, then the matcher
	// refreshed for every written user.
	UpsertLocalUsers(ctx context.Context, recs []UserRecord) ([]UpsertResult, error)
	// ApplyUserRecords is UserStore.ApplyUserRecords, then the matcher
	// refreshed for every user an applied record touched.
	ApplyUserRecords(ctx context.Context, recs []UserRecord) (applied []bool, err error)
	// ReplaceAllUsers is UserStore.ReplaceAllUsers, then the matcher made to
	// hold exactly the store's active users.
	ReplaceAllUsers(ctx context.Context, recs []UserRecord) error
}
