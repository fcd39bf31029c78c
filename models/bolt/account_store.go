package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// MaxPasswordHashLen bounds a stored password hash (Django's longest
// formats are well under this).
const MaxPasswordHashLen = 512

// storedAccount is LocalAccount as stored: unlike the API form it keeps the
// password hash.
type storedAccount struct {
	Email         string                `json:"email"`
	Role          models.AccountRole    `json:"role"`
	PasswordHash  string                `json:"password_hash"`
	Disabled      bool                  `json:"disabled"`
	Source        models.EncodingSource `json:"source"`
	Version       int64                 `json:"version"`
	LocalOverride bool                  `json:"local_override"`
	UpdatedAt     time.Time             `json:"updated_at"`
}

func decodeAccount(v []byte) (*models.LocalAccount, error) {
	var s storedAccount
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("decode account: %w", err)
	}
	a := models.LocalAccount(s)
	return &a, nil
}

func accountKey(email string) []byte { return []byte(strings.ToLower(strings.TrimSpace(email))) }

// GetAccount returns the account with that (case-insensitive) email.
// Errors: ENOTFOUND.
func (db *DB) GetAccount(ctx context.Context, email string) (*models.LocalAccount, error) {
	var a *models.LocalAccount
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketAccounts).Get(accountKey(email))
		if v == nil {
			return models.Errorf(models.ENOTFOUND, "no account with email %q", email)
		}
		var err error
		a, err = decodeAccount(v)
		return err
	})
	return a, err
}

// ListAccounts returns every account ordered by email.
func (db *DB) ListAccounts(ctx context.Context) ([]*models.LocalAccount, error) {
	var out []*models.LocalAccount
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(_, v []byte) error {
			a, err := decodeAccount(v)
			if err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// PutAccount creates or replaces an account, normalizing the email and
// setting UpdatedAt (and Source local when unset). A central push (Version >
// 0) not newer than the stored version is ignored with ESTALE; one (Source
// central) for an email held by a device-local account is refused with
// EFORBIDDEN. Errors: EINVALID, ESTALE, EFORBIDDEN.
func (db *DB) PutAccount(ctx context.Context, a *models.LocalAccount) error {
	a.Email = strings.ToLower(strings.TrimSpace(a.Email))
	if a.Source == "" {
		a.Source = models.SourceLocal
	}
	if err := validateAccount(a); err != nil {
		return err
	}
	a.LocalOverride = false // central's version or a local account's owner speaks
	a.UpdatedAt = db.Now().UTC()
	return db.update(ctx, func(tx *bbolt.Tx, _ *writeState) error {
		b := tx.Bucket(bucketAccounts)
		k := accountKey(a.Email)
		if v := b.Get(k); v != nil && (a.Version > 0 || a.Source == models.SourceCentral) {
			old, err := decodeAccount(v)
			if err != nil {
				return err
			}
			// Central may manage only the accounts it created: a push that
			// reused a device-local admin's email would take it over (new
			// password, then a delete).
			if a.Source == models.SourceCentral && old.Source != models.SourceCentral {
				return models.Errorf(models.EFORBIDDEN, "account: %s was created on the device; central may not replace it", a.Email).WithDetail("field", "email")
			}
			if a.Version > 0 && a.Version <= old.Version {
				return models.Errorf(models.ESTALE, "version: %d is not newer than the stored %d", a.Version, old.Version).WithDetail("field", "version")
			}
		}
		v, err := json.Marshal(storedAccount(*a))
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
}

// validateAccount checks a normalized account before it is written.
func validateAccount(a *models.LocalAccount) error {
	switch {
	case a.Email == "":
		return models.Errorf(models.EINVALID, "email: required").WithDetail("field", "email")
	case len(a.Email) > models.MaxEmailLen || !models.ValidEmail(a.Email):
		return models.Errorf(models.EINVALID, "email: %q is not a valid address", a.Email).WithDetail("field", "email")
	case !a.Role.Valid():
		return models.Errorf(models.EINVALID, "role: %q is not one of technician, admin", a.Role).WithDetail("field", "role")
	case a.PasswordHash == "":
		return models.Errorf(models.EINVALID, "password_hash: required").WithDetail("field", "password_hash")
	case len(a.PasswordHash) > MaxPasswordHashLen:
		return models.Errorf(models.EINVALID, "password_hash: longer than %d characters", MaxPasswordHashLen).WithDetail("field", "password_hash")
	case sourceByte(a.Source) == 0:
		return models.Errorf(models.EINVALID, "source: %q is not one of central, local", a.Source).WithDetail("field", "source")
	case a.Version < 0:
		return models.Errorf(models.EINVALID, "version: negative").WithDetail("field", "version")
	}
	return nil
}

// UpdateAccount changes a stored account on the device (an admin's or the
// holder's edit): fn edits a copy read in the same transaction; the result
// is validated and written whatever its Version, so a central account can
// be disabled, re-roled or get a new password locally until central sends
// a newer version. Email, Source and Version are kept. Errors: ENOTFOUND,
// EINVALID, fn's.
func (db *DB) UpdateAccount(ctx context.Context, email string, fn func(a *models.LocalAccount) error) (*models.LocalAccount, error) {
	var out *models.LocalAccount
	err := db.update(ctx, func(tx *bbolt.Tx, w *writeState) error {
		b := tx.Bucket(bucketAccounts)
		k := accountKey(email)
		v := b.Get(k)
		if v == nil {
			return models.Errorf(models.ENOTFOUND, "no account with email %q", email)
		}
		old, err := decodeAccount(v)
		if err != nil {
			return err
		}
		a := *old
		if err := fn(&a); err != nil {
			return err
		}
		a.Email, a.Source, a.Version = old.Email, old.Source, old.Version
		if err := validateAccount(&a); err != nil {
			return err
		}
		a.LocalOverride = old.Source == models.SourceCentral
		a.UpdatedAt = db.Now().UTC()
		if a.PasswordHash != old.PasswordHash {
			w.scrub, w.prune = true, true // the old hash should not linger in free pages or backups
		}
		nv, err := json.Marshal(storedAccount(a))
		if err != nil {
			return err
		}
		out = &a
		return b.Put(k, nv)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteAccount removes an account. Errors: ENOTFOUND.
func (db *DB) DeleteAccount(ctx context.Context, email string) error {
	return db.update(ctx, func(tx *bbolt.Tx, w *writeState) error {
		b := tx.Bucket(bucketAccounts)
		k := accountKey(email)
		if b.Get(k) == nil {
			return models.Errorf(models.ENOTFOUND, "no account with email %q", email)
		}
		w.scrub, w.prune = true, true // the password hash should not linger in free pages or backups
		return b.Delete(k)
	})
}
