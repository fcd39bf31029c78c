// Package backoff is kioskd's one retry delay: capped exponential backoff
// with full jitter, for the camera's reopen and sync's reconnects and
// resends.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with full jitter: the n-th delay
// is uniform in [d/2, d] with d = min(Max, Min*2^n). The jitter spreads a
// fleet's retries (kiosks sharing a broker or a stream server) apart.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Next returns the next delay and advances.
func (b *Backoff) Next() time.Duration {
	d := Delay(b.Min, b.Max, b.n)
	if b.n < 62 {
		b.n++
	}
	return d
}

// Reset starts over from Min.
func (b *Backoff) Reset() { b.n = 0 }

// Delay returns the jittered delay of attempt n (0 for the first).
func Delay(min, max time.Duration, n int) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}
