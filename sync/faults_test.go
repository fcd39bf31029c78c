package sync_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/recognizer"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

const faultEvents = 10000

func TestMain(m *testing.M) {
	if os.Getenv("KIOSK_SYNC_CHILD") == "1" {
		os.Exit(runChildKiosk())
	}
	os.Exit(m.Run())
}

// recordEvents records attendance until the store holds total events, in
// bursts, waking the client after each.
func recordEvents(ctx context.Context, s models.Store, c *ksync.Client, device string, total int) error {
	_, have, err := s.ListAttendance(ctx, models.AttendanceFilter{Limit: 1})
	if err != nil {
		return err
	}
	for i := have; i < total; i++ {
		ev := &models.AttendanceEvent{UserID: fmt.Sprintf("u%03d", i%300), Time: time.Now().UTC(), KioskID: device, Distance: 0.4}
		if err := s.RecordAttendance(ctx, ev); err != nil {
			return err
		}
		if i%50 == 49 {
			c.Notify()
			time.Sleep(10 * time.Millisecond) // ~4,000 events/s: a stream, not one burst
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	c.Notify()
	return nil
}

// checkDelivered asserts zero lost events: every event in the store reached
// central, central received nothing else, and the outbox is empty.
func checkDelivered(t *testing.T, s models.Store, reg *registrysim.Registry) {
	t.Helper()
	ctx := context.Background()
	got := reg.Received()
	n := 0
	err := s.ForEachAttendance(ctx, models.AttendanceFilter{}, func(ev *models.AttendanceEvent) error {
		n++
		if got[ev.ID] == 0 {
			return fmt.Errorf("event %s lost", ev.ID)
		}
		if ev.SyncState != models.SyncAcked {
			return fmt.Errorf("event %s not marked acked", ev.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != faultEvents || len(got) != faultEvents {
		t.Fatalf("store holds %d events, central received %d distinct keys; want %d", n, len(got), faultEvents)
	}
	if l, _ := s.OutboxLen(ctx); l != 0 {
		t.Fatalf("outbox still holds %d messages", l)
	}
	st := reg.Stats()
	if st.Invalid != 0 {
		t.Fatalf("%d uplink messages broke the contract", st.Invalid)
	}
	t.Logf("%d events delivered, %d duplicate deliveries (same uuid)", st.Received, st.Duplicates)
}

// The broker is killed (-9) and restarted mid-stream.
func TestFaultBrokerKilled(t *testing.T) {
	b := synctest.MustMosquitto(t)
	reg := mustRegistry(t, b.URL, nil)
	db := bolttest.MustOpenDB(t)
	k := mustKiosk(t, testConfig(b.URL, "kiosk-bk"), db)
	waitConnected(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- recordEvents(ctx, db, k.client, "kiosk-bk", faultEvents) }()
	if err := reg.WaitFor(ctx, func() bool { return reg.Stats().Received >= 3000 }); err != nil {
		t.Fatal(err)
	}
	b.Kill()
	time.Sleep(time.Second)
	b.Start()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := reg.WaitFor(ctx, func() bool { n, _ := db.OutboxLen(ctx); return n == 0 }); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, db, reg)
	if k.client.Status().Counters.ConnectionsLost == 0 {
		t.Fatal("the kiosk never noticed the broker's death")
	}
}

// The broker is unreachable for 60 s (a silent network: the kiosk notices
// through its keepalive), then comes back.
func TestFaultBrokerUnreachable(t *testing.T) {
	outage := 60 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	b := synctest.MustMosquitto(t)
	p := synctest.MustProxy(t, fmt.Sprintf("127.0.0.1:%d", b.Port))
	reg := mustRegistry(t, b.URL, nil)
	db := bolttest.MustOpenDB(t)
	k := mustKiosk(t, testConfig(p.URL, "kiosk-un"), db)
	waitConnected(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), outage+3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- recordEvents(ctx, db, k.client, "kiosk-un", faultEvents) }()
	if err := reg.WaitFor(ctx, func() bool { return reg.Stats().Received >= 3000 }); err != nil {
		t.Fatal(err)
	}
	p.Pause()
	time.Sleep(outage)
	if k.client.Status().Connected {
		t.Fatal("the kiosk did not notice the outage")
	}
	p.Resume()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := reg.WaitFor(ctx, func() bool { n, _ := db.OutboxLen(ctx); return n == 0 }); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, db, reg)
}

// The kiosk process is killed (-9) mid-publish and restarted: it runs as a
// subprocess of the test binary.
func TestFaultKioskKilled(t *testing.T) {
	b := synctest.MustMosquitto(t)
	reg := mustRegistry(t, b.URL, nil)
	dbPath := t.TempDir() + "/kiosk.db"
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "KIOSK_SYNC_CHILD=1", "KIOSK_CHILD_DB="+dbPath, "KIOSK_CHILD_BROKER="+b.URL,
			"KIOSK_CHILD_TOTAL="+strconv.Itoa(faultEvents))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	child := start()
	if err := reg.WaitFor(ctx, func() bool { return reg.Stats().Received >= 3000 }); err != nil {
		child.Process.Kill()
		t.Fatal(err)
	}
	_ = child.Process.Signal(syscall.SIGKILL)
	_ = child.Wait()
	killedAt := reg.Stats().Received
	child = start()
	waited := make(chan error, 1)
	go func() { waited <- child.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("restarted kiosk: %v", err)
		}
	case <-ctx.Done():
		child.Process.Kill()
		t.Fatal("restarted kiosk did not finish")
	}
	db := bolt.NewDB(dbPath)
	db.NoSync = true
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed after central had %d events", killedAt)
	checkDelivered(t, db, reg)
}

// runChildKiosk is the kiosk process of TestFaultKioskKilled: it records
// events until the store holds the total, then waits until all are acked.
func runChildKiosk() int {
	total, _ := strconv.Atoi(os.Getenv("KIOSK_CHILD_TOTAL"))
	db := bolt.NewDB(os.Getenv("KIOSK_CHILD_DB"))
	db.NoSync = true // a killed process loses nothing the kernel has
	if err := db.Open(); err != nil {
		fmt.Fprintln(os.Stderr, "child: open store:", err)
		return 1
	}
	defer db.Close()
	device := cmp.Or(os.Getenv("KIOSK_CHILD_DEVICE"), "kiosk-kill")
	c := ksync.NewClient(testConfig(os.Getenv("KIOSK_CHILD_BROKER"), device), db, recognizer.NewGallery(db, newTestMatcher(), nil), nil)
	if err := c.Open(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child: open client:", err)
		return 1
	}
	defer c.Close()
	if os.Getenv("KIOSK_CHILD_HOLD") == "1" {
		select {} // until killed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := recordEvents(ctx, db, c, device, total); err != nil {
		fmt.Fprintln(os.Stderr, "child: record:", err)
		return 1
	}
	for {
		if n, _ := db.OutboxLen(ctx); n == 0 {
			return 0
		}
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "child: outbox not drained")
			return 1
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The kiosk process is killed (-9) while connected: the broker publishes
// its Will, so central sees state offline, and the status stays retained
// for a central that subscribes later.
func TestWillOnKioskKilled(t *testing.T) {
	b := synctest.MustMosquitto(t)
	reg := mustRegistry(t, b.URL, nil)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KIOSK_SYNC_CHILD=1", "KIOSK_CHILD_HOLD=1", "KIOSK_CHILD_DEVICE=kiosk-will",
		"KIOSK_CHILD_DB="+t.TempDir()+"/kiosk.db", "KIOSK_CHILD_BROKER="+b.URL)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	state := func() string { s, _ := reg.DeviceStatus("kiosk-will"); return s.State }
	if err := reg.WaitFor(ctx, func() bool { return state() == "online" }); err != nil {
		t.Fatalf("kiosk never online: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	if err := reg.WaitFor(ctx, func() bool { return state() == "offline" }); err != nil {
		t.Fatalf("central never saw the Will: %v", err)
	}
	keepAlive := testConfig(b.URL, "x").KeepAlive
	t.Logf("offline %s after kill -9 (keepalive %s)", time.Since(killed).Round(10*time.Millisecond), keepAlive)
	// A central subscribing now gets the retained offline status.
	late := synctest.MustSniffer(t, b.URL, "late-central", "kiosk/+/device/kiosk-will/up/status")
	waitFor(t, 10*time.Second, "retained status", func() bool { return len(late.Messages()) > 0 })
	m := late.Messages()[0]
	var st ksync.StatusMessage
	if err := json.Unmarshal(m.Payload, &st); err != nil || !m.Retained || st.State != "offline" || st.Device != "kiosk-will" {
		t.Fatalf("retained status: retained=%v %s (%v)", m.Retained, m.Payload, err)
	}
}

// A silent network (no bytes either way, no reset): the broker publishes
// the Will once the kiosk's keepalive lapses (1.5 x keep_alive after the
// last packet, as Mosquitto checks it).
func TestWillOnSilentNetwork(t *testing.T) {
	b := synctest.MustMosquitto(t)
	p := synctest.MustProxy(t, fmt.Sprintf("127.0.0.1:%d", b.Port))
	reg := mustRegistry(t, b.URL, nil)
	cfg := testConfig(p.URL, "kiosk-silent")
	k := mustKiosk(t, cfg, nil)
	waitConnected(t, k)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	state := func() string { s, _ := reg.DeviceStatus("kiosk-silent"); return s.State }
	if err := reg.WaitFor(ctx, func() bool { return state() == "online" }); err != nil {
		t.Fatal(err)
	}
	p.Pause()
	paused := time.Now()
	if err := reg.WaitFor(ctx, func() bool { return state() == "offline" }); err != nil {
		t.Fatalf("central never saw the Will: %v", err)
	}
	took := time.Since(paused)
	t.Logf("offline %s after the network went silent (keepalive %s)", took.Round(10*time.Millisecond), cfg.KeepAlive)
	if took < cfg.KeepAlive || took > 4*cfg.KeepAlive {
		t.Fatalf("Will after %s, want a few keepalives (%s)", took, cfg.KeepAlive)
	}
	p.Resume()
	if err := reg.WaitFor(ctx, func() bool { return state() == "online" }); err != nil {
		t.Fatalf("kiosk never back online: %v", err)
	}
}
