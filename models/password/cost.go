package password

import (
	"fmt"
	"strings"
)

// Login timing must not tell which accounts exist: a failed login should
// cost the same whatever the email. PasswordCostClass groups hashes whose
// verification costs the same, and SpendPasswordWork does that work against
// a hash of the class that no password matches, so a caller can make every
// failed login verify one hash of each class in use.

// PasswordCostClass names hash's format and cost parameters, e.g.
// "pbkdf2:32:1000000"; verifying two hashes of one class costs the same.
// It is "" for a hash VerifyPassword cannot check.
func PasswordCostClass(hash string) string {
	v, err := parsePasswordHash(hash)
	if err != nil {
		return ""
	}
	switch h := v.(type) {
	case *argon2Hash:
		return fmt.Sprintf("%s:%d:%d:%d:%d", h.variant, h.memory, h.time, h.threads, len(h.key))
	case *pbkdf2Hash:
		return fmt.Sprintf("pbkdf2:%d:%d", len(h.key), h.iterations)
	case *bcryptHash:
		return "bcrypt:" + string(h.hash[:6])
	case *scryptHash:
		return fmt.Sprintf("scrypt:%d:%d:%d:%d", h.n, h.r, h.p, len(h.key))
	}
	return ""
}

// SpendPasswordWork checks password against a hash of hash's cost class
// that no password matches, taking as long as VerifyPassword(hash,
// password); a hash VerifyPassword cannot check costs nothing.
func SpendPasswordWork(hash, password string) {
	v, err := parsePasswordHash(hash)
	if err != nil || len(password) > MaxPasswordLen {
		return
	}
	switch h := v.(type) {
	case *argon2Hash:
		d := *h
		d.key = make([]byte, len(h.key))
		_, _ = d.verify(password)
	case *pbkdf2Hash:
		d := *h
		d.key = make([]byte, len(h.key))
		_, _ = d.verify(password)
	case *bcryptHash:
		// The same cost with an all-zero salt and digest ('.' is 0 in
		// bcrypt's base64).
		d := bcryptHash{hash: []byte(string(h.hash[:7]) + strings.Repeat(".", 53)), sha256: h.sha256}
		_, _ = d.verify(password)
	case *scryptHash:
		d := *h
		d.key = make([]byte, len(h.key))
		_, _ = d.verify(password)
	}
}
