package localapi

import (
	"context"
	"sync"
	"time"

	"github.com/kioskd/kioskd/models"
)

// accountCacheTTL is how long an authenticated request may reuse the
// account another request just read. Every request re-reads the account so
// that deleting or disabling it (locally or from central) ends its
// sessions; a second of delay keeps that promise while sparing the store a
// read transaction per request (docs/benchmarks.md, "Local API"). Writes through
// the API clear the cache, so a local change applies at once.
const accountCacheTTL = time.Second

// maxCachedAccounts bounds accountCache; past it, it starts over.
const maxCachedAccounts = 1024

// accountCache holds recently read local accounts by email.
type accountCache struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cachedAccount
}

type cachedAccount struct {
	acc     *models.LocalAccount
	expires time.Time
}

func newAccountCache(now func() time.Time) *accountCache {
	return &accountCache{now: now, entries: map[string]cachedAccount{}}
}

// get returns email's account from the cache or from load. Only found
// accounts are cached: a refusal always consults the store. Errors: load's.
func (c *accountCache) get(ctx context.Context, email string, load func(context.Context, string) (*models.LocalAccount, error)) (*models.LocalAccount, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[email]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.acc, nil
	}
	a, err := load(ctx, email)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.entries) >= maxCachedAccounts {
		clear(c.entries)
	}
	c.entries[email] = cachedAccount{acc: a, expires: now.Add(accountCacheTTL)}
	c.mu.Unlock()
	return a, nil
}

// clear forgets every account (after a write through the API).
func (c *accountCache) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
