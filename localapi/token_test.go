package localapi

import (
	"context"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// TestTokenVerifyCacheKeepsChecks: a token verified once is served from the
// cache, yet a logout, the expiry and a forged signature are refused on
// every later request as on the first.
func TestTokenVerifyCacheKeepsChecks(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	ts := newTokenSigner([]byte("0123456789abcdef0123456789abcdef"), 10*time.Minute, func() time.Time { return now }, bolttest.MustOpenDB(t))
	acc := &models.LocalAccount{Email: "tech@example.org", Role: models.AccountTechnician}

	tok, _, err := ts.issue(acc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second call is a cache hit
		c, err := ts.verify(tok)
		if err != nil || c.Email != acc.Email || c.Role != acc.Role {
			t.Fatalf("verify #%d = %+v, %v", i+1, c, err)
		}
	}
	if len(ts.verified) != 1 {
		t.Fatalf("%d cached tokens, want 1", len(ts.verified))
	}
	forged := tok[:len(tok)-2] + "AA"
	if _, err := ts.verify(forged); models.ErrorCode(err) != models.EUNAUTHORIZED {
		t.Fatalf("forged token: %v", err)
	}
	if len(ts.verified) != 1 {
		t.Fatal("a forged token was cached")
	}

	c, _ := ts.verify(tok)
	if err := ts.revoke(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.verify(tok); models.ErrorCode(err) != models.EUNAUTHORIZED {
		t.Fatalf("cached token after logout: %v", err)
	}

	tok2, _, _ := ts.issue(acc)
	if _, err := ts.verify(tok2); err != nil {
		t.Fatal(err)
	}
	now = now.Add(11 * time.Minute)
	if _, err := ts.verify(tok2); models.ErrorCode(err) != models.EUNAUTHORIZED {
		t.Fatalf("cached token after expiry: %v", err)
	}
	ts.sweep()
	if len(ts.verified) != 0 {
		t.Fatalf("%d expired tokens still cached after sweep", len(ts.verified))
	}
}

// TestAccountCacheExpiresAndClears: a cached account is reused within
// accountCacheTTL, re-read after it or after clear, and a missing account
// is never cached.
func TestAccountCacheExpiresAndClears(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	c := newAccountCache(func() time.Time { return now })
	loads := 0
	acc := &models.LocalAccount{Email: "tech@example.org", Role: models.AccountTechnician}
	load := func(_ context.Context, email string) (*models.LocalAccount, error) {
		loads++
		if acc == nil {
			return nil, models.Errorf(models.ENOTFOUND, "no account %s", email)
		}
		return acc, nil
	}
	ctx := context.Background()
	for range 3 {
		if a, err := c.get(ctx, "tech@example.org", load); err != nil || a != acc {
			t.Fatalf("get = %v, %v", a, err)
		}
	}
	if loads != 1 {
		t.Fatalf("%d loads within the TTL, want 1", loads)
	}
	now = now.Add(accountCacheTTL)
	acc = nil // deleted in the store
	if _, err := c.get(ctx, "tech@example.org", load); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("after the TTL: %v, want ENOTFOUND", err)
	}
	if _, err := c.get(ctx, "tech@example.org", load); models.ErrorCode(err) != models.ENOTFOUND || loads != 3 {
		t.Fatalf("a missing account was cached (loads %d, err %v)", loads, err)
	}
	acc = &models.LocalAccount{Email: "tech@example.org", Role: models.AccountAdmin}
	c.get(ctx, "tech@example.org", load)
	c.clear()
	if a, _ := c.get(ctx, "tech@example.org", load); a != acc || loads != 5 {
		t.Fatalf("clear did not force a reload (loads %d)", loads)
	}
}

// TestRevocationsOverflow: past maxRevokedTokens stored ids, a logout
// revokes the account's tokens issued up to the logged-out one (never
// fewer), and expired entries are dropped.
func TestRevocationsOverflow(t *testing.T) {
	r := newRevocations()
	for i := 0; i < maxRevokedTokens; i++ {
		r.add(&tokenClaims{ID: itoa(i), Email: "a@x", Issued: 100, Expires: 2000})
	}
	older := &tokenClaims{ID: "older", Email: "b@x", Issued: 150, Expires: 2000}
	out := &tokenClaims{ID: "out", Email: "b@x", Issued: 200, Expires: 2000}
	newer := &tokenClaims{ID: "newer", Email: "b@x", Issued: 201, Expires: 2000}
	r.add(out)
	if !r.has(out) || !r.has(older) || r.has(newer) || len(r.IDs) != maxRevokedTokens {
		t.Fatalf("overflow: out %v older %v newer %v, %d ids", r.has(out), r.has(older), r.has(newer), len(r.IDs))
	}
	r.sweep(2000)
	if len(r.IDs) != 0 || !r.has(out) {
		t.Fatalf("after expiry: %d ids, cut-off kept %v", len(r.IDs), r.has(out))
	}
	r.sweep(200 + maxTokenLifetime)
	if len(r.Before) != 0 {
		t.Fatal("a cut-off older than any token's lifetime was kept")
	}
}
