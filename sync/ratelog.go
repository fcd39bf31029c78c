package sync

import (
	"context"
	"log/slog"
	gosync "sync"
	"time"
)

// rateLog logs at most one record per key and interval, with the number of
// records suppressed since the last one: a flood of forged messages must not
// flood the disk.
type rateLog struct {
	logger   *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu   gosync.Mutex
	last map[string]time.Time
	supp map[string]int
}

func newRateLog(logger *slog.Logger, interval time.Duration, now func() time.Time) *rateLog {
	return &rateLog{logger: logger, interval: interval, now: now, last: map[string]time.Time{}, supp: map[string]int{}}
}

// log writes msg at level unless key was logged within the interval.
func (r *rateLog) log(level slog.Level, key, msg string, args ...any) {
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
	if len(r.last) > 1024 { // bound memory against unbounded keys
		clear(r.last)
	}
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	r.logger.Log(context.Background(), level, msg, args...)
}
