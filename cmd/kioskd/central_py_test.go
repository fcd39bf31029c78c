package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

// TestDaemon_PythonCentral is the integration a central team copies: the
// Python reference client (sync/central_py) pushes three people with
// face_recognition encodings computed from their photos, kioskd replays the
// real Hamilton clip through its camera pipeline, and central receives the
// attendance, stores and acks it; the kiosk's outbox ends empty, and the
// unknown faces the camera counted reach central too.
func TestDaemon_PythonCentral(t *testing.T) {
	if !recognizertest.HasSharedTestdata(t) {
		t.Skip("needs ../shared/testdata (the video clip); the fallback photo set has no video")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	broker := synctest.MustMosquitto(t)
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize) // tests only
	key := ed25519.NewKeyFromSeed(seed)
	people := []map[string]string{}
	for _, p := range []struct{ id, photo, first, last string }{
		{"2001", "people/lin_manuel_miranda/1.png", "Lin-Manuel", "Miranda"},
		{"2002", "people/alex_lacamoire/1.jpg", "Alex", "Lacamoire"},
		{"2003", "people/obama/1.jpg", "Barack", "Obama"},
	} {
		people = append(people, map[string]string{"id": p.id, "email": p.id + "@example.org", "first_name": p.first,
			"last_name": p.last, "role": "trainee", "class_group": "SE-1A", "photo": recognizertest.Testdata(t, p.photo),
			"updated_at": "2025-03-14T07:59:00+00:00"})
	}
	// Central's timetable: SE-1A's class began 20 minutes ago, late from 10.
	start := time.Now().UTC().Truncate(time.Second).Add(-20 * time.Minute)
	tt := filepath.Join(t.TempDir(), "timetable.json")
	b, _ := json.Marshal([]map[string]string{{"id": "ict101-se1a", "class_group": "SE-1A", "room": "Lab 2", "trainer": "t1@example.org",
		"start": start.Format(time.RFC3339), "end": start.Add(2 * time.Hour).Format(time.RFC3339), "late_after": start.Add(10 * time.Minute).Format(time.RFC3339)}})
	if err := os.WriteFile(tt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	central := synctest.MustPyCentral(t, broker.URL, "campus", seed, people, "--timetable", tt)
	central.Expect(90*time.Second, "published", nil)

	m := mustClipMain(t, broker.URL, "door-1", key.Public().(ed25519.PublicKey), "video/short_hamilton_clip.mp4", false, time.Second)
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	screen, stop := m.Bus.Subscribe(256)
	defer stop()
	// The kiosk starts empty and asks central for a snapshot (the
	// timetable comes first).
	for deadline := time.Now().Add(60 * time.Second); m.Matcher.Len() != 3; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gallery not synced from the Python central: matcher holds %d descriptors", m.Matcher.Len())
		}
	}
	att := central.Expect(120*time.Second, "attendance", nil)
	p := att["payload"].(map[string]any)
	if p["user_id"] != "2001" || p["kiosk_id"] != "door-1" || p["session_id"] != "ict101-se1a" || p["class_group"] != "SE-1A" ||
		p["member"] != true || p["punctuality"] != "late" || p["minutes_late"].(float64) < 20 {
		t.Fatalf("attendance at central: %v", att)
	}
	// The kiosk screen said so.
	for said := ""; !strings.Contains(said, "Welcome, Lin-Manuel Miranda") || !strings.Contains(said, " - Late (2"); {
		select {
		case f := <-screen:
			said = f.Message
		case <-time.After(10 * time.Second):
			t.Fatalf("the screen never said Lin-Manuel Miranda was late; last: %q", said)
		}
	}
	waitClipEnded(t, m)
	events, _, err := m.DB.ListAttendance(ctx, models.AttendanceFilter{Unlimited: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].UserID != "2001" || events[0].ID != att["key"] {
		t.Fatalf("events on the kiosk: %+v; central got %v", events, att)
	}
	// Central acked it: the outbox drains and the event is marked acked.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n, _ := m.DB.OutboxLen(ctx)
		ev, _, err := m.DB.ListAttendance(ctx, models.AttendanceFilter{})
		if n == 0 && err == nil && ev[0].SyncState == models.SyncAcked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained (%d left) or event not acked", n)
		}
	}
	// Every unknown face the camera counted reached central.
	unknown := int(m.Pipeline.Status().Unknown)
	got := 0
	if unknown > 0 {
		central.Expect(10*time.Second, "unknown", func(e map[string]any) bool {
			got += int(e["payload"].(map[string]any)["count"].(float64))
			return got >= unknown
		})
	}
	t.Logf("unknown faces: camera %d, central %d", unknown, got)
	if got != unknown {
		t.Fatalf("central received %d unknown faces, the camera counted %d", got, unknown)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDaemon_UnknownToCentral: a real person nobody enrolled walks up (a
// live clip); every unknown face the camera counts reaches central in
// unknown messages. Clips play unpaced here: every frame is processed, so
// a loaded machine cannot drop the frames a decision needs.
func TestDaemon_UnknownToCentral(t *testing.T) {
	if !recognizertest.HasSharedTestdata(t) {
		t.Skip("needs ../shared/testdata (the live clips); the fallback photo set has no video")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	broker := synctest.MustMosquitto(t)
	pub, priv, _ := ed25519.GenerateKey(nil)
	reg := registrysim.New(registrysim.Config{Broker: broker.URL, Site: "campus", PrivateKey: priv}, slog.New(slog.DiscardHandler))
	if err := reg.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	m := mustClipMain(t, broker.URL, "door-2", pub, "video/live/retalking-face2.mp4", false, 500*time.Millisecond)
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	waitClipEnded(t, m)
	unknown := int(m.Pipeline.Status().Unknown)
	if unknown == 0 {
		t.Fatal("the camera counted no unknown face in a clip of a person nobody enrolled")
	}
	sum := func() int {
		n := 0
		for key := range reg.Received() {
			p, _ := reg.Payload(key)
			var uf struct {
				Count int `json:"count"`
			}
			if json.Unmarshal(p, &uf) == nil {
				n += uf.Count
			}
		}
		return n
	}
	if err := reg.WaitFor(ctx, func() bool { return sum() >= unknown }); err != nil {
		t.Fatalf("central received %d unknown faces, the camera counted %d", sum(), unknown)
	}
	if got := sum(); got != unknown || reg.Stats().Invalid != 0 {
		t.Fatalf("central received %d unknown faces (%d invalid messages), the camera counted %d", got, reg.Stats().Invalid, unknown)
	}
	t.Logf("unknown faces: camera %d, central %d in %d messages", unknown, sum(), reg.Stats().ByKind[models.OutboxUnknown])
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// mustClipMain returns a kioskd, not yet running, of site "campus" that
// replays clip (a test data path; paced at its frame rate, dropping frames
// when busy, or every frame as fast as it can) and syncs with the broker,
// trusting pub.
func mustClipMain(t *testing.T, broker, device string, pub ed25519.PublicKey, clip string, pace bool, unknownEvery time.Duration) *Main {
	t.Helper()
	var out bytes.Buffer
	m := MustMain(t, &out)
	m.Config.DeviceID, m.Config.SiteID = device, "campus"
	m.Config.Sync.Broker = broker
	m.Config.Sync.RegistryPublicKey = base64.StdEncoding.EncodeToString(pub)
	m.Config.Sync.UnknownInterval = unknownEvery
	m.Config.Device.Source = recognizertest.Testdata(t, clip)
	m.Config.Device.Pace = pace
	if err := m.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitClipEnded waits until the camera pipeline has played its clip out.
func waitClipEnded(t *testing.T, m *Main) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); string(m.Pipeline.Status().State) != "ended"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the clip did not end")
		}
	}
}
