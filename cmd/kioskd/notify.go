package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/kioskd/kioskd/device"
)

// notifier speaks systemd's sd_notify protocol: one datagram per state
// change on the socket named by $NOTIFY_SOCKET. A nil notifier (not run by
// systemd) does nothing.
type notifier struct {
	conn *net.UnixConn
}

// newNotifier connects to $NOTIFY_SOCKET; it returns nil when the variable
// is unset. A leading '@' names an abstract socket, as in systemd.
func newNotifier(getenv func(string) string) (*notifier, error) {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil, nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("NOTIFY_SOCKET %s: %w", path, err)
	}
	return &notifier{conn: conn}, nil
}

// Notify sends state lines such as "READY=1" or "WATCHDOG=1".
func (n *notifier) Notify(state ...string) error {
	if n == nil {
		return nil
	}
	_, err := n.conn.Write([]byte(strings.Join(state, "\n")))
	return err
}

// Close closes the socket.
func (n *notifier) Close() error {
	if n == nil {
		return nil
	}
	return n.conn.Close()
}

// watchdogInterval returns how often systemd wants WATCHDOG=1 ($WATCHDOG_USEC,
// for this process when $WATCHDOG_PID is set), or 0 when it wants none.
func watchdogInterval(getenv func(string) string, pid int) time.Duration {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}

// loopCheck is one long-running loop as the watchdog sees it: nil while it
// makes progress, an error saying what is stuck once it has not for too long.
type loopCheck func(now time.Time) error

// alive runs every loop check; the watchdog pings only while all pass, so
// systemd restarts a kioskd whose camera pipeline or sync loop is stuck.
func (m *Main) alive(now time.Time) error {
	m.mu.Lock()
	checks := m.loops
	m.mu.Unlock()
	for _, c := range checks {
		if err := c(now); err != nil {
			return err
		}
	}
	return nil
}

// addLoop registers a loop check with the watchdog.
func (m *Main) addLoop(c loopCheck) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loops = append(m.loops, c)
}

// runWatchdog sends WATCHDOG=1 every interval/2 while alive passes, until
// ctx ends; a failing check is logged once per change, and the pings stop.
func (m *Main) runWatchdog(ctx context.Context, interval time.Duration) {
	log := m.logger("watchdog")
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			err := m.alive(now)
			switch {
			case err == nil && lastErr != "":
				log.Info("loops make progress again; watchdog pings resume")
				lastErr = ""
			case err != nil && err.Error() != lastErr:
				lastErr = err.Error()
				log.Error("a loop is stuck: watchdog pings stop and systemd will restart kioskd", "err", err)
			}
			if err == nil {
				if nerr := m.notify.Notify("WATCHDOG=1"); nerr != nil {
					log.Warn("watchdog ping failed", "err", nerr)
				}
			}
		}
	}
}

// pipelineCheck watches the camera pipeline: while the camera is running,
// frames must keep arriving and the gates must keep taking them. A camera
// reconnecting, ended or stopped is not stuck: status reports it.
func pipelineCheck(status func() device.CameraStatus, taken func() time.Time, stallAfter time.Duration) loopCheck {
	return func(now time.Time) error {
		s := status()
		if s.State != device.CameraRunning {
			return nil
		}
		last := latest(s.LastFrameAt, s.Since)
		if d := now.Sub(last); d > stallAfter {
			return fmt.Errorf("camera pipeline: the camera is open but delivered no frame for %s", d.Round(time.Second))
		}
		took := latest(taken(), s.Since)
		if d := now.Sub(took); s.LastFrameAt.After(took) && d > stallAfter {
			return fmt.Errorf("camera pipeline: frames arrive but the gates took none for %s", d.Round(time.Second))
		}
		return nil
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// beatCheck watches a loop that stamps when it last went round.
func beatCheck(name string, beat func() time.Time, stallAfter time.Duration) loopCheck {
	return func(now time.Time) error {
		b := beat()
		if b.IsZero() {
			return nil // not started yet
		}
		if d := now.Sub(b); d > stallAfter {
			return fmt.Errorf("%s: loop has not gone round for %s", name, d.Round(time.Second))
		}
		return nil
	}
}
