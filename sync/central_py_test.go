package sync_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/synctest"
)

// TestPythonCentral runs the Python reference client for central against a
// kiosk (the sync client on a real store and matcher) and a real Mosquitto:
// central pushes users built from Django-like records with face_recognition
// encodings; the kiosk identifies another photo of one of them with its own
// dlib encoder and records the attendance; central receives it, stores it
// and acks it, and the kiosk's outbox ends empty. Enrolment, unknown counts,
// status, a signed command and a signed account push (signed in Python,
// verified in Go) go the same way.
func TestPythonCentral(t *testing.T) {
	ctx := context.Background()
	people := []map[string]string{}
	for i, p := range []struct{ dir, first, last, group string }{
		{"obama", "Barack", "Obama", "SE-1A"}, {"biden", "Joe", "Biden", "SE-1A"},
		{"kit_harington", "Kit", "Harington", "SE-1B"}, {"rose_leslie", "Rose", "Leslie", "SE-1B"},
	} {
		people = append(people, map[string]string{"id": fmt.Sprint(1001 + i), "email": p.dir + "@example.org",
			"first_name": p.first, "last_name": p.last, "role": "trainee", "class_group": p.group,
			"photo": recognizertest.Testdata(t, "people/"+p.dir+"/1.jpg"), "updated_at": "2025-03-14T07:59:00+00:00"})
	}
	b := synctest.MustMosquitto(t)
	central := synctest.MustPyCentral(t, b.URL, testSite, testKey.Seed(), people)
	encoded := central.Expect(60*time.Second, "encoded", nil)
	central.Expect(30*time.Second, "published", nil)

	db := bolttest.MustOpenDBWith(t, func(db *bolt.DB) { db.Now = time.Now })
	k, unknown := mustCountingKiosk(t, testConfig(b.URL, "kiosk-py"), db)
	waitConnected(t, k)
	waitFor(t, 30*time.Second, "4 users in the matcher", func() bool { return k.matcher.Users() == 4 })

	// The stored descriptors are face_recognition's, to float32 precision.
	for _, u := range encoded["users"].([]any) {
		u := u.(map[string]any)
		encs, err := db.ListEncodings(ctx, u["id"].(string))
		if err != nil || len(encs) != 1 {
			t.Fatalf("user %s: %d encodings, %v", u["id"], len(encs), err)
		}
		for i, f := range synctest.Floats(u["descriptor"]) {
			if encs[0].Descriptor[i] != f {
				t.Fatalf("user %s: descriptor[%d] %v on the kiosk, %v from face_recognition", u["id"], i, encs[0].Descriptor[i], f)
			}
		}
	}

	// Identify another photo of Obama with the kiosk's encoder.
	ecfg := recognizer.DefaultEncoderConfig()
	ecfg.ModelsDir = recognizertest.ModelsDir(t)
	enc := recognizer.NewEncoder(ecfg)
	if err := enc.Open(); err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	img, err := os.ReadFile(recognizertest.Testdata(t, "people/obama/2.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	face, err := enc.EncodeOne(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	m := k.matcher.Identify(&face.Descriptor)
	if m.UserID != "1001" {
		t.Fatalf("obama/2.jpg identified as %q (best %q at %.3f)", m.UserID, m.BestUserID, m.Distance)
	}
	ev := &models.AttendanceEvent{UserID: m.UserID, Time: time.Now().UTC(), KioskID: "kiosk-py", Distance: m.Distance, Liveness: "blink"}
	if err := db.RecordAttendance(ctx, ev); err != nil {
		t.Fatal(err)
	}
	k.client.Notify()
	att := central.Expect(15*time.Second, "attendance", func(e map[string]any) bool { return e["key"] == ev.ID })
	if p := att["payload"].(map[string]any); p["user_id"] != "1001" || p["id"] != ev.ID || att["historical"] != false {
		t.Fatalf("attendance at central: %v", att)
	}

	// A user enrolled on the kiosk reaches central with its descriptor.
	local := models.UserRecord{User: models.User{ID: "local-7", Email: "new@example.org", FullName: "New Trainee",
		Role: models.RoleTrainee, Status: models.UserActive, UpdatedAt: time.Now().UTC()},
		Encodings: []models.FaceEncoding{{ID: "le1", UserID: "local-7", Descriptor: face.Descriptor, Source: models.SourceLocal,
			Model: models.DefaultModelName, CreatedAt: time.Now().UTC()}}}
	msg, err := models.NewEnrolmentMessage(&local)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Enqueue(ctx, msg); err != nil {
		t.Fatal(err)
	}
	k.client.Notify()
	en := central.Expect(15*time.Second, "enrolment", func(e map[string]any) bool { return e["key"] == msg.Key })
	if en["id"] != "local-7" || en["op"] != "upsert" || en["version"] != 0.0 || len(en["descriptors"].([]any)) != 1 {
		t.Fatalf("enrolment at central: %v", en)
	}
	for i, f := range synctest.Floats(en["descriptors"].([]any)[0]) {
		if face.Descriptor[i] != f {
			t.Fatalf("enrolled descriptor[%d]: %v at central, %v on the kiosk", i, f, face.Descriptor[i])
		}
	}

	// Unknown faces, counted by the camera, reach central.
	unknown.Store(2)
	un := central.Expect(15*time.Second, "unknown", nil)
	if un["payload"].(map[string]any)["count"] != 2.0 {
		t.Fatalf("unknown at central: %v", un)
	}

	// Signed in Python, verified and applied by the kiosk.
	central.Send(map[string]any{"cmd": "command", "device": "kiosk-py", "name": ksync.CmdPublishStatus})
	res := central.Expect(15*time.Second, "command_result", func(e map[string]any) bool { return e["purpose"] == "command" })
	if res["ok"] != true || res["name"] != ksync.CmdPublishStatus {
		t.Fatalf("command result: %v", res)
	}
	const djangoHash = "pbkdf2_sha256$600000$Ax5QYgVtmHZ2$Oq0gVQwoB9jzg6z2ZBJZUz4cLHtBMJt4CRLgmJGwXY8="
	central.Send(map[string]any{"cmd": "account", "device": "kiosk-py", "email": "tech@example.org", "role": "technician",
		"password_hash": djangoHash, "version": 1})
	res = central.Expect(15*time.Second, "command_result", func(e map[string]any) bool { return e["purpose"] == "account" })
	if res["ok"] != true {
		t.Fatalf("account result: %v", res)
	}
	if a, err := db.GetAccount(ctx, "tech@example.org"); err != nil || a.PasswordHash != djangoHash || a.Source != models.SourceCentral {
		t.Fatalf("account pushed from Python: %+v %v", a, err)
	}
	// A timetable signed in Python: the kiosk stores it and finds the
	// session of Obama's class group among two open in Lab 2. An earlier
	// session, already over, is summarised: Obama came late, Biden not.
	start := time.Now().UTC().Truncate(time.Second).Add(-10 * time.Minute)
	iso := func(d time.Duration) string { return start.Add(d).Format(time.RFC3339) }
	late := &models.AttendanceEvent{UserID: "1001", SessionID: "ict100-1a", Time: start.Add(-2*time.Hour + 12*time.Minute), KioskID: "kiosk-py", Distance: 0.4}
	if err := db.RecordAttendance(ctx, late); err != nil {
		t.Fatal(err)
	}
	central.Send(map[string]any{"cmd": "timetable", "device": "kiosk-py", "sessions": []map[string]any{
		{"id": "ict101-1b", "class_group": "SE-1B", "room": "Lab 2", "trainer": "t2@example.org", "start": iso(-time.Minute), "end": iso(time.Hour), "late_after": iso(5 * time.Minute)},
		{"id": "ict101-1a", "class_group": "SE-1A", "room": "Lab 2", "trainer": "t1@example.org", "start": iso(0), "end": iso(time.Hour), "late_after": iso(15 * time.Minute)},
		{"id": "ict100-1a", "class_group": "SE-1A", "room": "Lab 2", "trainer": "t1@example.org", "start": iso(-2 * time.Hour), "end": iso(-time.Hour), "late_after": iso(-2*time.Hour + 10*time.Minute)},
	}})
	res = central.Expect(15*time.Second, "command_result", func(e map[string]any) bool { return e["purpose"] == ksync.DownTimetable })
	if res["ok"] != true {
		t.Fatalf("timetable result: %v", res)
	}
	s, member, ok := k.client.Timetable().SessionFor("Lab 2", "SE-1A", time.Now())
	if !ok || !member || s.ID != "ict101-1a" || s.Trainer != "t1@example.org" || s.Late(time.Now()) {
		t.Fatalf("session for SE-1A now: %+v member=%v ok=%v", s, member, ok)
	}
	sum := central.Expect(15*time.Second, "session_summary", nil)["payload"].(map[string]any)
	if c := sum["counts"].(map[string]any); sum["session"].(map[string]any)["id"] != "ict100-1a" || c["late"] != 1.0 || c["absent"] != 1.0 || c["on_time"] != 0.0 ||
		sum["late"].([]any)[0].(map[string]any)["minutes_after_start"] != 12.0 || sum["absent"].([]any)[0] != "1002" {
		t.Fatalf("session summary at central: %v", sum)
	}
	central.Expect(15*time.Second, "status", func(e map[string]any) bool { return e["state"] == "online" })

	// Everything central stored was acked: the outbox is empty and the
	// event is marked acked.
	waitFor(t, 15*time.Second, "empty outbox", func() bool { n, _ := db.OutboxLen(ctx); return n == 0 })
	evs, _, err := db.ListAttendance(ctx, models.AttendanceFilter{})
	if err != nil || len(evs) != 2 || evs[0].SyncState != models.SyncAcked || evs[1].SyncState != models.SyncAcked {
		t.Fatalf("attendance on the kiosk: %+v %v", evs, err)
	}
	central.Send(map[string]any{"cmd": "quit"})
	central.Expect(15*time.Second, "closed", nil)
}
