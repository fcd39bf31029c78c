package models

import (
	"context"
	"time"
)

// AccountRole is what a local account may do on the device's API.
type AccountRole string

// Account roles. Admins also manage accounts and configuration.
const (
	AccountTechnician AccountRole = "technician"
	AccountAdmin      AccountRole = "admin"
)

// Valid reports whether r is a known account role.
func (r AccountRole) Valid() bool { return r == AccountTechnician || r == AccountAdmin }

// LocalAccount is a login for the device's API and pages: created on the device
// (kioskd admin add) or pushed by central with a Django password hash.
type LocalAccount struct {
	Email        string         `json:"email"`
	Role         AccountRole    `json:"role"`
	PasswordHash string         `json:"-"` // argon2id, bcrypt, or a Django format from central
	Disabled     bool           `json:"disabled"`
	Source       EncodingSource `json:"source"` // central or local
	Version      int64          `json:"version"`
	// LocalOverride is set when a device admin (role, disabled, password) or
	// the holder (password) changed a central account; central's next newer
	// version replaces the change and clears it.
	LocalOverride bool      `json:"local_override"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// AccountStore keeps local accounts.
type AccountStore interface {
	// GetAccount returns the account with that (case-insensitive) email.
	// Errors: ENOTFOUND.
	GetAccount(ctx context.Context, email string) (*LocalAccount, error)
	// ListAccounts returns every account ordered by email.
	ListAccounts(ctx context.Context) ([]*LocalAccount, error)
	// PutAccount creates or replaces an account. Central pushes carry a
	// Version: one not newer than the stored one is ignored and PutAccount
	// returns ESTALE; a central push for an email held by a device-local
	// account is refused. Errors: EINVALID, ESTALE, EFORBIDDEN.
	PutAccount(ctx context.Context, a *LocalAccount) error
	// UpdateAccount changes a stored account on the device: fn edits a copy
	// read in the same transaction, which is validated and written whatever
	// its Version, keeping Source and Version (a central account is marked
	// LocalOverride). Errors: ENOTFOUND, EINVALID, fn's.
	UpdateAccount(ctx context.Context, email string, fn func(a *LocalAccount) error) (*LocalAccount, error)
	// DeleteAccount removes an account. Errors: ENOTFOUND.
	DeleteAccount(ctx context.Context, email string) error
}
