// Package synctest provides test helpers for package sync: a real Mosquitto
// broker (the Debian package) on a free loopback port with persistence on,
// certificates generated with crypto/x509, a TCP proxy that can make the
// broker unreachable, and fixtures.
package synctest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"
)

// Broker is a mosquitto process owned by a test.
type Broker struct {
	// URL is the broker's address for clients (tcp:// or ssl://).
	URL  string
	Port int
	Dir  string // config, persistence and log

	tb     testing.TB
	bin    string
	config string
	mu     gosync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
}

// BrokerOption changes the generated configuration.
type BrokerOption func(*brokerConf)

type brokerConf struct {
	tls       *Certs
	aclFile   string
	maxQueued int
	extra     []string
}

// WithTLS makes the listener TLS-only, requiring a client certificate from
// certs' CA and using its common name as the username (so ACL patterns
// with %u name the device).
func WithTLS(certs *Certs) BrokerOption { return func(c *brokerConf) { c.tls = certs } }

// WithACL applies a mosquitto ACL file.
func WithACL(path string) BrokerOption { return func(c *brokerConf) { c.aclFile = path } }

// WithMaxQueued sets max_queued_messages (per offline client); the default
// here is 100000.
func WithMaxQueued(n int) BrokerOption { return func(c *brokerConf) { c.maxQueued = n } }

// WithConfig appends raw configuration lines.
func WithConfig(lines ...string) BrokerOption {
	return func(c *brokerConf) { c.extra = append(c.extra, lines...) }
}

// MustMosquitto starts mosquitto on a free loopback port with a generated
// configuration in tb.TempDir() (persistence on, saved every second) and
// stops it at cleanup. It fails the test when mosquitto is not installed.
func MustMosquitto(tb testing.TB, opts ...BrokerOption) *Broker {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
		if bin == "" {
			tb.Fatalf("mosquitto not found: run `make deps` (Debian package mosquitto)")
		}
	}
	conf := brokerConf{maxQueued: 100000}
	for _, o := range opts {
		o(&conf)
	}
	b := &Broker{tb: tb, Dir: tb.TempDir(), Port: FreePort(tb)}
	scheme := "tcp"
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", b.Port),
		"persistence true",
		"persistence_location " + b.Dir + "/",
		"autosave_interval 1",
		"log_dest file " + filepath.Join(b.Dir, "mosquitto.log"),
		"log_type error", "log_type warning", "log_type notice", "log_type information",
		"connection_messages true",
		fmt.Sprintf("max_queued_messages %d", conf.maxQueued),
		"max_inflight_messages 100",
		"message_size_limit 0",
	}
	if u, err := user.Current(); err == nil {
		lines = append(lines, "user "+u.Username) // do not drop to "mosquitto": it could not write Dir
	}
	if conf.tls != nil {
		scheme = "ssl"
		lines = append(lines,
			"cafile "+conf.tls.CAFile, "certfile "+conf.tls.ServerCert, "keyfile "+conf.tls.ServerKey,
			"require_certificate true", "use_identity_as_username true", "tls_version tlsv1.2")
	} else {
		lines = append(lines, "allow_anonymous true")
	}
	if conf.aclFile != "" {
		lines = append(lines, "acl_file "+conf.aclFile)
	}
	lines = append(lines, conf.extra...)
	b.config = filepath.Join(b.Dir, "mosquitto.conf")
	if err := os.WriteFile(b.config, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	host := "127.0.0.1"
	if conf.tls != nil {
		host = "localhost"
	}
	b.URL = fmt.Sprintf("%s://%s:%d", scheme, host, b.Port)
	b.bin = bin
	b.Start()
	tb.Cleanup(func() {
		b.Stop()
		if tb.Failed() {
			if log, err := os.ReadFile(filepath.Join(b.Dir, "mosquitto.log")); err == nil {
				if len(log) > 4000 {
					log = log[len(log)-4000:]
				}
				tb.Logf("mosquitto log (tail):\n%s", log)
			}
		}
	})
	return b
}

// Start starts the broker (again) and waits until it accepts connections.
func (b *Broker) Start() {
	b.tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	cmd := exec.Command(b.bin, "-c", b.config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := os.OpenFile(filepath.Join(b.Dir, "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.tb.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(done) }()
	b.cmd, b.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(b.Dir, "stderr.log"))
			b.tb.Fatalf("mosquitto exited at start: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			b.tb.Fatalf("mosquitto did not listen on %d: %v", b.Port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the broker with SIGKILL: no goodbye, no final save.
func (b *Broker) Kill() { b.signal(syscall.SIGKILL) }

// Stop stops the broker with SIGTERM (it saves its state).
func (b *Broker) Stop() { b.signal(syscall.SIGTERM) }

// Restart kills the broker with SIGKILL and starts it again.
func (b *Broker) Restart() {
	b.tb.Helper()
	b.Kill()
	b.Start()
}

func (b *Broker) signal(sig syscall.Signal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// PID returns the broker's process id, 0 when it is not running.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}
