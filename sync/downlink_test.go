package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/synctest"
)

// stallStore stalls ApplyUserRecords once for a while, as a slow disk would.
type stallStore struct {
	models.Store
	once  gosync.Once
	stall time.Duration
	armed atomic.Bool
}

func (s *stallStore) ApplyUserRecords(ctx context.Context, recs []models.UserRecord) ([]bool, error) {
	if s.armed.Load() {
		s.once.Do(func() { time.Sleep(s.stall) })
	}
	return s.Store.ApplyUserRecords(ctx, recs)
}

// A 5 s stall while applying updates, with a 2 s keepalive: paho's callback
// never blocks, so the connection survives, and manual acks keep every
// message with the broker until it is applied.
func TestApplyStallKeepsConnection(t *testing.T) {
	b := synctest.MustMosquitto(t)
	reg := mustRegistry(t, b.URL, nil)
	st := &stallStore{Store: bolttest.MustOpenDB(t), stall: 5 * time.Second}
	cfg := testConfig(b.URL, "kiosk-stall")
	k := mustKiosk(t, cfg, st)
	waitConnected(t, k)
	waitFor(t, 15*time.Second, "initial snapshot", func() bool { return k.client.Status().Counters.Snapshots == 1 })
	st.armed.Store(true)
	ctx := context.Background()
	var recs []models.UserRecord
	for i := 0; i < 1000; i++ {
		recs = append(recs, randomUser(fmt.Sprintf("s%04d", i), 1, 2, i))
	}
	start := time.Now()
	if err := reg.Push(ctx, recs, 5); err != nil { // 200 messages
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "all users applied", func() bool { return k.client.Status().SiteSeq == reg.Seq() })
	if time.Since(start) < 5*time.Second {
		t.Fatal("the stall did not happen")
	}
	s := k.client.Status()
	if s.Counters.ConnectionsLost != 0 || s.Counters.Connects != 1 || !s.Connected {
		t.Fatalf("connection did not survive the stall: %+v", s.Counters)
	}
	if d := diffStates(storeState(t, k.db), registryState(reg)); d != "[]" {
		t.Fatalf("store differs from the registry: %s", d)
	}
	if k.matcher.Len() != 2000 {
		t.Fatalf("matcher holds %d descriptors, want 2000", k.matcher.Len())
	}
}

// The downlink queue overflows: apply stalls while the broker's inflight
// window (100) exceeds the queue (16). The messages that do not fit stay
// unacked with the broker; once the queue drains the client reconnects,
// the broker redelivers them and the kiosk ends equal to the registry.
func TestDownlinkQueueOverflow(t *testing.T) {
	b := synctest.MustMosquitto(t, synctest.WithConfig("max_inflight_messages 100"))
	reg := mustRegistry(t, b.URL, nil)
	st := &stallStore{Store: bolttest.MustOpenDB(t), stall: 3 * time.Second}
	cfg := testConfig(b.URL, "kiosk-overflow")
	cfg.QueueSize = 16
	k := mustKiosk(t, cfg, st)
	waitConnected(t, k)
	waitFor(t, 15*time.Second, "initial snapshot", func() bool { return k.client.Status().Counters.Snapshots == 1 })
	st.armed.Store(true)
	var recs []models.UserRecord
	for i := 0; i < 200; i++ {
		recs = append(recs, randomUser(fmt.Sprintf("o%04d", i), 1, 1, i))
	}
	if err := reg.Push(context.Background(), recs, 1); err != nil { // 200 messages
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "all users applied", func() bool { return k.client.Status().SiteSeq == reg.Seq() })
	s := k.client.Status()
	if s.Counters.Connects < 2 {
		t.Fatalf("no reconnect after the overflow (the queue never filled?): %+v", s.Counters)
	}
	if d := diffStates(storeState(t, k.db), registryState(reg)); d != "[]" {
		t.Fatalf("store differs from the registry: %s", d)
	}
	if k.matcher.Users() != 200 {
		t.Fatalf("matcher holds %d users, want 200", k.matcher.Users())
	}
}

// A kiosk offline while central publishes more than the broker queues for
// it (max_queued_messages) misses messages; the retained head exposes the
// gap, the kiosk asks for a snapshot and ends equal to the registry.
func TestDownlinkGapSnapshot(t *testing.T) {
	b := synctest.MustMosquitto(t, synctest.WithMaxQueued(20))
	reg := mustRegistry(t, b.URL, nil)
	cfg := testConfig(b.URL, "kiosk-gap")
	store := bolttest.MustOpenDB(t)
	k := mustKiosk(t, cfg, store)
	waitConnected(t, k)
	waitFor(t, 15*time.Second, "initial snapshot", func() bool { return k.client.Status().Counters.Snapshots == 1 })
	ctx := context.Background()
	if err := reg.Push(ctx, []models.UserRecord{randomUser("g0000", 1, 1, 0)}, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "first push", func() bool { return k.client.Status().SiteSeq == 1 })
	k.client.Close()

	var recs []models.UserRecord
	for i := 1; i <= 300; i++ {
		recs = append(recs, randomUser(fmt.Sprintf("g%04d", i), 1, 1, i))
	}
	if err := reg.Push(ctx, recs, 1); err != nil { // 300 messages, the broker keeps 20
		t.Fatal(err)
	}
	k2 := mustKiosk(t, cfg, store)
	waitFor(t, 60*time.Second, "snapshot after the gap", func() bool {
		s := k2.client.Status()
		return s.Counters.Snapshots >= 1 && s.SiteSeq == reg.Seq() && !s.SnapshotPending
	})
	if d := diffStates(storeState(t, k2.db), registryState(reg)); d != "[]" {
		t.Fatalf("store differs from the registry: %s", d)
	}
	if k2.matcher.Len() != 301 {
		t.Fatalf("matcher holds %d descriptors, want 301", k2.matcher.Len())
	}
}

// Forged, replayed, expired and other-device signed messages, wrong JSON
// types, oversized payloads and NaN descriptors are refused and counted;
// the client stays connected and keeps applying valid messages.
func TestHostileMessagesRejected(t *testing.T) {
	b := synctest.MustMosquitto(t)
	reg := mustRegistry(t, b.URL, nil)
	cfg := testConfig(b.URL, "kiosk-a")
	cfg.MaxPayload = 64 << 10
	k := mustKiosk(t, cfg, nil)
	waitConnected(t, k)
	waitFor(t, 15*time.Second, "initial snapshot", func() bool { return k.client.Status().Counters.Snapshots == 1 })
	ctx := context.Background()
	tp := ksync.Topics{Prefix: "kiosk", Site: testSite, Device: "kiosk-a"}
	send := func(topic string, v any) {
		t.Helper()
		var p []byte
		switch v := v.(type) {
		case []byte:
			p = v
		case string:
			p = []byte(v)
		default:
			p, _ = json.Marshal(v)
		}
		if err := reg.PublishRaw(ctx, topic, false, p); err != nil {
			t.Fatal(err)
		}
	}
	statusCmd, _ := json.Marshal(ksync.Command{Name: ksync.CmdPublishStatus})

	// Signed messages.
	valid := reg.Sign("kiosk-a", ksync.DownCommand, statusCmd, time.Minute)
	send(valid.Topic, valid)
	send(valid.Topic, valid) // replay
	forged := reg.Sign("kiosk-a", ksync.DownCommand, statusCmd, time.Minute)
	forged.Payload = []byte(`{"name":"request_snapshot"}`)
	send(forged.Topic, forged)
	expired := reg.Sign("kiosk-a", ksync.DownCommand, statusCmd, time.Minute)
	expired.IssuedAt, expired.ExpiresAt = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	ksync.Sign(expired, testKey)
	send(expired.Topic, expired)
	other := reg.Sign("kiosk-b", ksync.DownCommand, statusCmd, time.Minute)
	send(tp.Down(ksync.DownCommand), other)

	// Wrong types, oversized, NaN.
	send(tp.Users(), `{"schema":1,"type":"users","site":"site1","seq":"seven","users":[]}`)
	send(tp.Users(), `{"schema":1,"type":"users","site":"site1","seq":1,"users":{"id":"x"}}`)
	send(tp.Down(ksync.DownSnapshot), `{"schema":1,"type":"snapshot","chunk":"a"}`)
	send(tp.Down(ksync.DownAck), `{"schema":1,"type":"ack","device":"kiosk-a","keys":[1,2]}`)
	send(tp.Users(), `{"schema":1,"type":"users","site":"site1","seq":1,"users":[`+strings.Repeat(`{"op":"delete","id":"x","version":1},`, 3000)+`{}]}`)
	send(tp.Users(), `not json at all`)
	good := randomUser("ok-user", 1, 1, 1)
	nanUser := randomUser("nan-user", 1, 1, 2)
	w := ksync.EncodeUserRecord(&nanUser, ksync.DtypeFloat32)
	nanD := nanUser.Encodings[0].Descriptor
	nanD[3] = float32(nanNaN())
	w.Encodings[0].Descriptor = ksync.EncodeDescriptorBase64(&nanD, ksync.DtypeFloat32)
	w.Encodings[0].Dtype = ksync.DtypeFloat32
	reg.Set(good)
	reg.SetSeq(1)
	send(tp.Users(), ksync.UsersMessage{Schema: 1, Type: ksync.TypeUsers, Site: testSite, Seq: 1,
		Users: []ksync.WireUser{w, ksync.EncodeUserRecord(&good, "json")}})

	// Account pushes: verified with a Django hash is stored; unverified and
	// unknown hash formats are refused.
	const djangoHash = "pbkdf2_sha256$600000$Ax5QYgVtmHZ2$Oq0gVQwoB9jzg6z2ZBJZUz4cLHtBMJt4CRLgmJGwXY8="
	if err := reg.SendAccount(ctx, "kiosk-a", ksync.AccountPush{Op: "upsert", Email: "tech@example.org", Role: "technician", PasswordHash: djangoHash, EmailVerified: true, Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := reg.SendAccount(ctx, "kiosk-a", ksync.AccountPush{Op: "upsert", Email: "unverified@example.org", Role: "admin", PasswordHash: djangoHash, Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := reg.SendAccount(ctx, "kiosk-a", ksync.AccountPush{Op: "upsert", Email: "md5@example.org", Role: "admin", PasswordHash: "md5$abc$def", EmailVerified: true, Version: 1}); err != nil {
		t.Fatal(err)
	}

	waitFor(t, 15*time.Second, "valid user applied", func() bool { return k.client.Status().SiteSeq == 1 })
	waitFor(t, 15*time.Second, "three account results", func() bool {
		n := 0
		for _, r := range reg.Results() {
			if r.Purpose == ksync.DownAccount {
				n++
			}
		}
		return n == 3
	})
	s := k.client.Status()
	want := map[string]int64{ksync.RejectReplay: 1, ksync.RejectForged: 1, ksync.RejectExpired: 1, ksync.RejectOtherDevice: 1, ksync.RejectOversized: 1}
	for reason, n := range want {
		if s.Rejected[reason] != n {
			t.Errorf("rejected[%s] = %d, want %d (all: %v)", reason, s.Rejected[reason], n, s.Rejected)
		}
	}
	if s.Rejected[ksync.RejectMalformed] < 6 { // 4 wrong types, not JSON, NaN record
		t.Errorf("rejected[malformed] = %d, want >= 6 (all: %v)", s.Rejected[ksync.RejectMalformed], s.Rejected)
	}
	if !s.Connected || s.Counters.ConnectionsLost != 0 {
		t.Fatalf("client unhealthy after hostile input: %+v", s)
	}
	if _, err := k.db.GetUser(ctx, "ok-user"); err != nil {
		t.Fatalf("valid neighbour of the NaN record not applied: %v", err)
	}
	if _, err := k.db.GetUser(ctx, "nan-user"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("NaN user stored: %v", err)
	}
	if a, err := k.db.GetAccount(ctx, "tech@example.org"); err != nil || a.Source != models.SourceCentral || a.PasswordHash != djangoHash {
		t.Fatalf("verified account not stored: %v %+v", err, a)
	}
	for _, e := range []string{"unverified@example.org", "md5@example.org"} {
		if _, err := k.db.GetAccount(ctx, e); models.ErrorCode(err) != models.ENOTFOUND {
			t.Fatalf("account %s stored: %v", e, err)
		}
	}
	okResults := 0
	for _, r := range reg.Results() {
		if r.OK {
			okResults++
		}
	}
	if okResults != 2 { // the first publish_status and the verified account
		t.Fatalf("%d successful signed messages, want 2: %+v", okResults, reg.Results())
	}
	// Still healthy: a later valid command runs.
	if err := reg.SendCommand(ctx, "kiosk-a", ksync.Command{Name: ksync.CmdPublishStatus}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "later command", func() bool { return k.client.Status().Counters.Commands == 5 })
}
