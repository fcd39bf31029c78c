package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device"
)

// mustNotifySocket listens on a unixgram socket as systemd does for
// NOTIFY_SOCKET and delivers each datagram on the returned channel.
func mustNotifySocket(tb testing.TB) (string, <-chan string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	ch := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}

// waitNotify returns the first datagram containing want, failing after d.
func waitNotify(tb testing.TB, ch <-chan string, want string, d time.Duration) {
	tb.Helper()
	deadline := time.After(d)
	for {
		select {
		case msg := <-ch:
			if strings.Contains(msg, want) {
				return
			}
		case <-deadline:
			tb.Fatalf("no %s on the notify socket within %s", want, d)
		}
	}
}

// TestNotify_ReadyWatchdogStopping runs the daemon under a NOTIFY_SOCKET
// the test owns: READY=1 once it serves, WATCHDOG=1 while its loops make
// progress, no more pings once a loop stalls, pings again when it recovers,
// RELOADING=1/READY=1 around a reload and STOPPING=1 at Close.
func TestNotify_ReadyWatchdogStopping(t *testing.T) {
	sock, ch := mustNotifySocket(t)
	var out bytes.Buffer
	m := MustMain(t, &out)
	m.Getenv = func(k string) string {
		return map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "100000"}[k]
	}
	m.StallAfter = 300 * time.Millisecond
	// A loop the test drives, watched like sync's: it goes round every
	// 20 ms until the test stalls it.
	var beat atomic.Int64
	var stalled atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if !stalled.Load() {
				beat.Store(time.Now().UnixNano())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	m.addLoop(beatCheck("test loop", func() time.Time { return time.Unix(0, beat.Load()) }, m.StallAfter))

	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	waitNotify(t, ch, "READY=1", 5*time.Second)
	if code := mustGetJSON(t, m.API.URL()+"/readyz", "", nil); code != 200 {
		t.Fatalf("READY=1 sent but /readyz %d", code)
	}
	waitNotify(t, ch, "WATCHDOG=1", time.Second)

	stalled.Store(true)
	// Pings may continue until the stall is older than StallAfter, then stop.
	time.Sleep(m.StallAfter + 150*time.Millisecond)
	drain(ch)
	select {
	case msg := <-ch:
		t.Fatalf("stalled loop, yet the watchdog was pinged: %q", msg)
	case <-time.After(500 * time.Millisecond): // five ping intervals
	}
	stalled.Store(false)
	waitNotify(t, ch, "WATCHDOG=1", time.Second)

	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	waitNotify(t, ch, "RELOADING=1", time.Second)
	waitNotify(t, ch, "READY=1", time.Second)

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	waitNotify(t, ch, "STOPPING=1", time.Second)
}

func drain(ch <-chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestPipelineCheck: the camera pipeline is stuck when a running camera
// delivers no frame, or delivers frames the gates do not take, for longer
// than stallAfter; a reconnecting camera is not stuck.
func TestPipelineCheck(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	st := device.CameraStatus{State: device.CameraRunning, Since: t0}
	var taken time.Time
	check := pipelineCheck(func() device.CameraStatus { return st }, func() time.Time { return taken }, 10*time.Second)

	if err := check(at(time.Second)); err != nil {
		t.Fatalf("just opened: %v", err)
	}
	// Frames keep coming and being taken: fine however long.
	for i := 1; i <= 30; i++ {
		st.LastFrameAt, taken = at(time.Duration(i)*time.Second), at(time.Duration(i)*time.Second)
		if err := check(at(time.Duration(i) * time.Second)); err != nil {
			t.Fatalf("healthy at %ds: %v", i, err)
		}
	}
	// The gates stop taking frames while frames keep arriving.
	for i := 31; i <= 40; i++ {
		st.LastFrameAt = at(time.Duration(i) * time.Second)
		if err := check(at(time.Duration(i) * time.Second)); err != nil {
			t.Fatalf("stuck reported after only %ds: %v", i-30, err)
		}
	}
	st.LastFrameAt = at(41 * time.Second)
	if err := check(at(41 * time.Second)); err == nil || !strings.Contains(err.Error(), "gates took none") {
		t.Fatalf("gates stalled 11 s: %v", err)
	}
	// The camera goes away: reconnecting is reported in status, not stuck.
	st.State, st.Since = device.CameraReconnecting, at(46*time.Second)
	if err := check(at(100 * time.Second)); err != nil {
		t.Fatalf("reconnecting: %v", err)
	}
	// Open again but silent.
	st.State, st.Since = device.CameraRunning, at(100*time.Second)
	if err := check(at(105 * time.Second)); err != nil {
		t.Fatalf("just reopened: %v", err)
	}
	if err := check(at(111 * time.Second)); err == nil || !strings.Contains(err.Error(), "no frame") {
		t.Fatalf("silent camera: %v", err)
	}
}
