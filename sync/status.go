package sync

import (
	"encoding/json"
	"time"
)

// StatusMessage is the retained status of a kiosk. The broker publishes the
// Will (state "offline") when the kiosk vanishes without a clean disconnect.
type StatusMessage struct {
	Schema    int           `json:"schema"`
	Type      string        `json:"type"`
	Site      string        `json:"site"`
	Device    string        `json:"device"`
	State     string        `json:"state"` // online, degraded, offline
	Health    *HealthReport `json:"health,omitempty"`
	OutboxLen int           `json:"outbox_len"`
	SiteSeq   uint64        `json:"site_seq"`
	Time      time.Time     `json:"time,omitzero"`
}

// HeartbeatMessage is the periodic QoS 0 liveness message.
type HeartbeatMessage struct {
	Schema    int       `json:"schema"`
	Type      string    `json:"type"`
	Site      string    `json:"site"`
	Device    string    `json:"device"`
	Time      time.Time `json:"time"`
	UptimeSec int64     `json:"uptime_s"`
	OutboxLen int       `json:"outbox_len"`
	Inflight  int       `json:"inflight"`
	SiteSeq   uint64    `json:"site_seq"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sync: marshal " + err.Error()) // only our own wire types get here
	}
	return b
}

func (c *Client) willPayload() []byte {
	return mustJSON(StatusMessage{Schema: SchemaVersion, Type: TypeStatus, Site: c.cfg.SiteID, Device: c.cfg.DeviceID, State: "offline"})
}

func (c *Client) statusPayload(state string) []byte {
	s := c.Status()
	m := StatusMessage{Schema: SchemaVersion, Type: TypeStatus, Site: c.cfg.SiteID, Device: c.cfg.DeviceID,
		State: state, OutboxLen: s.OutboxLen, SiteSeq: s.SiteSeq, Time: c.Now().UTC()}
	if fn := c.health.Load(); fn != nil && *fn != nil {
		h := (*fn)()
		m.Health = &h
	}
	return mustJSON(m)
}

// publishStatus publishes the retained status (online or degraded).
func (c *Client) publishStatus() {
	state := c.Status().State
	c.mu.Lock()
	c.statusState = state
	c.mu.Unlock()
	c.mqtt.Publish(c.topics.Up(UpStatus), 1, true, c.statusPayload(state))
}

// heartbeatLoop publishes heartbeats and republishes the status when the
// health state changes.
func (c *Client) heartbeatLoop() {
	c.every(c.cfg.Heartbeat, func() {
		if ok, _ := c.isConnected(); !ok {
			return
		}
		s := c.Status()
		c.mu.Lock()
		changed := s.State != c.statusState
		c.mu.Unlock()
		if changed {
			c.publishStatus()
		}
		hb := HeartbeatMessage{Schema: SchemaVersion, Type: TypeHeartbeat, Site: c.cfg.SiteID, Device: c.cfg.DeviceID,
			Time: c.Now().UTC(), UptimeSec: int64(c.Now().Sub(c.started) / time.Second), OutboxLen: s.OutboxLen,
			Inflight: s.Inflight, SiteSeq: s.SiteSeq}
		c.mqtt.Publish(c.topics.Up(UpHeartbeat), 0, false, mustJSON(hb))
	})
}

// every runs fn every d until the client stops.
func (c *Client) every(d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}
