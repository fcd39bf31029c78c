package sync

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/kioskd/kioskd/internal/backoff"
	"github.com/kioskd/kioskd/models"
)

// flight is an outbox message published and waiting for central's ack.
type flight struct {
	msg      *models.OutboxMessage
	payload  []byte
	attempts int
	due      time.Time // when to resend without an ack
}

// publishLoop publishes the outbox in Seq order, at most Inflight messages
// awaiting central's ack at once, and resends unacked ones with capped,
// jittered backoff. After every (re)connect it starts over from the oldest
// pending message: central dedups by key, and per-device order is kept.
func (c *Client) publishLoop() {
	poll := time.NewTicker(c.cfg.OutboxPoll)
	defer poll.Stop()
	var gen, cursor uint64
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.pubWake:
		case <-poll.C:
		}
		connected, g := c.isConnected()
		if !connected {
			continue
		}
		if g != gen {
			gen, cursor = g, 0
			c.mu.Lock()
			clear(c.inflight)
			c.mu.Unlock()
			// Spread a fleet's replay after a broker restart.
			if !sleepCtx(c.ctx, rand.N(c.cfg.MinBackoff+1)) {
				return
			}
		}
		for c.ctx.Err() == nil {
			n, next, err := c.publishRound(cursor)
			if err != nil {
				c.setErr(err)
				c.rl.Log(slog.LevelError, "outbox", "outbox read failed", "err", err)
				break
			}
			cursor = next
			if n == 0 {
				break
			}
		}
	}
}

// publishRound resends due messages and fills the window from cursor; it
// returns how many new messages it published and the new cursor.
func (c *Client) publishRound(cursor uint64) (int, uint64, error) {
	now := c.Now()
	c.mu.Lock()
	var due []*flight
	for _, f := range c.inflight {
		if !now.Before(f.due) {
			due = append(due, f)
		}
	}
	room := c.cfg.Inflight - len(c.inflight)
	c.mu.Unlock()
	sortFlights(due)
	for _, f := range due {
		if ok, _ := c.isConnected(); !ok {
			return 0, cursor, nil
		}
		f.attempts++
		c.publishFlight(f, now, true)
	}
	if room <= 0 {
		return 0, cursor, nil
	}
	msgs, err := c.store.PendingOutbox(c.opCtx, cursor, room)
	if err != nil {
		return 0, cursor, err
	}
	c.mu.Lock()
	since := c.connectedSince
	c.mu.Unlock()
	for _, m := range msgs {
		cursor = m.Seq
		if ok, _ := c.isConnected(); !ok {
			return 0, cursor, nil
		}
		hist := m.CreatedAt.Before(since) || now.Sub(m.CreatedAt) > c.cfg.HistoricalAfter
		payload, err := c.uplinkPayload(m, hist)
		if err != nil {
			// Kept in the outbox (nothing is lost) but not sent: central
			// could not read it either. The log and counter say so.
			c.mu.Lock()
			c.counters.Unrenderable++
			c.mu.Unlock()
			c.rl.Log(slog.LevelError, "render", "outbox message not sent: unreadable record", "key", m.Key, "kind", m.Kind, "err", err)
			continue
		}
		f := &flight{msg: m, payload: payload}
		c.mu.Lock()
		c.inflight[m.Key] = f
		c.mu.Unlock()
		c.publishFlight(f, now, false)
	}
	return len(msgs), cursor, nil
}

func (c *Client) publishFlight(f *flight, now time.Time, resend bool) {
	f.due = now.Add(backoff.Delay(c.cfg.AckTimeout, max(c.cfg.MaxBackoff, c.cfg.AckTimeout), f.attempts))
	c.mqtt.Publish(c.topics.Up(f.msg.Kind), 1, false, f.payload) // QoS 1, never retained
	c.mu.Lock()
	c.counters.Published++
	if resend {
		c.counters.Resent++
	}
	c.mu.Unlock()
}

func sortFlights(fs []*flight) {
	for i := 1; i < len(fs); i++ { // few due at once: insertion sort keeps Seq order
		for j := i; j > 0 && fs[j].msg.Seq < fs[j-1].msg.Seq; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// uplinkPayload renders an outbox message and wraps it in its uplink
// envelope.
func (c *Client) uplinkPayload(m *models.OutboxMessage, historical bool) ([]byte, error) {
	p, err := RenderUplink(m)
	if err != nil {
		return nil, err
	}
	return mustJSON(UplinkMessage{Schema: SchemaVersion, Type: m.Kind, Site: c.cfg.SiteID, Device: c.cfg.DeviceID,
		Key: m.Key, Seq: m.Seq, CreatedAt: m.CreatedAt.UTC(), Historical: historical, Payload: p}), nil
}

// ackLoop applies central's acks: the keys of every queued ack message are
// removed from the outbox in one transaction, then the messages are acked
// to the broker.
func (c *Client) ackLoop() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			for c.acks.len() > 0 && c.opCtx.Err() == nil {
				if !c.processAcks() {
					return
				}
			}
			return
		case <-c.acks.notify:
		case <-tick.C:
		}
		for c.acks.len() > 0 && c.ctx.Err() == nil {
			if !c.processAcks() {
				break
			}
		}
	}
}

func (c *Client) processAcks() bool {
	msgs := c.acks.pop(256)
	var keys []string
	for _, m := range msgs {
		_, err := c.contract.CheckDown(m.Topic(), m.Payload(), c.cfg.MaxPayload)
		var a *AckMessage
		if err == nil {
			a, err = DecodeAck(m.Payload(), c.cfg.MaxPayload)
		}
		if err == nil && a.Device != c.cfg.DeviceID {
			err = models.Errorf(models.EINVALID, "ack: for device %q", a.Device)
		}
		if err != nil {
			c.rejectDecode(err, m.Topic())
			continue
		}
		keys = append(keys, a.Keys...)
	}
	if len(keys) > 0 {
		b := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
		for {
			n, err := c.store.AckOutbox(c.opCtx, keys)
			if err == nil {
				c.mu.Lock()
				c.counters.Acked += int64(n)
				for _, k := range keys {
					delete(c.inflight, k)
				}
				c.mu.Unlock()
				break
			}
			c.setErr(err)
			c.rl.Log(slog.LevelError, "ack", "outbox ack failed; retrying", "err", err)
			if !sleepCtx(c.opCtx, b.Next()) {
				return false // unacked: the broker redelivers
			}
		}
	}
	for _, m := range msgs {
		m.Ack()
	}
	c.Notify()
	return true
}
