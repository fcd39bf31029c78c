package sync

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kioskd/kioskd/models"
)

// Config configures a Client. Zero durations and sizes are not defaults:
// start from DefaultConfig and override.
type Config struct {
	// Broker is the broker URL: tcp://host:1883, ssl://host:8883 (or
	// tls://, mqtts://), ws://host/mqtt or wss://host/mqtt.
	Broker string
	// DeviceID names this kiosk in topics; it must match the broker
	// identity the ACL checks (username or certificate CN, see docs/mqtt.md).
	DeviceID string
	// ClientID is the MQTT client id, stable across restarts so the broker
	// keeps the session; empty means DeviceID.
	ClientID string
	// SiteID names the site whose registry updates this kiosk follows.
	SiteID string
	// Room is where the kiosk stands: sessions of central's timetable in
	// other rooms are not its own. Empty takes every room.
	Room string
	// TopicPrefix is the first topic level of every topic (default "kiosk").
	TopicPrefix string

	Username string
	Password string
	// CAFile pins the broker's CA; CertFile and KeyFile are the client
	// certificate for brokers that require one.
	CAFile   string
	CertFile string
	KeyFile  string

	// RegistryPublicKey is central's Ed25519 public key (base64 of 32
	// bytes). Signed messages (commands, accounts, configuration) are
	// refused when it is empty.
	RegistryPublicKey string

	// MaxPayload refuses larger downlink messages before parsing them.
	MaxPayload int
	// Inflight bounds how many outbox messages may wait for central's ack.
	Inflight int
	// QueueSize bounds downlink messages handed from paho's callback to the
	// apply worker; keep it above the broker's inflight window.
	QueueSize int
	// Heartbeat is the period of heartbeat (and status refresh) messages.
	Heartbeat time.Duration
	// KeepAlive is the MQTT keepalive.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration
	// AckTimeout is how long a published outbox message waits for central's
	// ack before it is sent again (doubling per attempt up to MaxBackoff).
	AckTimeout time.Duration
	// MinBackoff and MaxBackoff bound reconnect and resend backoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// SnapshotTimeout is how long to wait for a requested snapshot before
	// asking again.
	SnapshotTimeout time.Duration
	// GapGrace is how long a sequence gap may stay open (messages arrive
	// out of order across a reconnect) before a snapshot is requested.
	GapGrace time.Duration
	// MaxClockSkew is how far in the future a signed message's issue time
	// may be.
	MaxClockSkew time.Duration
	// MaxSnapshotUsers bounds the users one snapshot may carry (memory).
	MaxSnapshotUsers int
	// HistoricalAfter marks outbox messages older than this at first
	// publication as historical (buffered while offline).
	HistoricalAfter time.Duration
	// OutboxPoll is how often the outbox is checked for new messages when
	// nobody calls Client.Notify.
	OutboxPoll time.Duration
	// CloseTimeout bounds the flush of in-flight work on Close.
	CloseTimeout time.Duration
	// UnknownInterval is how often the count of unknown faces seen since
	// the last report is queued for central (when it is not zero).
	UnknownInterval time.Duration
	// SummaryPoll is how often ended sessions of central's timetable are
	// looked for, to summarise and send them.
	SummaryPoll time.Duration
}

// DefaultConfig returns the defaults: topic prefix "kiosk", 1 MiB payloads,
// 256 messages in flight, a 30 s heartbeat and keepalive.
func DefaultConfig() Config {
	return Config{
		TopicPrefix:      "kiosk",
		MaxPayload:       1 << 20,
		Inflight:         256,
		QueueSize:        1024,
		Heartbeat:        30 * time.Second,
		KeepAlive:        30 * time.Second,
		ConnectTimeout:   10 * time.Second,
		AckTimeout:       30 * time.Second,
		MinBackoff:       500 * time.Millisecond,
		MaxBackoff:       60 * time.Second,
		SnapshotTimeout:  60 * time.Second,
		GapGrace:         5 * time.Second,
		MaxClockSkew:     5 * time.Minute,
		MaxSnapshotUsers: 200000,
		HistoricalAfter:  time.Minute,
		OutboxPoll:       500 * time.Millisecond,
		CloseTimeout:     5 * time.Second,
		UnknownInterval:  5 * time.Minute,
		SummaryPoll:      time.Minute,
	}
}

// ClientIDOrDevice returns ClientID, or DeviceID when ClientID is empty.
func (c Config) ClientIDOrDevice() string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return c.DeviceID
}

// Topics returns the topic layout for this configuration.
func (c Config) Topics() Topics {
	return Topics{Prefix: c.TopicPrefix, Site: c.SiteID, Device: c.DeviceID}
}

// PublicKey decodes RegistryPublicKey; nil when it is empty.
func (c Config) PublicKey() (ed25519.PublicKey, error) {
	if c.RegistryPublicKey == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.RegistryPublicKey))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, invalidField("registry_public_key", "not the base64 of a 32-byte Ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}

// Validate returns an EINVALID error naming the first bad field, or nil.
func (c Config) Validate() error {
	u, err := url.Parse(c.Broker)
	switch {
	case c.Broker == "":
		return invalidField("broker", "required, e.g. tcp://localhost:1883")
	case err != nil || u.Host == "":
		return invalidField("broker", fmt.Sprintf("%q is not a broker URL such as tcp://localhost:1883", c.Broker))
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return invalidField("broker", fmt.Sprintf("scheme %q is not one of tcp, ssl, tls, mqtts, ws, wss", u.Scheme))
	}
	if err := validTopicLevel(c.DeviceID); err != nil {
		return invalidField("device_id", err.Error())
	}
	if err := validTopicLevel(c.SiteID); err != nil {
		return invalidField("site_id", err.Error())
	}
	if err := validTopicLevel(c.TopicPrefix); err != nil {
		return invalidField("topic_prefix", err.Error())
	}
	if len(c.ClientIDOrDevice()) > 64 {
		return invalidField("client_id", "longer than 64 characters")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return invalidField("cert_file", "cert_file and key_file go together")
	}
	if _, err := c.PublicKey(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{
		{"max_payload", c.MaxPayload, 1024},
		{"inflight", c.Inflight, 1},
		{"queue_size", c.QueueSize, 16},
		{"max_snapshot_users", c.MaxSnapshotUsers, 1},
	} {
		if f.v < f.min {
			return invalidField(f.name, fmt.Sprintf("must be at least %d", f.min))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"heartbeat", c.Heartbeat}, {"keep_alive", c.KeepAlive}, {"connect_timeout", c.ConnectTimeout},
		{"ack_timeout", c.AckTimeout}, {"min_backoff", c.MinBackoff}, {"max_backoff", c.MaxBackoff},
		{"snapshot_timeout", c.SnapshotTimeout}, {"gap_grace", c.GapGrace}, {"max_clock_skew", c.MaxClockSkew},
		{"historical_after", c.HistoricalAfter}, {"outbox_poll", c.OutboxPoll}, {"close_timeout", c.CloseTimeout},
		{"unknown_interval", c.UnknownInterval}, {"summary_poll", c.SummaryPoll},
	} {
		if f.v <= 0 {
			return invalidField(f.name, "must be a positive duration")
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		return invalidField("max_backoff", "smaller than min_backoff")
	}
	return nil
}

func invalidField(field, msg string) error {
	return models.Errorf(models.EINVALID, "sync.%s: %s", field, msg).WithDetail("field", "sync."+field)
}
