// Package ratelog is kioskd's one rate-limited logger: a failure that
// repeats every frame or every message must not flood the disk.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the keys remembered, against unbounded key sets.
const maxKeys = 1024

// Logger logs at most one record per key and interval, with the number of
// records suppressed since the last one. It is safe for concurrent use.
type Logger struct {
	logger   *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	last map[string]time.Time
	supp map[string]int
}

// New returns a Logger writing to logger; now is the clock (time.Now when nil).
func New(logger *slog.Logger, interval time.Duration, now func() time.Time) *Logger {
	if now == nil {
		now = time.Now
	}
	return &Logger{logger: logger, interval: interval, now: now, last: map[string]time.Time{}, supp: map[string]int{}}
}

// Log writes msg at level unless key was logged within the interval.
func (r *Logger) Log(level slog.Level, key, msg string, args ...any) {
	now := r.now()
	r.mu.Lock()
	if t, ok := r.last[key]; ok && now.Sub(t) < r.interval {
		r.supp[key]++
		r.mu.Unlock()
		return
	}
	n := r.supp[key]
	r.last[key] = now
	delete(r.supp, key)
	if len(r.last) > maxKeys {
		clear(r.last)
	}
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	r.logger.Log(context.Background(), level, msg, args...)
}

// Warn is Log at warning level.
func (r *Logger) Warn(key, msg string, args ...any) { r.Log(slog.LevelWarn, key, msg, args...) }
