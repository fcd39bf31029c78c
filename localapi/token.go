package localapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kioskd/kioskd/models"
)

// tokenSecretKey is the MetaStore key of the per-device token secret,
// generated on first run. Changing it logs everybody out.
const tokenSecretKey = "localapi/token_secret"

// loadTokenSecret returns the device's token secret, creating it on first run.
func loadTokenSecret(ctx context.Context, meta models.MetaStore) ([]byte, error) {
	b, err := meta.GetMeta(ctx, tokenSecretKey)
	if err == nil && len(b) >= 32 {
		return b, nil
	} else if err != nil && models.ErrorCode(err) != models.ENOTFOUND {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := meta.SetMeta(ctx, tokenSecretKey, b); err != nil {
		return nil, err
	}
	return b, nil
}

// tokenClaims is what a token says. The role in it is informational: every
// request reloads the account, so a disabled or demoted account loses access
// at once. Cred ties the token to the account's credential (credTag): a new
// password, an admin's reset or a deleted and re-created account (a new
// hash, with a new salt) ends every token issued before.
type tokenClaims struct {
	ID      string             `json:"jti"`
	Email   string             `json:"sub"`
	Role    models.AccountRole `json:"role"`
	Cred    string             `json:"cred"`
	Issued  int64              `json:"iat"`
	Expires int64              `json:"exp"`
}

// tokenSigner issues and checks "v1.<claims>.<hmac>" tokens: HMAC-SHA256 over
// the base64url claims with the device's secret.
type tokenSigner struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time

	meta models.MetaStore // persists revocations across restarts
	pmu  sync.Mutex       // orders revocation writes
	mu   sync.Mutex
	rev  revocations

	// verified maps tokens whose signature and claims were already checked
	// to their claims, so a client's every request after its first costs a
	// map lookup instead of an HMAC, two base64 decodes and a JSON parse
	// (docs/benchmarks.md, "Local API"). Expiry and
	// revocation are still checked on every request. Bounded: emptied when
	// full.
	vmu      sync.RWMutex
	verified map[string]tokenClaims
}

// maxVerifiedTokens bounds tokenSigner.verified: far more sessions than a
// kiosk's technicians hold at once.
const maxVerifiedTokens = 4096

func newTokenSigner(secret []byte, ttl time.Duration, now func() time.Time, meta models.MetaStore) *tokenSigner {
	return &tokenSigner{secret: secret, ttl: ttl, now: now, meta: meta, rev: newRevocations(), verified: map[string]tokenClaims{}}
}

// credTag names an account's current credential without revealing it: an
// HMAC of the email and the password hash under the token secret.
func (t *tokenSigner) credTag(a *models.LocalAccount) string {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte("cred\x00" + a.Email + "\x00" + a.PasswordHash))
	return b64url.EncodeToString(m.Sum(nil)[:12])
}

// matches reports whether c was issued for a's current credential.
func (t *tokenSigner) matches(c *tokenClaims, a *models.LocalAccount) bool {
	return hmac.Equal([]byte(c.Cred), []byte(t.credTag(a)))
}

var b64url = base64.RawURLEncoding

func (t *tokenSigner) mac(payload string) []byte {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte("v1." + payload))
	return m.Sum(nil)
}

// issue returns a new token for the account and its expiry.
func (t *tokenSigner) issue(a *models.LocalAccount) (string, time.Time, error) {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return "", time.Time{}, err
	}
	now := t.now()
	exp := now.Add(t.ttl)
	c := tokenClaims{ID: b64url.EncodeToString(id), Email: a.Email, Role: a.Role, Cred: t.credTag(a), Issued: now.Unix(), Expires: exp.Unix()}
	js, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, err
	}
	payload := b64url.EncodeToString(js)
	return "v1." + payload + "." + b64url.EncodeToString(t.mac(payload)), exp, nil
}

// verify checks a token's signature, expiry and revocation.
func (t *tokenSigner) verify(tok string) (*tokenClaims, error) {
	t.vmu.RLock()
	c, ok := t.verified[tok]
	t.vmu.RUnlock()
	if !ok {
		parsed, err := t.parse(tok)
		if err != nil {
			return nil, err
		}
		c = *parsed
		t.vmu.Lock()
		if len(t.verified) >= maxVerifiedTokens {
			clear(t.verified)
		}
		t.verified[tok] = c
		t.vmu.Unlock()
	}
	if err := t.check(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// check refuses verified claims that expired or were revoked since.
func (t *tokenSigner) check(c *tokenClaims) error {
	if t.now().Unix() >= c.Expires {
		return models.Errorf(models.EUNAUTHORIZED, "Your session has expired; log in again.")
	}
	t.mu.Lock()
	revoked := t.rev.has(c)
	t.mu.Unlock()
	if revoked {
		return models.Errorf(models.EUNAUTHORIZED, "You have logged out; log in again.")
	}
	return nil
}

// parse checks a token's form and signature and decodes its claims.
func (t *tokenSigner) parse(tok string) (*tokenClaims, error) {
	bad := models.Errorf(models.EUNAUTHORIZED, "Your session token is not valid; log in again.")
	if len(tok) > 1024 || !strings.HasPrefix(tok, "v1.") {
		return nil, bad
	}
	payload, sig, ok := strings.Cut(tok[3:], ".")
	if !ok {
		return nil, bad
	}
	got, err := b64url.DecodeString(sig)
	if err != nil || !hmac.Equal(got, t.mac(payload)) {
		return nil, bad
	}
	js, err := b64url.DecodeString(payload)
	if err != nil {
		return nil, bad
	}
	var c tokenClaims
	if err := json.Unmarshal(js, &c); err != nil || c.Email == "" {
		return nil, bad
	}
	return &c, nil
}

// revoke refuses a token until it expires (logout), also after a restart:
// the revocations are stored before revoke returns.
func (t *tokenSigner) revoke(ctx context.Context, c *tokenClaims) error {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	t.mu.Lock()
	t.rev.sweep(t.now().Unix())
	t.rev.add(c)
	b, err := json.Marshal(&t.rev)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	return t.meta.SetMeta(ctx, revocationsKey, b)
}

// load reads the stored revocations (Open).
func (t *tokenSigner) load(ctx context.Context) error {
	b, err := t.meta.GetMeta(ctx, revocationsKey)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	r := newRevocations()
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("stored token revocations: %w", err)
	}
	t.mu.Lock()
	t.rev = r
	t.rev.sweep(t.now().Unix())
	t.mu.Unlock()
	return nil
}

func (t *tokenSigner) sweep() {
	if t == nil {
		return
	}
	now := t.now().Unix()
	t.vmu.Lock()
	for tok, c := range t.verified {
		if c.Expires <= now {
			delete(t.verified, tok)
		}
	}
	t.vmu.Unlock()
	t.mu.Lock()
	t.rev.sweep(now)
	t.mu.Unlock()
}

func (c *tokenClaims) String() string { return fmt.Sprintf("token %s for %s", c.ID, c.Email) }
