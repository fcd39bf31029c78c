package localapi

import (
	"net"
	"sync"
	"time"

	"github.com/kioskd/kioskd/models"
)

// loginThrottle slows password guessing without letting anyone lock the
// owner out. Failures are counted per (account, client address) pair and per
// client address; past the free failures of a key, each further attempt from
// it must wait a delay that doubles with every failure (1 s, 2 s, 4 s ... up
// to maxDelay), and an attempt that comes too early is refused before any
// password work. A stranger's failures slow only the stranger's own pairs,
// so the owner logging in from elsewhere is never refused. Loopback clients
// (the kiosk's screen, SSH tunnels) are not pooled into one address: only
// their pairs count. A key is forgotten after `forget` without failures; an
// admin clears an account's keys at once (POST /accounts/{email}/unlock).
type loginThrottle struct {
	freePair, freeAddr int
	maxDelay, forget   time.Duration
	now                func() time.Time

	mu      sync.Mutex
	entries map[throttleKey]*throttleEntry
}

// throttleKey is an (account, address) pair, or an address alone (email "").
type throttleKey struct{ email, addr string }

type throttleEntry struct {
	failures   int
	last, next time.Time // last failure; earliest next attempt
}

// maxThrottleEntries bounds the table: past it, forgotten entries are swept
// and, if it is still full, an arbitrary entry makes room.
const maxThrottleEntries = 100_000

// throttleBaseDelay is the first delay past the free failures.
const throttleBaseDelay = time.Second

func newLoginThrottle(cfg Config, now func() time.Time) *loginThrottle {
	return &loginThrottle{freePair: cfg.LoginMaxFailures, freeAddr: cfg.LoginMaxFailuresPerAddr,
		maxDelay: cfg.LoginMaxDelay, forget: cfg.LoginWindow, now: now, entries: map[throttleKey]*throttleEntry{}}
}

// throttleAddr is the address a client is counted under: an IPv6 client by
// its /64 (one host holds a whole /64), "" for loopback (not counted alone).
func throttleAddr(addr string) string {
	ip := net.ParseIP(addr)
	switch {
	case ip == nil:
		return addr
	case ip.IsLoopback():
		return ""
	case ip.To4() == nil:
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// keys are the throttle's keys for a login of email from addr, pair first.
func (t *loginThrottle) keys(email, addr string) []throttleKey {
	a := throttleAddr(addr)
	if a == "" {
		return []throttleKey{{email, "loopback"}}
	}
	return []throttleKey{{email, a}, {"", a}}
}

// check returns ETHROTTLED when email may not be tried from addr yet.
func (t *loginThrottle) check(email, addr string) error {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range t.keys(email, addr) {
		if e := t.entries[k]; e != nil && now.Before(e.next) {
			secs := int((e.next.Sub(now) + time.Second - 1) / time.Second)
			return models.Errorf(models.ETHROTTLED, "Too many failed logins from here; try again in %d seconds or ask an admin to unlock the account.", secs).
				WithDetail("retry_after_seconds", secs)
		}
	}
	return nil
}

// fail records a failed login of email from addr.
func (t *loginThrottle) fail(email, addr string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range t.keys(email, addr) {
		free := t.freePair
		if k.email == "" {
			free = t.freeAddr
		}
		e := t.entries[k]
		if e == nil {
			if len(t.entries) >= maxThrottleEntries {
				t.makeRoomLocked(now)
			}
			e = &throttleEntry{}
			t.entries[k] = e
		} else if now.Sub(e.last) >= t.forget {
			*e = throttleEntry{}
		}
		e.failures++
		e.last = now
		if n := e.failures - free; n > 0 {
			d := t.maxDelay
			if n <= 30 {
				d = min(d, throttleBaseDelay<<(n-1))
			}
			e.next = now.Add(d)
		}
	}
}

// succeed clears the pair (not the address: one good account must not reset
// the count for guessing others).
func (t *loginThrottle) succeed(email, addr string) {
	t.mu.Lock()
	delete(t.entries, t.keys(email, addr)[0])
	t.mu.Unlock()
}

// unlock clears every pair of email and returns how many there were.
func (t *loginThrottle) unlock(email string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k := range t.entries {
		if k.email == email {
			delete(t.entries, k)
			n++
		}
	}
	return n
}

func (t *loginThrottle) sweep() {
	t.mu.Lock()
	t.sweepLocked(t.now())
	t.mu.Unlock()
}

func (t *loginThrottle) sweepLocked(now time.Time) {
	for k, e := range t.entries {
		if now.Sub(e.last) >= t.forget && !now.Before(e.next) {
			delete(t.entries, k)
		}
	}
}

// makeRoomLocked sweeps and, if nothing was forgotten, drops one entry.
func (t *loginThrottle) makeRoomLocked(now time.Time) {
	t.sweepLocked(now)
	for k := range t.entries {
		if len(t.entries) < maxThrottleEntries {
			return
		}
		delete(t.entries, k)
	}
}
