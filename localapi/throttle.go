package localapi

import (
	"sync"
	"time"

	"github.com/kioskd/kioskd/models"
)

// loginThrottle counts failed logins per account and per client address.
// maxFailures failures within window lock the key for lockout; a lock is
// checked before any password work, so a locked key costs nothing.
type loginThrottle struct {
	window, lockout     time.Duration
	perAccount, perAddr int
	now                 func() time.Time

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures    []time.Time // within window, oldest first
	lockedUntil time.Time
}

// maxThrottleEntries bounds the table; past it, the oldest unlocked entries
// are dropped first by sweep, and new keys are still counted.
const maxThrottleEntries = 100_000

func newLoginThrottle(cfg Config, now func() time.Time) *loginThrottle {
	return &loginThrottle{window: cfg.LoginWindow, lockout: cfg.LoginLockout,
		perAccount: cfg.LoginMaxFailures, perAddr: cfg.LoginMaxFailuresPerAddr, now: now,
		entries: map[string]*throttleEntry{}}
}

func accountKey(email string) string { return "account:" + email }
func addrKey(addr string) string     { return "addr:" + addr }

// check returns ETHROTTLED when the account or the address is locked.
func (t *loginThrottle) check(email, addr string) error {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range []string{accountKey(email), addrKey(addr)} {
		if e := t.entries[k]; e != nil && now.Before(e.lockedUntil) {
			secs := int(e.lockedUntil.Sub(now).Seconds()) + 1
			return models.Errorf(models.ETHROTTLED, "Too many failed logins; try again in %d minutes or ask an admin.", (secs+59)/60).
				WithDetail("retry_after_seconds", secs)
		}
	}
	return nil
}

// fail records a failed login for both keys.
func (t *loginThrottle) fail(email, addr string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(accountKey(email), t.perAccount, now)
	t.record(addrKey(addr), t.perAddr, now)
}

func (t *loginThrottle) record(k string, limit int, now time.Time) {
	e := t.entries[k]
	if e == nil {
		if len(t.entries) >= maxThrottleEntries {
			t.sweepLocked(now)
		}
		e = &throttleEntry{}
		t.entries[k] = e
	}
	cut := 0
	for cut < len(e.failures) && now.Sub(e.failures[cut]) >= t.window {
		cut++
	}
	e.failures = append(e.failures[cut:], now)
	if len(e.failures) >= limit {
		e.lockedUntil = now.Add(t.lockout)
		e.failures = e.failures[:0]
	}
}

// succeed clears the account's failures (not the address's: one good
// account must not reset the count for guessing others).
func (t *loginThrottle) succeed(email string) {
	t.mu.Lock()
	delete(t.entries, accountKey(email))
	t.mu.Unlock()
}

func (t *loginThrottle) sweep() {
	t.mu.Lock()
	t.sweepLocked(t.now())
	t.mu.Unlock()
}

func (t *loginThrottle) sweepLocked(now time.Time) {
	for k, e := range t.entries {
		if now.After(e.lockedUntil) && (len(e.failures) == 0 || now.Sub(e.failures[len(e.failures)-1]) >= t.window) {
			delete(t.entries, k)
		}
	}
}
