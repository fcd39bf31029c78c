// Package registrysim plays the central registry's side of the MQTT
// contract (docs/mqtt.md) for demos, tests and benchmarks: it pushes users
// with a per-site sequence, answers snapshot requests in chunks, acks every
// uplink message by key, keeps the latest status of each kiosk and signs
// commands and account pushes with its Ed25519 key.
package registrysim

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	gosync "sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"

	"github.com/kioskd/kioskd/models"
	ksync "github.com/kioskd/kioskd/sync"
)

// Config configures a Registry.
type Config struct {
	Broker   string
	ClientID string // default "registry-sim-" + Site
	Prefix   string // default "kiosk"
	Site     string
	Username string
	Password string
	CAFile   string
	CertFile string
	KeyFile  string
	// PrivateKey signs commands, account pushes and configuration.
	PrivateKey ed25519.PrivateKey
	// Dtype is how descriptors are sent: "json" (arrays of numbers, the
	// default), ksync.DtypeFloat32 or ksync.DtypeFloat64 (base64).
	Dtype string
	// ChunkBytes bounds one snapshot chunk (default 512 KiB).
	ChunkBytes int
	// AckInterval batches acks per device (default 20 ms).
	AckInterval time.Duration
	// NoSnapshots makes the registry ignore snapshot requests (tests).
	NoSnapshots bool
	// NoAcks makes the registry store uplink messages without acking them.
	NoAcks bool
	// AdoptEnrolments answers a kiosk's enrolment of a user central has not
	// versioned (version 0) as central does: the person is kept under
	// central's own id ("c-" and a counter) with version 1 and pushed with
	// local_id set to the kiosk's id.
	AdoptEnrolments bool
}

// Registry is a simulated central registry for one site.
type Registry struct {
	// Now returns the current time. Set before Open.
	Now func() time.Time

	cfg      Config
	logger   *slog.Logger
	contract *ksync.Contract
	client   mqtt.Client
	ctx      context.Context
	cancel   context.CancelFunc
	wg       gosync.WaitGroup
	work     chan func()

	mu        gosync.Mutex
	seq       uint64
	users     map[string]*models.UserRecord // live users and tombstones
	received  map[string]int                // uplink key -> deliveries
	byKind    map[string]int                // first deliveries by kind
	payloads  map[string]json.RawMessage    // uplink key -> payload (first delivery)
	statuses  map[string]ksync.StatusMessage
	results   []ksync.CommandResult
	requests  []ksync.SnapshotRequest
	sigSeq    map[string]uint64 // device/purpose -> last signed sequence
	adopted   int               // enrolments adopted (Config.AdoptEnrolments)
	pending   map[string][]string
	snapshots int
	dups      int
	invalid   int
	notify    chan struct{}
}

// New returns a registry; it does no I/O.
func New(cfg Config, logger *slog.Logger) *Registry {
	if cfg.Prefix == "" {
		cfg.Prefix = "kiosk"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "registry-sim-" + cfg.Site
	}
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = 512 << 10
	}
	if cfg.AckInterval <= 0 {
		cfg.AckInterval = 20 * time.Millisecond
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{
		Now: time.Now, cfg: cfg, logger: logger,
		users: map[string]*models.UserRecord{}, received: map[string]int{}, byKind: map[string]int{},
		payloads: map[string]json.RawMessage{}, statuses: map[string]ksync.StatusMessage{},
		sigSeq: map[string]uint64{}, pending: map[string][]string{}, notify: make(chan struct{}, 1),
		work: make(chan func(), 1024),
	}
}

// PublicKey returns the base64-free public half of the signing key.
func (r *Registry) PublicKey() ed25519.PublicKey {
	return r.cfg.PrivateKey.Public().(ed25519.PublicKey)
}

// Open connects (retrying until ctx ends) and subscribes to every kiosk's
// uplink of the site.
func (r *Registry) Open(ctx context.Context) error {
	contract, err := ksync.LoadContract()
	if err != nil {
		return err
	}
	r.contract = contract
	o := mqtt.NewClientOptions().AddBroker(r.cfg.Broker).SetClientID(r.cfg.ClientID).
		SetUsername(r.cfg.Username).SetPassword(r.cfg.Password).SetCleanSession(false).
		SetAutoReconnect(true).SetMaxReconnectInterval(2 * time.Second).SetConnectRetry(true).
		SetConnectRetryInterval(500 * time.Millisecond).SetKeepAlive(10 * time.Second).
		SetOrderMatters(false).SetResumeSubs(true)
	if r.cfg.CAFile != "" || r.cfg.CertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if r.cfg.CAFile != "" {
			pem, err := os.ReadFile(r.cfg.CAFile)
			if err != nil {
				return err
			}
			tc.RootCAs = x509.NewCertPool()
			tc.RootCAs.AppendCertsFromPEM(pem)
		}
		if r.cfg.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
			if err != nil {
				return err
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		o.SetTLSConfig(tc)
	}
	filter := r.cfg.Prefix + "/" + r.cfg.Site + "/device/+/up/+"
	o.SetOnConnectHandler(func(c mqtt.Client) {
		c.Subscribe(filter, 1, r.handle) // resubscribe on every connect
	})
	o.SetDefaultPublishHandler(r.handle)
	r.client = mqtt.NewClient(o)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	t := r.client.Connect()
	select {
	case <-t.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if t.Error() != nil {
		return fmt.Errorf("registry connect: %w", t.Error())
	}
	st := r.client.Subscribe(filter, 1, r.handle)
	st.Wait()
	if st.Error() != nil {
		return fmt.Errorf("registry subscribe: %w", st.Error())
	}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.ackLoop() }()
	go func() { defer r.wg.Done(); r.workLoop() }()
	return nil
}

// Close disconnects.
func (r *Registry) Close() error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.wg.Wait()
	r.client.Disconnect(250)
	return nil
}

func (r *Registry) handle(_ mqtt.Client, m mqtt.Message) {
	dt, ok := ksync.ParseDeviceTopic(r.cfg.Prefix, m.Topic())
	if !ok || dt.Dir != "up" || dt.Site != r.cfg.Site {
		return
	}
	if err := r.contract.Check(m.Topic(), m.Payload()); err != nil {
		r.mu.Lock()
		r.invalid++
		r.mu.Unlock()
		r.logger.Warn("uplink message breaks the contract", "topic", m.Topic(), "err", err)
	}
	switch dt.Kind {
	case ksync.UpStatus:
		var s ksync.StatusMessage
		if json.Unmarshal(m.Payload(), &s) == nil {
			r.mu.Lock()
			r.statuses[dt.Device] = s
			r.mu.Unlock()
		}
	case ksync.UpHeartbeat:
	case ksync.UpCommandResult:
		var res ksync.CommandResult
		if json.Unmarshal(m.Payload(), &res) == nil {
			r.mu.Lock()
			r.results = append(r.results, res)
			r.mu.Unlock()
		}
	case ksync.UpSnapshotRequest:
		var req ksync.SnapshotRequest
		if json.Unmarshal(m.Payload(), &req) != nil || req.Device != dt.Device {
			return
		}
		r.mu.Lock()
		r.requests = append(r.requests, req)
		noSnap := r.cfg.NoSnapshots
		r.mu.Unlock()
		if !noSnap {
			select {
			case r.work <- func() { r.answerSnapshot(dt.Device, req) }:
			default:
				r.logger.Warn("snapshot request dropped: busy", "device", dt.Device)
			}
		}
	default:
		var up ksync.UplinkMessage
		if json.Unmarshal(m.Payload(), &up) != nil || up.Key == "" || up.Device != dt.Device {
			return
		}
		r.mu.Lock()
		r.received[up.Key]++
		if r.received[up.Key] == 1 {
			r.byKind[up.Type]++
			r.payloads[up.Key] = up.Payload
			if up.Type == models.OutboxEnrolment && r.cfg.AdoptEnrolments {
				r.adoptLocked(up.Payload)
			}
		} else {
			r.dups++
		}
		if !r.cfg.NoAcks {
			r.pending[dt.Device] = append(r.pending[dt.Device], up.Key)
		}
		r.mu.Unlock()
	}
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// ackLoop sends batched acks per device.
func (r *Registry) ackLoop() {
	t := time.NewTicker(r.cfg.AckInterval)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		pending := r.pending
		r.pending = map[string][]string{}
		r.mu.Unlock()
		for dev, keys := range pending {
			for len(keys) > 0 {
				n := min(len(keys), 2000)
				a := ksync.AckMessage{Schema: ksync.SchemaVersion, Type: ksync.TypeAck, Device: dev, Keys: keys[:n]}
				keys = keys[n:]
				b, _ := json.Marshal(a)
				r.client.Publish(r.topics(dev).Down(ksync.DownAck), 1, false, b)
			}
		}
	}
}

func (r *Registry) workLoop() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case fn := <-r.work:
			fn()
		}
	}
}

func (r *Registry) topics(device string) ksync.Topics {
	return ksync.Topics{Prefix: r.cfg.Prefix, Site: r.cfg.Site, Device: device}
}

// Seq returns the site's current sequence.
func (r *Registry) Seq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Set records recs as the registry's state without publishing anything
// (versions are kept as given). Use Push to publish.
func (r *Registry) Set(recs ...models.UserRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range recs {
		r.setLocked(recs[i])
	}
}

func (r *Registry) setLocked(rec models.UserRecord) {
	if old, ok := r.users[rec.User.ID]; ok && old.User.Version >= rec.User.Version {
		return
	}
	cp := rec
	cp.Encodings = slices.Clone(rec.Encodings)
	r.users[rec.User.ID] = &cp
}

// Push records recs (each user's version must grow; 0 means "next") and
// publishes them as users messages of at most perMessage records, each with
// the next site sequence, then the retained head.
func (r *Registry) Push(ctx context.Context, recs []models.UserRecord, perMessage int) error {
	if perMessage <= 0 {
		perMessage = 100
	}
	for len(recs) > 0 {
		n := min(len(recs), perMessage)
		batch := slices.Clone(recs[:n])
		recs = recs[n:]
		r.mu.Lock()
		for i := range batch {
			if batch[i].User.Version == 0 {
				if old, ok := r.users[batch[i].User.ID]; ok {
					batch[i].User.Version = old.User.Version + 1
				} else {
					batch[i].User.Version = 1
				}
			}
			r.setLocked(batch[i])
		}
		r.seq++
		seq := r.seq
		r.mu.Unlock()
		if err := r.PublishUsers(ctx, seq, batch); err != nil {
			return err
		}
	}
	return r.PublishHead(ctx)
}

// PublishUsers publishes one users message with sequence seq as is (the
// registry's state is not touched; tests use it to reorder and repeat).
func (r *Registry) PublishUsers(ctx context.Context, seq uint64, recs []models.UserRecord) error {
	m := ksync.UsersMessage{Schema: ksync.SchemaVersion, Type: ksync.TypeUsers, Site: r.cfg.Site, Seq: seq,
		IssuedAt: r.Now().UTC(), Users: make([]ksync.WireUser, len(recs))}
	for i := range recs {
		m.Users[i] = ksync.EncodeUserRecord(&recs[i], r.cfg.Dtype)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return r.publish(ctx, r.topics("").Users(), false, b)
}

// PublishHead publishes the retained head with the current sequence.
func (r *Registry) PublishHead(ctx context.Context) error {
	b, _ := json.Marshal(ksync.HeadMessage{Schema: ksync.SchemaVersion, Type: ksync.TypeHead, Site: r.cfg.Site, Seq: r.Seq(), IssuedAt: r.Now().UTC()})
	return r.publish(ctx, r.topics("").Head(), true, b)
}

// NextSeq reserves and returns the next site sequence (for tests that
// publish by hand with PublishUsers).
func (r *Registry) NextSeq() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return r.seq
}

// SetSeq sets the site's current sequence (tests that publish by hand).
func (r *Registry) SetSeq(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq = seq
}

// SetNoSnapshots turns answering snapshot requests off or on.
func (r *Registry) SetNoSnapshots(v bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg.NoSnapshots = v
}

// PublishRaw publishes payload on topic with QoS 1.
func (r *Registry) PublishRaw(ctx context.Context, topic string, retained bool, payload []byte) error {
	return r.publish(ctx, topic, retained, payload)
}

func (r *Registry) publish(ctx context.Context, topic string, retained bool, b []byte) error {
	t := r.client.Publish(topic, 1, retained, b)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Live returns the registry's live users (no tombstones), sorted by id.
func (r *Registry) Live() []models.UserRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.liveLocked()
}

func (r *Registry) liveLocked() []models.UserRecord {
	out := make([]models.UserRecord, 0, len(r.users))
	for _, u := range r.users {
		if !u.Deleted {
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b models.UserRecord) int {
		switch {
		case a.User.ID < b.User.ID:
			return -1
		case a.User.ID > b.User.ID:
			return 1
		}
		return 0
	})
	return out
}

// answerSnapshot sends the live state at the current sequence in chunks.
func (r *Registry) answerSnapshot(device string, req ksync.SnapshotRequest) {
	r.mu.Lock()
	seq, live := r.seq, r.liveLocked() // the state as of seq, read together
	r.mu.Unlock()
	var chunks [][]json.RawMessage
	var cur []json.RawMessage
	size := 0
	for i := range live {
		b, _ := json.Marshal(ksync.EncodeUserRecord(&live[i], r.cfg.Dtype))
		if len(cur) > 0 && (size+len(b) > r.cfg.ChunkBytes || len(cur) >= ksync.MaxUsersPerMessage) {
			chunks, cur, size = append(chunks, cur), nil, 0
		}
		cur, size = append(cur, b), size+len(b)+1
	}
	chunks = append(chunks, cur)
	id := uuid.NewString()
	topic := r.topics(device).Down(ksync.DownSnapshot)
	for i, ch := range chunks {
		users := ch
		if users == nil {
			users = []json.RawMessage{}
		}
		msg := struct {
			ksync.SnapshotChunk
			Users []json.RawMessage `json:"users"`
		}{SnapshotChunk: ksync.SnapshotChunk{Schema: ksync.SchemaVersion, Type: ksync.TypeSnapshot, Site: r.cfg.Site,
			Device: device, RequestID: req.RequestID, SnapshotID: id, Seq: seq, Chunk: i, Chunks: len(chunks), Total: len(live)},
			Users: users}
		b, _ := json.Marshal(msg)
		if err := r.publish(r.ctx, topic, false, b); err != nil {
			r.logger.Warn("snapshot publish failed", "device", device, "err", err)
			return
		}
	}
	r.mu.Lock()
	r.snapshots++
	r.mu.Unlock()
	r.logger.Info("snapshot sent", "device", device, "users", len(live), "chunks", len(chunks), "seq", seq)
}

// adoptLocked queues the push of central's record for a version-0
// enrolment (see Config.AdoptEnrolments). r.mu is held.
func (r *Registry) adoptLocked(payload json.RawMessage) {
	var w ksync.WireUser
	if json.Unmarshal(payload, &w) != nil || w.Op != ksync.OpUpsert || w.Version != 0 || w.ID == "" {
		return
	}
	r.adopted++
	w.LocalID, w.ID, w.Version = w.ID, fmt.Sprintf("c-%d", r.adopted), 1
	rec, err := ksync.DecodeUserRecord(&w)
	if err != nil {
		r.logger.Warn("enrolment not adopted", "local_id", w.LocalID, "err", err)
		return
	}
	select {
	case r.work <- func() {
		if err := r.Push(r.ctx, []models.UserRecord{rec}, 1); err != nil {
			r.logger.Warn("adopted enrolment not pushed", "id", rec.User.ID, "err", err)
		}
	}:
	default:
		r.logger.Warn("enrolment not adopted: busy", "local_id", w.LocalID)
	}
}

// Sign builds a signed message for device and purpose (ksync.DownCommand,
// DownAccount or DownConfig) with the next sequence and a lifetime of ttl.
func (r *Registry) Sign(device, purpose string, payload []byte, ttl time.Duration) *ksync.SignedMessage {
	r.mu.Lock()
	r.sigSeq[device+"/"+purpose]++
	seq := r.sigSeq[device+"/"+purpose]
	r.mu.Unlock()
	now := r.Now()
	m := &ksync.SignedMessage{Purpose: purpose, Device: device, Topic: r.topics(device).Down(purpose), Seq: seq,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(ttl).Unix(), Payload: payload}
	ksync.Sign(m, r.cfg.PrivateKey)
	return m
}

// SendSigned publishes a signed message on its topic.
func (r *Registry) SendSigned(ctx context.Context, m *ksync.SignedMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return r.publish(ctx, m.Topic, false, b)
}

// SendCommand signs and sends a command to device.
func (r *Registry) SendCommand(ctx context.Context, device string, cmd ksync.Command) error {
	b, _ := json.Marshal(cmd)
	return r.SendSigned(ctx, r.Sign(device, ksync.DownCommand, b, 10*time.Minute))
}

// SendAccount signs and sends an account push to device.
func (r *Registry) SendAccount(ctx context.Context, device string, ap ksync.AccountPush) error {
	b, _ := json.Marshal(ap)
	return r.SendSigned(ctx, r.Sign(device, ksync.DownAccount, b, 10*time.Minute))
}

// Stats is what the registry has seen.
type Stats struct {
	Received   int            // distinct uplink keys
	Duplicates int            // deliveries of a key already received
	ByKind     map[string]int // distinct keys by kind
	Snapshots  int            // snapshots sent
	Requests   int            // snapshot requests received
	Invalid    int            // uplink messages that break docs/asyncapi.yaml
}

// Stats returns counters.
func (r *Registry) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Received: len(r.received), Duplicates: r.dups, ByKind: map[string]int{}, Snapshots: r.snapshots, Requests: len(r.requests), Invalid: r.invalid}
	for k, v := range r.byKind {
		s.ByKind[k] = v
	}
	return s
}

// Received returns a copy of uplink key -> delivery count.
func (r *Registry) Received() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.received))
	for k, v := range r.received {
		out[k] = v
	}
	return out
}

// Payload returns the payload of the first delivery of key.
func (r *Registry) Payload(key string) (json.RawMessage, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.payloads[key]
	return p, ok
}

// DeviceStatus returns the latest status of device.
func (r *Registry) DeviceStatus(device string) (ksync.StatusMessage, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.statuses[device]
	return s, ok
}

// Results returns the command results received so far.
func (r *Registry) Results() []ksync.CommandResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.results)
}

// WaitFor polls cond every 20 ms (and on every uplink message) until it
// holds or ctx ends.
func (r *Registry) WaitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return errors.New("registry: condition not met: " + ctx.Err().Error())
		case <-r.notify:
		case <-t.C:
		}
	}
	return nil
}
