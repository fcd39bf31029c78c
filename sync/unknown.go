package sync

import (
	"log/slog"
	"time"
)

// SetUnknownCounter installs the camera's running count of unknown faces
// (device.CameraStatus.Unknown). Every UnknownInterval, and on Close, the
// client queues the increase since the last report as an unknown message.
// Safe to call at any time.
func (c *Client) SetUnknownCounter(fn func() uint64) { c.unknown.Store(&fn) }

// unknownLoop reports the unknown-face count per interval. The count is
// read from the camera's own counter, never from a lossy event stream, so
// every unknown face seen before Close is reported once.
func (c *Client) unknownLoop() {
	t := time.NewTicker(c.cfg.UnknownInterval)
	defer t.Stop()
	var last uint64
	from := c.Now()
	report := func() {
		fn := c.unknown.Load()
		if fn == nil || *fn == nil {
			return
		}
		n, now := (*fn)(), c.Now()
		if n < last { // a new counter (the camera was restarted)
			last = 0
		}
		if n == last {
			from = now
			return
		}
		err := EnqueueUnknownFaces(c.opCtx, c.store, UnknownFaces{From: from, To: now, Count: int(n - last)})
		if err != nil {
			c.setErr(err)
			c.rl.Log(slog.LevelError, "unknown", "queue unknown-face count failed; retrying next interval", "err", err)
			return
		}
		last, from = n, now
		c.Notify()
	}
	for {
		select {
		case <-c.ctx.Done():
			report()
			return
		case <-t.C:
			report()
		}
	}
}
