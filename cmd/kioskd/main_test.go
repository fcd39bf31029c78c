package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/encodertest"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

// MustEncodePhoto returns the one face descriptor of a shared photo.
func MustEncodePhoto(tb testing.TB, enc *recognizer.Encoder, rel string) models.Descriptor {
	tb.Helper()
	b, err := os.ReadFile(recognizertest.Testdata(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	f, err := enc.EncodeOne(context.Background(), b)
	if err != nil {
		tb.Fatalf("encode %s: %v", rel, err)
	}
	return f.Descriptor
}

// MustLogin logs in through the API and returns the bearer token.
func MustLogin(tb testing.TB, base, email, password string) string {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil || out.Token == "" {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	return out.Token
}

func mustGetJSON(tb testing.TB, url, token string, v any) int {
	tb.Helper()
	return mustDoJSON(tb, "GET", url, token, nil, v)
}

// TestDaemon_NoCamera runs kioskd as `make run` does (no camera, no broker)
// and checks it serves, authenticates and shuts down cleanly.
func TestDaemon_NoCamera(t *testing.T) {
	var out bytes.Buffer
	admin := MustMain(t, &out)
	admin.Command, admin.Args = "admin", []string{"add", "--email", "admin@example.org", "--role", "admin"}
	admin.Stdin = strings.NewReader("kiosk-admin-pass-42\n")
	if err := admin.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	dataDir := admin.Config.DataDir
	admin.Close()

	m := MustMain(t, &out)
	m.Config.DataDir = dataDir
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := m.API.URL()
	if code := mustGetJSON(t, base+"/healthz", "", nil); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code := mustGetJSON(t, base+"/readyz", "", nil); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	if code := mustGetJSON(t, base+"/api/v1/status", "", nil); code != 401 {
		t.Fatalf("/api/v1/status without token: %d, want 401", code)
	}
	tok := MustLogin(t, base, "admin@example.org", "kiosk-admin-pass-42")
	var st map[string]any
	if code := mustGetJSON(t, base+"/api/v1/status", tok, &st); code != 200 {
		t.Fatalf("/api/v1/status: %d", code)
	}
	if st["device_id"] != m.Config.DeviceID {
		t.Fatalf("status device_id %v, want %s", st["device_id"], m.Config.DeviceID)
	}
	// Without a camera or a broker, /metrics still shows the outbox and
	// nothing of the parts that are not running.
	series := mustScrape(t, base)
	if n := mustSeries(t, series, "kioskd_outbox_messages"); n != 0 {
		t.Fatalf("kioskd_outbox_messages %v on a fresh store", n)
	}
	if _, ok := series["kioskd_camera_frames_total"]; ok {
		t.Fatal("camera metrics without a camera")
	}
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("Close took %s", d)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "keys", "descriptors.key")); err != nil {
		t.Fatalf("descriptor key not kept outside the database: %v", err)
	}
}

// TestDaemon_VideoToCentral is the whole kiosk end to end: central pushes
// two people over a real Mosquitto broker, kioskd replays the real Hamilton
// clip through OpenCV and dlib, records attendance, and central receives and
// acknowledges exactly those events.
func TestDaemon_VideoToCentral(t *testing.T) {
	recognizertest.Testdata(t, "video/short_hamilton_clip.mp4") // skips without the shared set
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	broker := synctest.MustMosquitto(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)

	enc := encodertest.MustEncoder(t)
	now := time.Now().UTC()
	people := []models.UserRecord{
		{User: models.User{ID: "u-lin", Email: "lin@example.org", FullName: "Lin-Manuel Miranda", Role: models.RoleTrainer, Status: models.UserActive, Version: 1, UpdatedAt: now},
			Encodings: []models.FaceEncoding{{ID: "e-lin-1", UserID: "u-lin", Descriptor: MustEncodePhoto(t, enc, "people/lin_manuel_miranda/1.png"), Source: models.SourceCentral, Model: models.DefaultModelName, CreatedAt: now}}},
		{User: models.User{ID: "u-alex", Email: "alex@example.org", FullName: "Alex Lacamoire", Role: models.RoleTrainee, Status: models.UserActive, Version: 1, UpdatedAt: now},
			Encodings: []models.FaceEncoding{
				{ID: "e-alex-1", UserID: "u-alex", Descriptor: MustEncodePhoto(t, enc, "people/alex_lacamoire/1.jpg"), Source: models.SourceCentral, Model: models.DefaultModelName, CreatedAt: now},
				{ID: "e-alex-2", UserID: "u-alex", Descriptor: MustEncodePhoto(t, enc, "people/alex_lacamoire/2.png"), Source: models.SourceCentral, Model: models.DefaultModelName, CreatedAt: now}}},
		{User: models.User{ID: "u-obama", Email: "obama@example.org", FullName: "Barack Obama", Role: models.RoleTrainee, Status: models.UserActive, Version: 1, UpdatedAt: now},
			Encodings: []models.FaceEncoding{{ID: "e-obama-1", UserID: "u-obama", Descriptor: MustEncodePhoto(t, enc, "people/obama/1.jpg"), Source: models.SourceCentral, Model: models.DefaultModelName, CreatedAt: now}}},
	}
	reg := registrysim.New(registrysim.Config{Broker: broker.URL, Site: "campus", PrivateKey: priv}, slog.New(slog.DiscardHandler))
	reg.Set(people...)
	if err := reg.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	m := mustClipMain(t, broker.URL, "door-1", pub, "video/short_hamilton_clip.mp4", true, ksync.DefaultConfig().UnknownInterval)
	// The clip is a stage shot, 640x360: Lin-Manuel Miranda's face is 87-105
	// px, around the kiosk's 90 px gate, so (as device's TestHamiltonClip)
	// the gate is lowered; otherwise a loaded machine, which drops paced
	// frames, may keep too few of his frames to show liveness.
	m.Config.Device.MinFaceSize = 70
	browser := mustKioskScreen(t) // started first: the clip plays from Run on
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	watchKioskScreen(t, browser, m.API.URL())
	// The kiosk starts with an empty cache: it asks for a snapshot.
	if err := reg.WaitFor(ctx, func() bool { return m.Matcher.Len() == 4 }); err != nil {
		t.Fatalf("gallery not synced: matcher holds %d descriptors", m.Matcher.Len())
	}
	// The person in front of the kiosk is greeted by name on its screen.
	seen := waitKioskText(t, browser, "Welcome, Lin-Manuel Miranda", 90*time.Second)
	t.Logf("kiosk screen showed: %q", seen)
	// Mid-clip, with sync and the pipeline busy, the watchdog sees progress.
	if err := m.alive(time.Now()); err != nil {
		t.Fatalf("watchdog check mid-clip: %v", err)
	}
	// Let the clip play out (275 frames at 29.97 fps) and the acks arrive.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && string(m.Pipeline.Status().State) != "ended" {
		time.Sleep(200 * time.Millisecond)
	}
	events, _, err := m.DB.ListAttendance(ctx, models.AttendanceFilter{Unlimited: true})
	if err != nil {
		t.Fatal(err)
	}
	byUser := map[string]int{}
	for _, ev := range events {
		byUser[ev.UserID]++
		if ev.KioskID != "door-1" {
			t.Errorf("event %s kiosk %q", ev.ID, ev.KioskID)
		}
	}
	t.Logf("events by user: %v", byUser)
	if byUser["u-obama"] != 0 {
		t.Fatalf("Obama is not in the clip but got %d events", byUser["u-obama"])
	}
	for id, n := range byUser {
		if n != 1 {
			t.Fatalf("user %s got %d events, want exactly one per person", id, n)
		}
	}
	// Lin-Manuel Miranda faces the camera in frames 84-212; Alex Lacamoire
	// never shows recognisably (device's TestHamiltonClip pins both).
	if byUser["u-lin"] != 1 || byUser["u-alex"] != 0 {
		t.Fatalf("events %v, want exactly one for u-lin", byUser)
	}
	// Central receives and acks every event: the outbox drains.
	if err := reg.WaitFor(ctx, func() bool {
		n, _ := m.DB.OutboxLen(ctx)
		return n == 0
	}); err != nil {
		n, _ := m.DB.OutboxLen(ctx)
		t.Fatalf("outbox not drained: %d left", n)
	}
	for _, ev := range events {
		if _, ok := reg.Payload(ev.ID); !ok {
			t.Fatalf("central never received event %s", ev.ID)
		}
	}
	// /metrics tells the same story as the store and central.
	series := mustScrape(t, m.API.URL())
	for name, want := range map[string]float64{
		`kioskd_camera_state{state="ended"}`:                  1,
		`kioskd_camera_reopens_total`:                         0,
		`kioskd_pipeline_decisions_total{outcome="recorded"}`: 1,
		`kioskd_pipeline_time_to_attendance_seconds_count`:    1,
		`kioskd_outbox_messages`:                              0,
		`kioskd_outbox_oldest_age_seconds`:                    0,
		`kioskd_sync_connected`:                               1,
		`kioskd_sync_rejected_total{reason="forged"}`:         0,
	} {
		if got := mustSeries(t, series, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	frames := mustSeries(t, series, "kioskd_camera_frames_total")
	gated := mustSeries(t, series, "kioskd_camera_frames_gated_total")
	passed := mustSeries(t, series, `kioskd_pipeline_gate_outcomes_total{outcome="passed"}`)
	idle := mustSeries(t, series, `kioskd_pipeline_gate_outcomes_total{outcome="idle"}`)
	encodes := mustSeries(t, series, "kioskd_pipeline_encodings_total")
	tta := mustSeries(t, series, "kioskd_pipeline_time_to_attendance_seconds_sum")
	acks := mustSeries(t, series, "kioskd_sync_acks_total")
	t.Logf("metrics: frames %v gated %v passed %v idle %v encodings %v time to attendance %.2fs acks %v", frames, gated, passed, idle, encodes, tta, acks)
	if frames < 200 || gated == 0 || gated > frames || passed == 0 || passed > gated || encodes == 0 {
		t.Errorf("pipeline counters not sane: frames %v gated %v passed %v encodings %v", frames, gated, passed, encodes)
	}
	if tta <= 0 || tta > 10 {
		t.Errorf("time to attendance %.2fs, want a fraction of a second to a few seconds", tta)
	}
	if acks < float64(len(events)) {
		t.Errorf("kioskd_sync_acks_total %v < %d events acknowledged", acks, len(events))
	}
	checkTechnicianPages(t, browser, m, "ended", "Lin-Manuel Miranda")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
