package sync

import (
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential backoff with full jitter: the n-th delay
// is uniform in [d/2, d] with d = min(max, min*2^n). The jitter spreads a
// fleet's reconnects after a broker restart.
type backoff struct {
	min, max time.Duration
	n        int
}

// next returns the next delay and advances.
func (b *backoff) next() time.Duration {
	d := backoffDelay(b.min, b.max, b.n)
	if b.n < 62 {
		b.n++
	}
	return d
}

// reset starts over from min.
func (b *backoff) reset() { b.n = 0 }

// backoffDelay returns the jittered delay of attempt n.
func backoffDelay(min, max time.Duration, n int) time.Duration {
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
