package sync_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

// mustCountingKiosk is mustKiosk reporting unknown faces and session
// summaries every 200 ms; the returned counter plays the camera's.
func mustCountingKiosk(tb testing.TB, cfg ksync.Config, store models.Store) (*kiosk, *atomic.Uint64) {
	tb.Helper()
	cfg.UnknownInterval, cfg.SummaryPoll = 200*time.Millisecond, 200*time.Millisecond
	k := mustKiosk(tb, cfg, store)
	unknown := new(atomic.Uint64)
	k.client.SetUnknownCounter(unknown.Load)
	return k, unknown
}

func mustContract(tb testing.TB) *ksync.Contract {
	tb.Helper()
	c, err := ksync.LoadContract()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestContractEveryMessage runs a kiosk and the simulated central on a real
// broker until every channel of docs/asyncapi.yaml has carried a message,
// and validates every message either side published against its channel's
// schema. It also checks the historical flag: an event recorded before the
// connection is historical, one recorded while connected is not.
func TestContractEveryMessage(t *testing.T) {
	ctx := context.Background()
	contract := mustContract(t)
	b := synctest.MustMosquitto(t)
	sniff := synctest.MustSniffer(t, b.URL, "sniffer", "kiosk/#")
	reg := mustRegistry(t, b.URL, func(c *registrysim.Config) { c.Dtype = ksync.DtypeFloat32 })
	if err := reg.Push(ctx, []models.UserRecord{randomUser("c1", 0, 2, 1), randomUser("c2", 0, 1, 2)}, 1); err != nil {
		t.Fatal(err)
	}

	// Queued before the kiosk connects: an event, a local enrolment (a user
	// central has not versioned) and a local delete.
	db := bolttest.MustOpenDBWith(t, func(db *bolt.DB) { db.Now = time.Now }) // historical compares with the wall clock
	early := &models.AttendanceEvent{UserID: "c1", Time: time.Now().UTC(), KioskID: "kiosk-c", Distance: 0.41, Liveness: "blink"}
	if err := db.RecordAttendance(ctx, early); err != nil {
		t.Fatal(err)
	}
	local := models.UserRecord{User: models.User{ID: "local-1", Email: "ada@example.org", FullName: "Ada L",
		Role: models.RoleTrainee, Status: models.UserActive, UpdatedAt: time.Now().UTC()},
		Encodings: []models.FaceEncoding{{ID: "e1", UserID: "local-1", Descriptor: testDescriptor(7), Source: models.SourceLocal,
			Model: models.DefaultModelName, CreatedAt: time.Now().UTC()}}}
	enrol, err := models.NewEnrolmentMessage(&local)
	if err != nil {
		t.Fatal(err)
	}
	del, _ := models.NewEnrolmentMessage(&models.UserRecord{User: models.User{ID: "local-2"}, Deleted: true})
	if err := db.Enqueue(ctx, enrol, del); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(b.URL, "kiosk-c")
	k, unknown := mustCountingKiosk(t, cfg, db)
	unknown.Store(3)
	waitConnected(t, k)
	late := &models.AttendanceEvent{UserID: "c2", Time: time.Now().UTC(), KioskID: "kiosk-c", Distance: 0.38}
	if err := db.RecordAttendance(ctx, late); err != nil {
		t.Fatal(err)
	}
	k.client.Notify()
	for _, cmd := range []ksync.Command{{Name: ksync.CmdPublishStatus}} {
		if err := reg.SendCommand(ctx, "kiosk-c", cmd); err != nil {
			t.Fatal(err)
		}
	}
	const djangoHash = "pbkdf2_sha256$600000$Ax5QYgVtmHZ2$Oq0gVQwoB9jzg6z2ZBJZUz4cLHtBMJt4CRLgmJGwXY8="
	if err := reg.SendAccount(ctx, "kiosk-c", ksync.AccountPush{Op: "upsert", Email: "tech@example.org", Role: "technician",
		PasswordHash: djangoHash, EmailVerified: true, Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := reg.SendSigned(ctx, reg.Sign("kiosk-c", ksync.DownConfig, []byte(`{"unknown_interval":"1m"}`), time.Minute)); err != nil {
		t.Fatal(err)
	}
	ago := time.Now().UTC().Add(-time.Hour)
	tt := ksync.Timetable{Sessions: []ksync.ClassSession{
		{ID: "s1", ClassGroup: "SE-1A", Room: "Lab 2", Trainer: "t@example.org", Start: time.Now().UTC(), End: time.Now().UTC().Add(time.Hour), LateAfter: time.Now().UTC().Add(10 * time.Minute)},
		{ID: "s0", ClassGroup: "SE-1A", Room: "Lab 2", Start: ago, End: ago.Add(59 * time.Minute), LateAfter: ago.Add(10 * time.Minute)}, // ended: summarised
	}}
	ttb, _ := json.Marshal(tt)
	if err := reg.SendSigned(ctx, reg.Sign("kiosk-c", ksync.DownTimetable, ttb, time.Minute)); err != nil {
		t.Fatal(err)
	}
	ctxW, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = reg.WaitFor(ctxW, func() bool {
		st := reg.Stats()
		n, _ := db.OutboxLen(ctx)
		return st.ByKind[models.OutboxAttendance] == 2 && st.ByKind[models.OutboxEnrolment] == 2 &&
			st.ByKind[models.OutboxUnknown] == 1 && st.ByKind[ksync.OutboxSessionSummary] == 1 && len(reg.Results()) == 4 && n == 0
	})
	if err != nil {
		t.Fatalf("%v: %+v, results %d", err, reg.Stats(), len(reg.Results()))
	}
	waitFor(t, 10*time.Second, "a heartbeat", func() bool {
		for _, m := range sniff.Messages() {
			if strings.HasSuffix(m.Topic, "/up/heartbeat") {
				return true
			}
		}
		return false
	})
	k.client.Close() // publishes the retained offline status
	waitFor(t, 10*time.Second, "offline status", func() bool {
		st, ok := reg.DeviceStatus("kiosk-c")
		return ok && st.State == "offline"
	})

	seen := map[string]int{}
	hist := map[string]bool{}
	for _, m := range sniff.Messages() {
		if err := contract.Check(m.Topic, m.Payload); err != nil {
			t.Errorf("%s: %v\n%s", m.Topic, err, m.Payload)
		}
		i := strings.LastIndex(m.Topic, "/")
		seen[m.Topic[i+1:]]++
		var up ksync.UplinkMessage
		if strings.Contains(m.Topic, "/up/") && json.Unmarshal(m.Payload, &up) == nil && up.Key != "" {
			hist[up.Key] = up.Historical
			if up.Type == models.OutboxEnrolment && up.Key == enrol.Key {
				var w ksync.WireUser
				if err := json.Unmarshal(up.Payload, &w); err != nil {
					t.Fatal(err)
				}
				d, err := ksync.DecodeDescriptor(w.Encodings[0].Descriptor, w.Encodings[0].Dtype)
				if err != nil || d != local.Encodings[0].Descriptor || w.Version != 0 || w.Email != local.User.Email {
					t.Fatalf("enrolment on the wire: %+v (%v)", w, err)
				}
			}
			if up.Type == models.OutboxUnknown && !strings.Contains(string(up.Payload), `"count":3`) {
				t.Fatalf("unknown count: %s", up.Payload)
			}
		}
	}
	for _, ch := range []string{"users", "head", "snapshot", "ack", "command", "account", "config", "timetable", "attendance", "session_summary",
		"enrolment", "unknown", "status", "heartbeat", "snapshot_request", "command_result"} {
		if seen[ch] == 0 {
			t.Errorf("no message on channel %s (seen %v)", ch, seen)
		}
	}
	if n := reg.Stats().Invalid; n != 0 {
		t.Errorf("the simulated central counted %d uplink messages breaking the contract", n)
	}
	if k.client.Timetable() == nil || len(k.client.Timetable().Sessions) != 2 {
		t.Errorf("timetable not applied: %+v", k.client.Timetable())
	}
	if again := mustKiosk(t, cfg, db); again.client.Timetable() == nil || again.client.Timetable().Sessions[1].ID != "s1" {
		t.Errorf("timetable not kept across a restart: %+v", again.client.Timetable())
	}
	if !hist[early.ID] || hist[late.ID] {
		t.Fatalf("historical: early event %v (want true), live event %v (want false)", hist[early.ID], hist[late.ID])
	}
}

// TestContractRefusesCentral: central messages that break the contract are
// refused before use; a bad user record is refused alone.
func TestContractRefusesCentral(t *testing.T) {
	c := mustContract(t)
	tp := ksync.Topics{Prefix: "kiosk", Site: testSite, Device: "k1"}
	good := randomUser("u1", 1, 1, 1)
	wu, _ := json.Marshal(ksync.EncodeUserRecord(&good, ksync.DtypeFloat32))
	for _, tc := range []struct {
		name, topic, payload string
	}{
		{"users without seq", tp.Users(), `{"schema":1,"type":"users","site":"site1","users":[]}`},
		{"users seq as text", tp.Users(), `{"schema":1,"type":"users","site":"site1","seq":"7","users":[]}`},
		{"schema 2", tp.Head(), `{"schema":2,"type":"head","site":"site1","seq":1}`},
		{"head wrong type", tp.Head(), `{"schema":1,"type":"users","site":"site1","seq":1}`},
		{"ack keys not strings", tp.Down(ksync.DownAck), `{"schema":1,"type":"ack","device":"k1","keys":[1]}`},
		{"snapshot chunk zero chunks", tp.Down(ksync.DownSnapshot), `{"schema":1,"type":"snapshot","site":"site1","device":"k1","request_id":"r","snapshot_id":"s","seq":1,"chunk":0,"chunks":0,"users":[]}`},
		{"signed short sig", tp.Down(ksync.DownCommand), `{"schema":1,"type":"signed","purpose":"command","device":"k1","topic":"t","seq":1,"issued_at":1,"expires_at":2,"payload":"e30=","sig":"AAAA"}`},
		{"uplink topic", tp.Up(ksync.UpStatus), `{"schema":1,"type":"status"}`},
		{"not JSON", tp.Users(), `{"schema":1,`},
	} {
		if _, err := c.CheckDown(tc.topic, []byte(tc.payload), 1<<20); models.ErrorCode(err) != models.EINVALID {
			t.Errorf("%s: %v, want EINVALID", tc.name, err)
		}
	}
	users := `{"schema":1,"type":"users","site":"site1","seq":3,"users":[` + string(wu) +
		`,{"op":"upsert","id":"u2","version":1,"email":"not an email"},{"op":"delete","id":"u3","version":0},` + string(wu) + `]}`
	bad, err := c.CheckDown(tp.Users(), []byte(users), 1<<20)
	if err != nil || len(bad) != 2 || bad[1] == nil || bad[2] == nil {
		t.Fatalf("records one by one: bad %v, err %v", bad, err)
	}
	if _, err := c.CheckDown(tp.Users(), []byte(users), 100); models.ErrorCode(err) != models.ETOOLARGE {
		t.Fatalf("oversized: %v", err)
	}
	for purpose, payload := range map[string]string{
		ksync.DownCommand: `{"args":{}}`,
		ksync.DownAccount: `{"op":"upsert","email":"a@example.org","version":0}`,
		ksync.DownConfig:  `[1,2]`,
	} {
		if err := c.CheckInner(purpose, []byte(payload)); models.ErrorCode(err) != models.EINVALID {
			t.Errorf("%s payload %s: %v, want EINVALID", purpose, payload, err)
		}
	}
}
