package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// validID checks an id used inside bucket keys: non-empty, bounded, and free
// of control bytes (0x00 separates key parts).
func validID(field, id string) error {
	if id == "" {
		return models.Errorf(models.EINVALID, "%s: required", field).WithDetail("field", field)
	}
	if len(id) > models.MaxIDLen {
		return models.Errorf(models.EINVALID, "%s: longer than %d characters", field, models.MaxIDLen).WithDetail("field", field)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return models.Errorf(models.EINVALID, "%s: contains a control character", field).WithDetail("field", field)
		}
	}
	return nil
}

// prepareUser normalizes and validates u for storage. ID may be empty only
// when allowNoID (the store assigns one).
func prepareUser(u *models.User, allowNoID bool) error {
	u.Normalize()
	if err := u.Validate(); err != nil {
		return err
	}
	if u.ID != "" || !allowNoID {
		if err := validID("id", u.ID); err != nil {
			return err
		}
	}
	if strings.ContainsRune(u.ExternalID, 0) {
		return models.Errorf(models.EINVALID, "external_id: contains a NUL character").WithDetail("field", "external_id")
	}
	return nil
}

func encodeUser(u *models.User) ([]byte, error) { return json.Marshal(u) }

func decodeUser(v []byte) (*models.User, error) {
	var u models.User
	if err := json.Unmarshal(v, &u); err != nil {
		return nil, fmt.Errorf("decode user: %w", err)
	}
	return &u, nil
}

// nameIndexKey orders users by full name (case-insensitively), then id.
func nameIndexKey(u *models.User) []byte {
	name := strings.ToLower(u.FullName)
	k := make([]byte, 0, len(name)+1+len(u.ID))
	k = append(k, name...)
	k = append(k, 0)
	return append(k, u.ID...)
}

// txGetUser returns the stored user or ENOTFOUND.
func txGetUser(tx *bbolt.Tx, id string) (*models.User, error) {
	v := tx.Bucket(bucketUsers).Get([]byte(id))
	if v == nil {
		return nil, models.Errorf(models.ENOTFOUND, "user %q not found", id)
	}
	return decodeUser(v)
}

// txUserConflict returns ECONFLICT when u's email or external id belongs to
// another user. It writes nothing.
func txUserConflict(tx *bbolt.Tx, u *models.User) error {
	if other := tx.Bucket(bucketEmailIndex).Get([]byte(u.Email)); other != nil && string(other) != u.ID {
		return models.Errorf(models.ECONFLICT, "email: %q is taken by another user", u.Email).
			WithDetail("field", "email").WithDetail("user_id", string(other))
	}
	if u.ExternalID != "" {
		if other := tx.Bucket(bucketExtIDIndex).Get([]byte(u.ExternalID)); other != nil && string(other) != u.ID {
			return models.Errorf(models.ECONFLICT, "external_id: %q is taken by another user", u.ExternalID).
				WithDetail("field", "external_id").WithDetail("user_id", string(other))
		}
	}
	return nil
}

// txPutUser writes u and its index entries, replacing old (nil when new).
// Callers check txUserConflict first.
func txPutUser(tx *bbolt.Tx, old, u *models.User) error {
	id := []byte(u.ID)
	emails, extIDs, names := tx.Bucket(bucketEmailIndex), tx.Bucket(bucketExtIDIndex), tx.Bucket(bucketNameIndex)
	if old != nil {
		if err := txDeleteUserIndexes(tx, old); err != nil {
			return err
		}
	}
	v, err := encodeUser(u)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketUsers).Put(id, v); err != nil {
		return err
	}
	if err := emails.Put([]byte(u.Email), id); err != nil {
		return err
	}
	if u.ExternalID != "" {
		if err := extIDs.Put([]byte(u.ExternalID), id); err != nil {
			return err
		}
	}
	return names.Put(nameIndexKey(u), id)
}

// txDeleteUserIndexes removes u's index entries (only those pointing at u).
func txDeleteUserIndexes(tx *bbolt.Tx, u *models.User) error {
	emails, extIDs := tx.Bucket(bucketEmailIndex), tx.Bucket(bucketExtIDIndex)
	if bytes.Equal(emails.Get([]byte(u.Email)), []byte(u.ID)) {
		if err := emails.Delete([]byte(u.Email)); err != nil {
			return err
		}
	}
	if u.ExternalID != "" && bytes.Equal(extIDs.Get([]byte(u.ExternalID)), []byte(u.ID)) {
		if err := extIDs.Delete([]byte(u.ExternalID)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketNameIndex).Delete(nameIndexKey(u))
}

// txDeleteUser removes u, its indexes, every encoding and its pending
// outbox messages that carry its data (enrolments), and asks for a scrub so
// the deleted bytes are wiped from the file.
func (db *DB) txDeleteUser(tx *bbolt.Tx, w *writeState, u *models.User) error {
	if err := db.txDeleteUserOutbox(tx, w, u.ID); err != nil {
		return err
	}
	if err := txDeleteUserIndexes(tx, u); err != nil {
		return err
	}
	if err := tx.Bucket(bucketUsers).Delete([]byte(u.ID)); err != nil {
		return err
	}
	if _, err := txDeleteEncodings(tx, w, u.ID, func(models.EncodingSource) bool { return true }); err != nil {
		return err
	}
	w.scrub, w.prune = true, true
	return nil
}

// userPrefix is the encodings-bucket prefix of one user's encodings.
func userPrefix(userID string) []byte {
	return append([]byte(userID), 0)
}

// txDeleteEncodings deletes the user's encodings whose source matches and
// returns how many it deleted.
func txDeleteEncodings(tx *bbolt.Tx, w *writeState, userID string, match func(models.EncodingSource) bool) (int, error) {
	encs, ids := tx.Bucket(bucketEncodings), tx.Bucket(bucketEncodingIDs)
	prefix := userPrefix(userID)
	var keys [][]byte
	c := encs.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		h, err := parseEncodingHeader(v)
		if err != nil || match(h.source) {
			keys = append(keys, cloneBytes(k))
		}
	}
	for _, k := range keys {
		_, encID, _ := splitEncodingKey(k)
		if err := encs.Delete(k); err != nil {
			return 0, err
		}
		if err := ids.Delete([]byte(encID)); err != nil {
			return 0, err
		}
	}
	if len(keys) > 0 {
		w.scrub, w.prune = true, true
	}
	return len(keys), nil
}

// txUserEncodings decrypts every encoding of one user.
func (db *DB) txUserEncodings(tx *bbolt.Tx, userID string) ([]*models.FaceEncoding, error) {
	prefix := userPrefix(userID)
	c := tx.Bucket(bucketEncodings).Cursor()
	var out []*models.FaceEncoding
	var buf []byte
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		enc := new(models.FaceEncoding)
		var err error
		if buf, err = db.aead.openEncoding(k, v, enc, buf); err != nil {
			return nil, fmt.Errorf("encoding %q: %w", k, err)
		}
		out = append(out, enc)
	}
	return out, nil
}

// countUserEncodings counts one user's encodings without decrypting them.
func countUserEncodings(tx *bbolt.Tx, userID string) int {
	prefix := userPrefix(userID)
	c := tx.Bucket(bucketEncodings).Cursor()
	n := 0
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}

// prepareEncoding fills defaults and validates enc (not its user).
func prepareEncoding(enc *models.FaceEncoding, now time.Time) error {
	if enc.ID == "" {
		enc.ID = models.NewID()
	}
	if err := validID("encoding.id", enc.ID); err != nil {
		return err
	}
	if err := validID("encoding.user_id", enc.UserID); err != nil {
		return err
	}
	if enc.Source == "" {
		enc.Source = models.SourceLocal
	}
	if sourceByte(enc.Source) == 0 {
		return models.Errorf(models.EINVALID, "encoding.source: %q is not one of central, local", enc.Source).WithDetail("field", "encoding.source")
	}
	if enc.Model == "" {
		enc.Model = models.DefaultModelName
	}
	if len(enc.Model) > maxModelNameLen {
		return models.Errorf(models.EINVALID, "encoding.model: longer than %d characters", maxModelNameLen).WithDetail("field", "encoding.model")
	}
	if enc.CreatedAt.IsZero() {
		enc.CreatedAt = now
	}
	enc.CreatedAt = enc.CreatedAt.UTC()
	if err := enc.Descriptor.Validate(); err != nil {
		return err
	}
	return nil
}

// txPutEncoding seals and stores enc and its id index entry. Callers
// validate first.
func (db *DB) txPutEncoding(tx *bbolt.Tx, enc *models.FaceEncoding) error {
	k := encodingKey(enc.UserID, enc.ID)
	v, err := db.aead.sealEncoding(k, enc)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketEncodings).Put(k, v); err != nil {
		return err
	}
	return tx.Bucket(bucketEncodingIDs).Put([]byte(enc.ID), []byte(enc.UserID))
}

// GetUser returns the user with id. Errors: ENOTFOUND.
func (db *DB) GetUser(ctx context.Context, id string) (*models.User, error) {
	var u *models.User
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		u, err = txGetUser(tx, id)
		return err
	})
	return u, err
}

// GetUserByEmail returns the user with that (case-insensitive) email.
func (db *DB) GetUserByEmail(ctx context.Context, email string) (*models.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	return db.getUserByIndex(ctx, bucketEmailIndex, email, "email")
}

// GetUserByExternalID returns the user with that external id.
func (db *DB) GetUserByExternalID(ctx context.Context, externalID string) (*models.User, error) {
	return db.getUserByIndex(ctx, bucketExtIDIndex, strings.TrimSpace(externalID), "external id")
}

func (db *DB) getUserByIndex(ctx context.Context, bucket []byte, key, what string) (*models.User, error) {
	var u *models.User
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucket).Get([]byte(key))
		if key == "" || id == nil {
			return models.Errorf(models.ENOTFOUND, "no user with %s %q", what, key)
		}
		var err error
		u, err = txGetUser(tx, string(id))
		return err
	})
	return u, err
}

// ListUsers returns one page of users ordered by full name
// (case-insensitively), then id, and the total count matching f.
func (db *DB) ListUsers(ctx context.Context, f models.UserFilter) ([]*models.User, int, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = models.DefaultPageSize
	}
	limit = min(limit, models.MaxPageSize)
	offset := max(f.Offset, 0)
	query := strings.ToLower(strings.TrimSpace(f.Query))
	filtered := query != "" || f.Role != "" || f.ClassGroup != ""

	var out []*models.User
	total := 0
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		return tx.Bucket(bucketNameIndex).ForEach(func(_, id []byte) error {
			inPage := total >= offset && len(out) < limit
			if !filtered && !inPage {
				total++ // no need to decode rows outside the page
				return nil
			}
			v := users.Get(id)
			if v == nil {
				return fmt.Errorf("name index points at missing user %q", id)
			}
			u, err := decodeUser(v)
			if err != nil {
				return err
			}
			if filtered && !userMatches(u, query, f) {
				return nil
			}
			if total >= offset && len(out) < limit {
				out = append(out, u)
			}
			total++
			return nil
		})
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// userMatches applies a UserFilter's Query (already lowercased), Role and
// ClassGroup to u.
func userMatches(u *models.User, query string, f models.UserFilter) bool {
	if f.Role != "" && u.Role != f.Role {
		return false
	}
	if f.ClassGroup != "" && !strings.EqualFold(u.ClassGroup, strings.TrimSpace(f.ClassGroup)) {
		return false
	}
	if query == "" {
		return true
	}
	return strings.Contains(strings.ToLower(u.FullName), query) ||
		strings.Contains(u.Email, query) ||
		strings.Contains(strings.ToLower(u.ExternalID), query)
}

// CountUsers returns the number of users.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketUsers).Stats().KeyN
		return nil
	})
	return n, err
}

// CreateUser validates and inserts u, assigning u.ID when empty and setting
// u.UpdatedAt. Errors: EINVALID; ECONFLICT when the id, email or external id
// is taken.
func (db *DB) CreateUser(ctx context.Context, u *models.User) error {
	if err := prepareUser(u, true); err != nil {
		return err
	}
	if u.ID == "" {
		u.ID = models.NewID()
	}
	u.UpdatedAt = db.Now().UTC()
	return db.update(ctx, func(tx *bbolt.Tx, _ *writeState) error { return txCreateUser(tx, u) })
}

// txCreateUser inserts a prepared u with its ID set.
func txCreateUser(tx *bbolt.Tx, u *models.User) error {
	if tx.Bucket(bucketUsers).Get([]byte(u.ID)) != nil {
		return models.Errorf(models.ECONFLICT, "id: %q is taken by another user", u.ID).WithDetail("field", "id").WithDetail("user_id", u.ID)
	}
	if err := txUserConflict(tx, u); err != nil {
		return err
	}
	return txPutUser(tx, nil, u)
}

// UpdateUser replaces the stored user with u (matched by u.ID), setting
// u.UpdatedAt. Errors: ENOTFOUND, EINVALID, ECONFLICT.
func (db *DB) UpdateUser(ctx context.Context, u *models.User) error {
	if err := prepareUser(u, false); err != nil {
		return err
	}
	u.UpdatedAt = db.Now().UTC()
	return db.update(ctx, func(tx *bbolt.Tx, _ *writeState) error { return txUpdateUser(tx, u) })
}

// txUpdateUser replaces the stored user with a prepared u.
func txUpdateUser(tx *bbolt.Tx, u *models.User) error {
	old, err := txGetUser(tx, u.ID)
	if err != nil {
		return err
	}
	if err := txUserConflict(tx, u); err != nil {
		return err
	}
	return txPutUser(tx, old, u)
}

// DeleteUser removes the user and every one of its encodings. The file is
// rewritten shortly afterwards (ScrubDelay, and always at Close) so the
// deleted bytes cannot be found in it. Errors: ENOTFOUND.
func (db *DB) DeleteUser(ctx context.Context, id string) error {
	return db.update(ctx, func(tx *bbolt.Tx, w *writeState) error {
		u, err := txGetUser(tx, id)
		if err != nil {
			return err
		}
		return db.txDeleteUser(tx, w, u)
	})
}

// AddEncoding validates and stores enc for an existing user, assigning
// enc.ID when empty, Source (local), Model and CreatedAt when unset.
// Errors: ENOTFOUND (user), EINVALID, ECONFLICT (id taken), ETOOLARGE.
func (db *DB) AddEncoding(ctx context.Context, enc *models.FaceEncoding) error {
	if err := prepareEncoding(enc, db.Now().UTC()); err != nil {
		return err
	}
	return db.update(ctx, func(tx *bbolt.Tx, _ *writeState) error { return db.txAddEncoding(tx, enc) })
}

// txAddEncoding stores a prepared enc for an existing user.
func (db *DB) txAddEncoding(tx *bbolt.Tx, enc *models.FaceEncoding) error {
	if tx.Bucket(bucketUsers).Get([]byte(enc.UserID)) == nil {
		return models.Errorf(models.ENOTFOUND, "user %q not found", enc.UserID)
	}
	if tx.Bucket(bucketEncodingIDs).Get([]byte(enc.ID)) != nil {
		return models.Errorf(models.ECONFLICT, "encoding.id: %q is taken", enc.ID).WithDetail("field", "encoding.id")
	}
	if n := countUserEncodings(tx, enc.UserID); n >= models.MaxEncodingsPerUser {
		return models.Errorf(models.ETOOLARGE, "encodings: user %q already has %d encodings, the maximum; delete one first", enc.UserID, n).
			WithDetail("max", models.MaxEncodingsPerUser)
	}
	return db.txPutEncoding(tx, enc)
}

// ListEncodings returns the encodings of one user, descriptors included,
// ordered by encoding id. Errors: ENOTFOUND (user).
func (db *DB) ListEncodings(ctx context.Context, userID string) ([]*models.FaceEncoding, error) {
	var out []*models.FaceEncoding
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketUsers).Get([]byte(userID)) == nil {
			return models.Errorf(models.ENOTFOUND, "user %q not found", userID)
		}
		var err error
		out, err = db.txUserEncodings(tx, userID)
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// DeleteEncoding removes one encoding; its bytes are wiped from the file
// like DeleteUser's. Errors: ENOTFOUND.
func (db *DB) DeleteEncoding(ctx context.Context, id string) error {
	return db.update(ctx, func(tx *bbolt.Tx, w *writeState) error {
		_, err := txDeleteEncoding(tx, w, id)
		return err
	})
}

// txDeleteEncoding removes one encoding and returns its user's id.
func txDeleteEncoding(tx *bbolt.Tx, w *writeState, id string) (string, error) {
	ids := tx.Bucket(bucketEncodingIDs)
	uid := string(ids.Get([]byte(id)))
	if uid == "" {
		return "", models.Errorf(models.ENOTFOUND, "encoding %q not found", id)
	}
	if err := tx.Bucket(bucketEncodings).Delete(encodingKey(uid, id)); err != nil {
		return "", err
	}
	if err := ids.Delete([]byte(id)); err != nil {
		return "", err
	}
	w.scrub, w.prune = true, true
	return uid, nil
}

// activeStatusJSON is how an active user's status appears in its record.
var activeStatusJSON = []byte(`"status":"active"`)

// userStatusOnly decodes just the status of a stored user.
type userStatusOnly struct {
	Status models.UserStatus `json:"status"`
}

// ForEachEncoding calls fn for every encoding of every active user, in one
// read transaction, grouped by user. fn must not keep enc (it is reused) and
// must not call the store's write methods (the read transaction is open).
func (db *DB) ForEachEncoding(ctx context.Context, fn func(enc *models.FaceEncoding) error) error {
	return db.view(ctx, func(tx *bbolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		var (
			enc      models.FaceEncoding
			buf      []byte
			curUser  []byte
			active   bool
			n        int
			statusOf userStatusOnly
		)
		c := tx.Bucket(bucketEncodings).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if n%16384 == 0 {
				// A walk over every encoding (startup) would otherwise keep
				// the whole bucket resident; a read transaction blocks
				// remapping, so the mapping cannot move under us.
				releaseMapped(db.bolt, db.path)
			}
			uid := k[:max(bytes.IndexByte(k, 0), 0)]
			if curUser == nil || !bytes.Equal(uid, curUser) {
				curUser = append(curUser[:0], uid...)
				uv := users.Get(uid)
				if uv == nil {
					return fmt.Errorf("encoding %q belongs to missing user", k)
				}
				if bytes.Contains(uv, activeStatusJSON) {
					// Fast path: json.Marshal writes exactly this, and the
					// sequence cannot occur inside a JSON string (its quotes
					// would be escaped).
					active = true
				} else {
					statusOf = userStatusOnly{}
					if err := json.Unmarshal(uv, &statusOf); err != nil {
						return fmt.Errorf("user %q: %w", uid, err)
					}
					active = statusOf.Status == models.UserActive
				}
			}
			if !active {
				continue
			}
			var err error
			if buf, err = db.aead.openEncoding(k, v, &enc, buf); err != nil {
				return fmt.Errorf("encoding %q: %w", k, err)
			}
			if err := fn(&enc); err != nil {
				return err
			}
		}
		return nil
	})
}

// CountEncodings returns the number of stored encodings.
func (db *DB) CountEncodings(ctx context.Context) (int, error) {
	var n int
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketEncodingIDs).Stats().KeyN
		return nil
	})
	return n, err
}
