package sync

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/kioskd/kioskd/internal/backoff"
	"github.com/kioskd/kioskd/internal/ratelog"
	"github.com/kioskd/kioskd/models"
)

// Client is the kiosk's side of the registry link. Create it with NewClient
// (no I/O), start it with Open and stop it with Close. It works offline:
// Open succeeds without a broker and connects in the background.
type Client struct {
	// Now returns the current time; tests replace it. Set before Open.
	Now func() time.Time
	// OnCommand runs signed commands the client does not handle itself
	// (see docs/mqtt.md); nil refuses them. It runs on the downlink worker:
	// return quickly. Set before Open.
	OnCommand func(ctx context.Context, cmd Command) error
	// PasswordHashSupported says whether a password hash central pushes is
	// in a format the device can verify (password.PasswordHashSupported);
	// nil refuses every pushed account. Set before Open.
	PasswordHashSupported func(hash string) bool

	cfg      Config
	store    models.Store
	gallery  models.Enroller
	logger   *slog.Logger
	topics   Topics
	pubKey   ed25519.PublicKey
	rl       *ratelog.Logger
	contract *Contract

	mqtt    mqtt.Client
	ctx     context.Context // cancelled by Close: loops stop
	cancel  context.CancelFunc
	opCtx   context.Context // store operations; outlives ctx by CloseTimeout
	opStop  context.CancelFunc
	wg      gosync.WaitGroup
	closing atomic.Bool
	lost    chan error

	down *msgQueue // registry, snapshot and signed messages
	acks *msgQueue // central's acks

	pubWake   chan struct{} // wakes the outbox publisher
	health    atomic.Pointer[func() HealthReport]
	unknown   atomic.Pointer[func() uint64]
	timetable atomic.Pointer[Timetable]
	beat      atomic.Int64 // unix nanoseconds of the downlink worker's last round

	mu             gosync.Mutex
	connected      bool
	connectedSince time.Time
	connGen        uint64
	lastErr        string
	lastErrAt      time.Time
	started        time.Time
	siteSeq        uint64
	headSeq        uint64
	lastSnapshot   time.Time
	snapshotWanted bool
	statusState    string
	counters       Counters
	rejected       map[string]int64
	inflight       map[string]*flight
	overflow       bool // a downlink message was left to the broker
	ds             *downState
}

// Counters are running totals since Open.
type Counters struct {
	UsersApplied    int64 `json:"users_applied"` // records that changed the store
	UsersIgnored    int64 `json:"users_ignored"` // records not newer than the store
	Snapshots       int64 `json:"snapshots"`     // snapshots applied
	Published       int64 `json:"published"`     // outbox publications, resends included
	Resent          int64 `json:"resent"`        // outbox resends
	Acked           int64 `json:"acked"`         // outbox messages central acknowledged
	Unrenderable    int64 `json:"unrenderable"`  // outbox records kept but not sent: unreadable
	Commands        int64 `json:"commands"`      // signed messages accepted
	Connects        int64 `json:"connects"`      // successful connections
	ConnectionsLost int64 `json:"connections_lost"`
}

// Status is a snapshot of the client's state for the local API and logs.
type Status struct {
	Connected       bool             `json:"connected"`
	State           string           `json:"state"` // online, degraded, offline
	Broker          string           `json:"broker"`
	LastError       string           `json:"last_error,omitempty"`
	LastErrorAt     time.Time        `json:"last_error_at,omitzero"`
	OutboxLen       int              `json:"outbox_len"`
	Inflight        int              `json:"inflight"`
	SiteSeq         uint64           `json:"site_seq"`
	HeadSeq         uint64           `json:"head_seq"`
	LastSnapshot    time.Time        `json:"last_snapshot,omitzero"`
	SnapshotPending bool             `json:"snapshot_pending"`
	Rejected        map[string]int64 `json:"rejected"` // by reason
	Counters        Counters         `json:"counters"`
}

// HealthReport is the state of the kiosk's other parts, carried by the
// status message: "" or "ok" means healthy, anything else says what is wrong.
type HealthReport struct {
	Camera string `json:"camera"`
	Model  string `json:"model"`
	DB     string `json:"db"`
}

// Healthy reports whether every part is fine.
func (h HealthReport) Healthy() bool {
	ok := func(s string) bool { return s == "" || s == "ok" }
	return ok(h.Camera) && ok(h.Model) && ok(h.DB)
}

// Meta keys (per site) in the store's MetaStore.
func (c *Client) metaKey(name string) string { return "sync/" + c.cfg.SiteID + "/" + name }

// NewClient returns a client; it does no I/O. Central's user records go
// through gallery, which writes them and keeps the matcher in step.
func NewClient(cfg Config, store models.Store, gallery models.Enroller, logger *slog.Logger) *Client {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		Now:      time.Now,
		cfg:      cfg,
		store:    store,
		gallery:  gallery,
		logger:   logger,
		topics:   cfg.Topics(),
		down:     newMsgQueue(max(cfg.QueueSize, 16)),
		acks:     newMsgQueue(max(cfg.QueueSize, 16)),
		pubWake:  make(chan struct{}, 1),
		lost:     make(chan error, 1),
		rejected: map[string]int64{},
		inflight: map[string]*flight{},
	}
	return c
}

// SetHealth installs the function the status message asks for the state of
// the camera, model and database. Safe to call at any time.
func (c *Client) SetHealth(fn func() HealthReport) { c.health.Store(&fn) }

// Notify wakes the outbox publisher; call it after enqueueing (recording
// attendance) so the message leaves without waiting for the next poll.
func (c *Client) Notify() {
	select {
	case c.pubWake <- struct{}{}:
	default:
	}
}

// Open validates the configuration, loads the sync state from the store and
// starts connecting in the background. It fails only on bad configuration
// or an unreadable store, never because the broker is unreachable.
func (c *Client) Open(ctx context.Context) error {
	if err := c.cfg.Validate(); err != nil {
		return err
	}
	key, err := c.cfg.PublicKey()
	if err != nil {
		return err
	}
	c.pubKey = key
	if c.contract, err = LoadContract(); err != nil {
		return err
	}
	c.rl = ratelog.New(c.logger, 10*time.Second, c.Now)
	opts, err := c.mqttOptions()
	if err != nil {
		return err
	}
	if err := c.loadState(ctx); err != nil {
		return err
	}
	if err := c.loadTimetable(ctx); err != nil {
		return err
	}
	c.started = c.Now()
	c.mqtt = mqtt.NewClient(opts)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.opCtx, c.opStop = context.WithCancel(context.Background())
	c.wg.Add(7)
	go func() { defer c.wg.Done(); c.connLoop() }()
	go func() { defer c.wg.Done(); c.downLoop() }()
	go func() { defer c.wg.Done(); c.ackLoop() }()
	go func() { defer c.wg.Done(); c.publishLoop() }()
	go func() { defer c.wg.Done(); c.heartbeatLoop() }()
	go func() { defer c.wg.Done(); c.unknownLoop() }()
	go func() { defer c.wg.Done(); c.summaryLoop() }()
	return nil
}

// Close stops the client: queued downlink messages are applied (and acked)
// within CloseTimeout, the retained status is set offline and the
// connection closed. Unacked outbox messages stay in the store.
func (c *Client) Close() error {
	if c.cancel == nil || c.closing.Swap(true) {
		return nil
	}
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.cfg.CloseTimeout):
		c.opStop() // abandon the drain; unacked messages stay with the broker
		select {
		case <-done:
		case <-time.After(time.Second):
			c.logger.Warn("close: workers did not stop in time")
		}
	}
	c.opStop()
	if c.mqtt.IsConnectionOpen() {
		t := c.mqtt.Publish(c.topics.Up(UpStatus), 1, true, c.statusPayload("offline"))
		t.WaitTimeout(time.Second)
	}
	c.mqtt.Disconnect(250)
	c.setConnected(false)
	return nil
}

// LastLoop returns when the downlink worker last went round (zero before
// Open): it goes round at least every 250 ms, so the daemon's watchdog can
// tell a stuck client.
func (c *Client) LastLoop() time.Time {
	if n := c.beat.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Status returns the client's current state.
func (c *Client) Status() Status {
	n, err := c.store.OutboxLen(context.Background())
	if err != nil {
		n = -1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{
		Connected: c.connected, Broker: c.cfg.Broker, LastError: c.lastErr, LastErrorAt: c.lastErrAt,
		OutboxLen: n, Inflight: len(c.inflight), SiteSeq: c.siteSeq, HeadSeq: c.headSeq,
		LastSnapshot: c.lastSnapshot, SnapshotPending: c.snapshotWanted, Counters: c.counters,
		Rejected: make(map[string]int64, len(c.rejected)),
	}
	for k, v := range c.rejected {
		s.Rejected[k] = v
	}
	s.State = "offline"
	if c.connected {
		s.State = c.healthState()
	}
	return s
}

func (c *Client) healthState() string {
	if fn := c.health.Load(); fn != nil && *fn != nil && !(*fn)().Healthy() {
		return "degraded"
	}
	return "online"
}

func (c *Client) setErr(err error) {
	c.mu.Lock()
	c.lastErr, c.lastErrAt = err.Error(), c.Now()
	c.mu.Unlock()
}

func (c *Client) reject(reason, msg string, args ...any) {
	c.mu.Lock()
	c.rejected[reason]++
	c.mu.Unlock()
	c.rl.Log(slog.LevelWarn, "reject:"+reason, msg, append(args, "reason", reason)...)
}

func (c *Client) isConnected() (bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected, c.connGen
}

func (c *Client) setConnected(v bool) {
	c.mu.Lock()
	c.connected = v
	if v {
		c.connGen++
		c.connectedSince = c.Now()
		c.counters.Connects++
	}
	c.mu.Unlock()
}

func (c *Client) mqttOptions() (*mqtt.ClientOptions, error) {
	o := mqtt.NewClientOptions()
	o.AddBroker(c.cfg.Broker)
	o.SetClientID(c.cfg.ClientIDOrDevice())
	o.SetUsername(c.cfg.Username)
	o.SetPassword(c.cfg.Password)
	o.SetCleanSession(false) // the broker queues downlink while we are away
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false) // connLoop reconnects with jittered backoff
	o.SetResumeSubs(false)   // connLoop resubscribes on every connect
	o.SetOrderMatters(true)  // handle never blocks, so ordered delivery is cheap
	o.SetAutoAckDisabled(true)
	o.SetKeepAlive(c.cfg.KeepAlive)
	o.SetPingTimeout(min(c.cfg.KeepAlive, 10*time.Second))
	o.SetConnectTimeout(c.cfg.ConnectTimeout)
	o.SetWriteTimeout(c.cfg.ConnectTimeout)
	o.SetBinaryWill(c.topics.Up(UpStatus), c.willPayload(), 1, true)
	o.SetDefaultPublishHandler(c.handle) // queued session messages may beat Subscribe
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		select {
		case c.lost <- err:
		default:
		}
	})
	if tc, err := c.tlsConfig(); err != nil {
		return nil, err
	} else if tc != nil {
		o.SetTLSConfig(tc)
	}
	return o, nil
}

func (c *Client) tlsConfig() (*tls.Config, error) { return TLSConfig(c.cfg) }

// TLSConfig returns the TLS configuration for cfg's broker: nil for plain
// tcp:// or ws:// without certificates, otherwise TLS 1.2+ with CAFile as
// the only trusted roots (system roots when empty) and the client
// certificate.
func TLSConfig(cfg Config) (*tls.Config, error) {
	c := struct{ cfg Config }{cfg}
	scheme, _, _ := strings.Cut(c.cfg.Broker, "://")
	secure := scheme == "ssl" || scheme == "tls" || scheme == "mqtts" || scheme == "wss"
	if !secure && c.cfg.CAFile == "" && c.cfg.CertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cfg.CAFile != "" {
		pem, err := os.ReadFile(c.cfg.CAFile)
		if err != nil {
			return nil, invalidField("ca_file", err.Error())
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, invalidField("ca_file", "no PEM certificate in "+c.cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.cfg.CertFile, c.cfg.KeyFile)
		if err != nil {
			return nil, invalidField("cert_file", err.Error())
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// connLoop connects, subscribes, announces the status, then waits for the
// connection to drop and starts over with capped, jittered backoff.
func (c *Client) connLoop() {
	b := backoff.Backoff{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff}
	for c.ctx.Err() == nil {
		if err := c.connectOnce(); err != nil {
			c.setErr(err)
			c.rl.Log(slog.LevelWarn, "connect", "broker connect failed", "broker", c.cfg.Broker, "err", err)
			if !sleepCtx(c.ctx, b.Next()) {
				return
			}
			continue
		}
		b.Reset()
		c.logger.Info("connected", "broker", c.cfg.Broker, "client_id", c.cfg.ClientIDOrDevice())
		c.Notify()
		select {
		case <-c.ctx.Done():
			return
		case err := <-c.lost:
			c.setConnected(false)
			c.mu.Lock()
			c.counters.ConnectionsLost++
			c.mu.Unlock()
			if err == nil {
				err = errors.New("connection lost")
			}
			c.setErr(fmt.Errorf("connection lost: %w", err))
			c.logger.Warn("connection lost", "err", err)
			if !sleepCtx(c.ctx, backoff.Delay(c.cfg.MinBackoff, c.cfg.MaxBackoff, 0)) {
				return
			}
		}
	}
}

func (c *Client) connectOnce() error {
	select { // drop a stale loss notice from a previous connection
	case <-c.lost:
	default:
	}
	t := c.mqtt.Connect()
	if !waitToken(c.ctx, t, c.cfg.ConnectTimeout+time.Second) {
		c.mqtt.Disconnect(0)
		return errors.New("connect: timed out")
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	subs := map[string]byte{c.topics.Users(): 1, c.topics.Head(): 1, c.topics.DownFilter(): 1}
	st := c.mqtt.SubscribeMultiple(subs, c.handle)
	if !waitToken(c.ctx, st, c.cfg.ConnectTimeout) || st.Error() != nil {
		c.mqtt.Disconnect(0)
		return fmt.Errorf("subscribe: %v", st.Error())
	}
	if sst, ok := st.(*mqtt.SubscribeToken); ok {
		for topic, code := range sst.Result() {
			if code == 0x80 {
				c.mqtt.Disconnect(0)
				return fmt.Errorf("subscribe %s: refused by the broker (ACL?)", topic)
			}
		}
	}
	c.setConnected(true)
	c.publishStatus()
	return nil
}

// handle runs in paho's router goroutine: it only classifies and queues.
// When a queue is full the message is left unacknowledged: the broker keeps
// it and redelivers it after the reconnect the worker forces once it has
// drained its queue, so nothing is lost and paho never blocks.
func (c *Client) handle(_ mqtt.Client, m mqtt.Message) {
	if c.closing.Load() {
		return // unacked: the broker redelivers it to the next session
	}
	q := c.down
	if strings.HasSuffix(m.Topic(), "/"+dirDown+"/"+DownAck) {
		q = c.acks
	}
	if !q.push(m) {
		c.mu.Lock()
		c.overflow = true
		c.mu.Unlock()
		c.rl.Log(slog.LevelWarn, "overflow", "downlink queue full; message left with the broker", "topic", m.Topic())
	}
}

// recoverOverflow forces a reconnect after queued messages were refused,
// so the broker redelivers them; called by workers with empty queues.
func (c *Client) recoverOverflow() {
	c.mu.Lock()
	ov := c.overflow
	c.overflow = false
	c.mu.Unlock()
	if ov && c.mqtt.IsConnectionOpen() {
		c.logger.Warn("reconnecting to get refused downlink messages redelivered")
		c.mqtt.Disconnect(100)
		select {
		case c.lost <- errors.New("forced reconnect after queue overflow"):
		default:
		}
	}
}

func waitToken(ctx context.Context, t mqtt.Token, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return true
	case <-ctx.Done():
		return false
	case <-timer.C:
		return false
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
