package models

import (
	"context"
	"net/mail"
	"strings"
	"time"
)

// Role is a person's role in the institution.
type Role string

// Roles known to the registry.
const (
	RoleTrainee     Role = "trainee"
	RoleTrainer     Role = "trainer"
	RoleHOD         Role = "hod"
	RoleDPAcademics Role = "dp_academics"
	RoleAdmin       Role = "admin"
)

// Roles lists every valid Role, in the registry's order.
var Roles = []Role{RoleTrainee, RoleTrainer, RoleHOD, RoleDPAcademics, RoleAdmin}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, v := range Roles {
		if r == v {
			return true
		}
	}
	return false
}

// UserStatus says whether a user may be recognised.
type UserStatus string

// User statuses. Only active users produce attendance.
const (
	UserActive    UserStatus = "active"
	UserInactive  UserStatus = "inactive"
	UserSuspended UserStatus = "suspended"
)

// Valid reports whether s is a known status.
func (s UserStatus) Valid() bool {
	return s == UserActive || s == UserInactive || s == UserSuspended
}

// Limits on user fields; the registry's own limits are the same or smaller.
const (
	MaxIDLen    = 64
	MaxEmailLen = 254
	MaxNameLen  = 200
	MaxFieldLen = 120 // department, programme, class group, external id
)

// User is a person the kiosk can recognise. The central registry owns users;
// a user created on the device (enrolment, bulk import) is sent to central.
type User struct {
	// ID is the stable primary key. For users from central it is central's id;
	// for users created on the device it is a generated UUID.
	ID string `json:"id"`
	// ExternalID is the institution's own number (student or staff number).
	ExternalID string     `json:"external_id,omitempty"`
	Email      string     `json:"email"`
	FullName   string     `json:"full_name"`
	Role       Role       `json:"role"`
	Status     UserStatus `json:"status"`
	Department string     `json:"department,omitempty"`
	Programme  string     `json:"programme,omitempty"`
	ClassGroup string     `json:"class_group,omitempty"`
	// Version is central's monotonic version of this record; 0 for a record
	// central has not versioned yet (created on the device).
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Normalize trims fields and lowercases the email, in place.
func (u *User) Normalize() {
	u.ID = strings.TrimSpace(u.ID)
	u.ExternalID = strings.TrimSpace(u.ExternalID)
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	u.FullName = strings.TrimSpace(u.FullName)
	u.Department = strings.TrimSpace(u.Department)
	u.Programme = strings.TrimSpace(u.Programme)
	u.ClassGroup = strings.TrimSpace(u.ClassGroup)
	if u.Status == "" {
		u.Status = UserActive
	}
}

// Validate returns an EINVALID error naming the first bad field, or nil.
// It expects a normalized user; ID may be empty (the store assigns one).
func (u *User) Validate() error {
	switch {
	case len(u.ID) > MaxIDLen:
		return Errorf(EINVALID, "id: longer than %d characters", MaxIDLen).WithDetail("field", "id")
	case u.Email == "":
		return Errorf(EINVALID, "email: required").WithDetail("field", "email")
	case len(u.Email) > MaxEmailLen || !ValidEmail(u.Email):
		return Errorf(EINVALID, "email: %q is not a valid address", u.Email).WithDetail("field", "email")
	case u.FullName == "":
		return Errorf(EINVALID, "full_name: required").WithDetail("field", "full_name")
	case len(u.FullName) > MaxNameLen:
		return Errorf(EINVALID, "full_name: longer than %d characters", MaxNameLen).WithDetail("field", "full_name")
	case !u.Role.Valid():
		return Errorf(EINVALID, "role: %q is not one of trainee, trainer, hod, dp_academics, admin", u.Role).WithDetail("field", "role")
	case !u.Status.Valid():
		return Errorf(EINVALID, "status: %q is not one of active, inactive, suspended", u.Status).WithDetail("field", "status")
	case len(u.ExternalID) > MaxFieldLen:
		return Errorf(EINVALID, "external_id: longer than %d characters", MaxFieldLen).WithDetail("field", "external_id")
	case len(u.Department) > MaxFieldLen:
		return Errorf(EINVALID, "department: longer than %d characters", MaxFieldLen).WithDetail("field", "department")
	case len(u.Programme) > MaxFieldLen:
		return Errorf(EINVALID, "programme: longer than %d characters", MaxFieldLen).WithDetail("field", "programme")
	case len(u.ClassGroup) > MaxFieldLen:
		return Errorf(EINVALID, "class_group: longer than %d characters", MaxFieldLen).WithDetail("field", "class_group")
	case u.Version < 0:
		return Errorf(EINVALID, "version: negative").WithDetail("field", "version")
	}
	for _, f := range [...]struct{ name, v string }{{"full_name", u.FullName}, {"external_id", u.ExternalID},
		{"department", u.Department}, {"programme", u.Programme}, {"class_group", u.ClassGroup}} {
		if err := checkText(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

// ValidEmail reports whether s is a plain addr-spec (no display name) with a
// dot in its domain, which is what the registry accepts.
func ValidEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
}

// UserFilter selects users for ListUsers.
type UserFilter struct {
	// Query matches, case-insensitively, a substring of the full name, email
	// or external id.
	Query      string
	Role       Role
	ClassGroup string
	Offset     int
	Limit      int // 0 means DefaultPageSize; capped at MaxPageSize
}

// Paging limits for list calls.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// UserRecord is a user with its face encodings, as central sends it, as a
// snapshot carries it and as bulk import writes it. Deleted marks a tombstone.
type UserRecord struct {
	User      User
	Encodings []FaceEncoding
	Deleted   bool
	// LocalID, on a central upsert, names the device-created user (version
	// 0) this record is the same person as: the store re-keys that user, its
	// encodings and attendance to User.ID before applying the record.
	LocalID string
}

// UserStore keeps users and their face encodings.
type UserStore interface {
	// GetUser returns the user with id. Errors: ENOTFOUND.
	GetUser(ctx context.Context, id string) (*User, error)
	// GetUserByEmail returns the user with that (case-insensitive) email.
	// Errors: ENOTFOUND.
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	// GetUserByExternalID returns the user with that external id.
	// Errors: ENOTFOUND.
	GetUserByExternalID(ctx context.Context, externalID string) (*User, error)
	// ListUsers returns one page of users ordered by full name and the total
	// count matching the filter.
	ListUsers(ctx context.Context, f UserFilter) ([]*User, int, error)
	// CountUsers returns the number of users.
	CountUsers(ctx context.Context) (int, error)
	// CreateUser validates and inserts u, assigning u.ID when empty and
	// setting u.UpdatedAt. Errors: EINVALID; ECONFLICT when the id, email or
	// external id is taken.
	CreateUser(ctx context.Context, u *User) error
	// UpdateUser replaces the stored user with u (matched by u.ID).
	// Errors: ENOTFOUND, EINVALID, ECONFLICT (email or external id taken).
	UpdateUser(ctx context.Context, u *User) error
	// DeleteUser removes the user and every one of its encodings; their
	// bytes are overwritten so they cannot be found in the file afterwards.
	// Errors: ENOTFOUND.
	DeleteUser(ctx context.Context, id string) error

	// AddEncoding validates and stores enc for an existing user, assigning
	// enc.ID when empty. Errors: ENOTFOUND (user), EINVALID (non-finite or
	// zero descriptor), ETOOLARGE (more than MaxEncodingsPerUser).
	AddEncoding(ctx context.Context, enc *FaceEncoding) error
	// ListEncodings returns the encodings of one user, descriptors included.
	// Errors: ENOTFOUND (user).
	ListEncodings(ctx context.Context, userID string) ([]*FaceEncoding, error)
	// DeleteEncoding removes one encoding. Errors: ENOTFOUND.
	DeleteEncoding(ctx context.Context, id string) error
	// ForEachEncoding calls fn for every encoding of every active user, in
	// one read transaction; fn must not keep enc. An error from fn stops
	// the walk and is returned.
	ForEachEncoding(ctx context.Context, fn func(enc *FaceEncoding) error) error
	// CountEncodings returns the number of stored encodings.
	CountEncodings(ctx context.Context) (int, error)

	// ApplyUserRecords applies central's upserts and tombstones in one
	// transaction. A record is applied only when its version is newer than
	// the stored user's or tombstone's; its encodings replace the user's
	// central encodings (local ones stay). applied[i] tells whether recs[i]
	// changed anything. Errors: EINVALID (the whole batch is refused).
	ApplyUserRecords(ctx context.Context, recs []UserRecord) (applied []bool, err error)
	// ReplaceAllUsers makes the central users and encodings exactly recs in
	// one transaction (a snapshot): users from central that are not in recs
	// are deleted; users created on the device and not yet versioned stay.
	// Errors: EINVALID (nothing is written).
	ReplaceAllUsers(ctx context.Context, recs []UserRecord) error
	// UpsertLocalUsers creates or updates users created on the device (bulk
	// import), each with the given encodings added and its OutboxEnrolment
	// message queued, in batched transactions. A user is matched by
	// MatchUser. results[i] is nil or the coded error for recs[i]; a refused
	// record writes nothing.
	UpsertLocalUsers(ctx context.Context, recs []UserRecord) (results []UpsertResult, err error)
}

// MatchUser applies bulk import's rule for which stored user a record u
// names: the one with u's external id, else the one with u's email.
// emailHolder is the user holding u's email when that is not match (a
// conflict to report). The lookups return (nil, nil) when nothing is found.
func MatchUser(u *User, byExternalID, byEmail func(string) (*User, error)) (match, emailHolder *User, err error) {
	if u.ExternalID != "" {
		if match, err = byExternalID(u.ExternalID); err != nil {
			return nil, nil, err
		}
	}
	holder, err := byEmail(u.Email)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case match == nil:
		return holder, nil, nil
	case holder != nil && holder.ID != match.ID:
		return match, holder, nil
	}
	return match, nil, nil
}

// UpsertResult reports what UpsertLocalUsers did with one record.
type UpsertResult struct {
	UserID  string
	Created bool  // false: an existing user was updated
	Err     error // nil, or a coded error; nothing was written for the record
}
