package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	gosync "sync"
	"time"

	"github.com/kioskd/kioskd/device"
	"github.com/kioskd/kioskd/localapi"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/recognizer"
	ksync "github.com/kioskd/kioskd/sync"
)

// Version is kioskd's version, set at build time with -ldflags.
var Version = "dev"

// Main is kioskd: its configuration and every component, opened by Run and
// closed by Close. Tests run it on :0 with a temp data dir.
type Main struct {
	Config     Config
	ConfigPath string

	// Command is the subcommand ("" for the daemon) and Args its arguments.
	Command string
	Args    []string

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Logger         *slog.Logger

	DB      *bolt.DB
	Encoder *recognizer.Encoder
	Matcher *recognizer.Matcher
	// Gallery owns every change to users and faces and keeps Matcher in step.
	Gallery *recognizer.Gallery
	// Calibrator keeps the gallery's operating points (docs/accuracy.md).
	Calibrator *recognizer.Calibrator
	Jobs       *Jobs
	Bus        *device.Bus
	Pipeline   *device.Pipeline
	Sync       *ksync.Client
	API        *localapi.Server

	metrics *kioskMetrics // served on /metrics with the API's

	// StallAfter is how long a loop may make no progress before the
	// watchdog stops pinging systemd (see alive).
	StallAfter time.Duration

	mu       gosync.Mutex
	closers  []func() error // in opening order; Close runs them in reverse
	loops    []loopCheck    // what the watchdog checks
	notify   *notifier      // systemd's notify socket; nil when not under systemd
	logLevel slog.LevelVar  // SIGHUP changes it
}

// addCloser registers a component's Close; components open concurrently.
func (m *Main) addCloser(fn func() error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closers = append(m.closers, fn)
}

// NewMain returns a Main with the default configuration and the process's
// standard streams.
func NewMain() *Main {
	return &Main{
		Config: DefaultConfig(),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,

		StallAfter: 30 * time.Second,
	}
}

const usage = `kioskd: the face-attendance kiosk daemon

Usage:
  kioskd [-config FILE]                      run the daemon
  kioskd encode [-config FILE] IMAGE...      print faces and descriptors as JSON lines
  kioskd calibrate [-config FILE] [-target R] [-idols FILE]
                                             print the gallery's calibration as JSON
  kioskd admin add --email E --role R        add a local account (password on stdin;
                                             works while the daemon runs)
  kioskd doctor [-config FILE]               check models, store, key, camera, broker,
                                             clock, disk, CPU; exit 1 if anything is wrong
  kioskd backup [-config FILE] [-o FILE]     write an encrypted backup of the database now
  kioskd restore [-config FILE] BACKUP       put a backup in place (daemon stopped)
  kioskd version                             print the version

Environment: KIOSK_DATA_DIR, KIOSK_MODELS_DIR, KIOSK_API_ADDR, KIOSK_DEVICE_ID,
KIOSK_CAMERA_SOURCE, KIOSK_MQTT_BROKER, ... override the file (see README).
Signals: SIGHUP reloads the configuration file, SIGTERM stops cleanly.
`

// ParseFlags reads the subcommand, flags and configuration file.
func (m *Main) ParseFlags(ctx context.Context, args []string) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		m.Command, args = args[0], args[1:]
	}
	switch m.Command {
	case "", "encode", "calibrate", "admin", "doctor", "backup", "restore":
	case "version":
		return nil
	case "help":
		fmt.Fprint(m.Stderr, usage)
		return flag.ErrHelp
	default:
		return fmt.Errorf("unknown command %q (try: kioskd help)", m.Command)
	}
	fs := flag.NewFlagSet("kioskd", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() { fmt.Fprint(m.Stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&m.ConfigPath, "config", "", "YAML configuration file (default: built-in defaults)")
	if m.Command == "admin" || m.Command == "calibrate" || m.Command == "backup" {
		// Their own flags are parsed by runAdmin, runCalibrate and runBackup.
		for i, a := range args {
			if a == "-config" || a == "--config" {
				if i+1 < len(args) {
					m.ConfigPath = args[i+1]
					args = append(append([]string{}, args[:i]...), args[i+2:]...)
				}
				break
			}
		}
		m.Args = args
	} else {
		if err := fs.Parse(args); err != nil {
			return err
		}
		m.Args = fs.Args()
	}
	if m.Command == "" && len(m.Args) > 0 {
		return fmt.Errorf("unexpected argument %q (try: kioskd help)", m.Args[0])
	}

	cfg, err := m.loadConfig(m.Config)
	if err != nil {
		return err
	}
	m.Config = cfg
	return nil
}

// loadConfig reads the configuration file (or keeps base without one),
// applies the environment and validates the result.
func (m *Main) loadConfig(base Config) (Config, error) {
	cfg := base
	if m.ConfigPath != "" {
		f, err := os.Open(m.ConfigPath)
		if err != nil {
			return cfg, fmt.Errorf("open config: %w", err)
		}
		defer f.Close()
		if cfg, err = parseConfig(f, m.Getenv); err != nil {
			return cfg, fmt.Errorf("%s: %w", m.ConfigPath, err)
		}
	}
	if err := cfg.ApplyEnv(m.Getenv); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		if m.ConfigPath != "" {
			return cfg, fmt.Errorf("%s: %w", m.ConfigPath, err)
		}
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// Daemon reports whether Run started the long-running daemon (as opposed to
// a one-shot subcommand).
func (m *Main) Daemon() bool { return m.Command == "" }

// Run runs a subcommand to completion, or opens every component of the
// daemon and returns once it is ready.
func (m *Main) Run(ctx context.Context) error {
	m.setupLogger()
	switch m.Command {
	case "encode":
		return m.runEncode(ctx)
	case "calibrate":
		return m.runCalibrate(ctx)
	case "admin":
		return m.runAdmin(ctx)
	case "doctor":
		return m.runDoctor(ctx)
	case "backup":
		return m.runBackup(ctx)
	case "restore":
		return m.runRestore(ctx)
	case "version":
		return m.runVersion()
	}
	return m.runDaemon(ctx)
}

// runVersion prints kioskd's version and what it was built with.
func (m *Main) runVersion() error {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	_, err := fmt.Fprintf(m.Stdout, "kioskd %s (%s, %s %s/%s)\n", Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}

func (m *Main) setupLogger() {
	if m.Logger != nil {
		return
	}
	_ = m.logLevel.UnmarshalText([]byte(m.Config.LogLevel))
	m.Logger = slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: &m.logLevel}))
}

func (m *Main) logger(component string) *slog.Logger {
	return m.Logger.With("component", component)
}

// dataPath returns a path under the data directory.
func (m *Main) dataPath(elem ...string) string {
	return filepath.Join(append([]string{m.Config.DataDir}, elem...)...)
}

// keyPath is the descriptor key file's path.
func (m *Main) keyPath() string { return m.dataPath("keys", "descriptors.key") }

// backupDir is jobs.backup_dir, by default backups/ in the data directory.
func (m *Main) backupDir() string {
	if m.Config.Jobs.BackupDir != "" {
		return m.Config.Jobs.BackupDir
	}
	return m.dataPath("backups")
}

// openStore opens the bbolt store under the data directory.
func (m *Main) openStore() error {
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.MkdirAll(m.dataPath("keys"), 0o700); err != nil {
		return fmt.Errorf("create key dir: %w", err)
	}
	db := bolt.NewDB(m.dataPath("kioskd.db"))
	// The key lives outside the database file so a copied database alone
	// does not reveal descriptors.
	db.KeyPath = m.keyPath()
	db.Logger = m.logger("store")
	db.BackupDir = m.backupDir()
	if err := db.Open(); err != nil {
		return err // the store names the step and the fix
	}
	m.DB = db
	m.addCloser(db.Close)
	return nil
}

// openEncoder loads dlib's models.
func (m *Main) openEncoder() error {
	cfg := m.Config.encoderConfig()
	cfg.Logger = m.logger("recognizer")
	enc := recognizer.NewEncoder(cfg)
	if err := enc.Open(); err != nil {
		return fmt.Errorf("open encoder: %w", err)
	}
	m.Encoder = enc
	m.addCloser(enc.Close)
	return nil
}

// loadMatcher makes the gallery over the store and a new matcher, and
// loads every stored descriptor of active users (recognizer.Gallery.Load).
func (m *Main) loadMatcher(ctx context.Context) error {
	start := time.Now()
	matcher := recognizer.NewMatcher(m.Config.matcherConfig())
	g := recognizer.NewGallery(m.DB, matcher, m.logger("recognizer"))
	if err := g.Load(ctx); err != nil {
		return err
	}
	m.Matcher, m.Gallery = matcher, g
	m.logger("recognizer").Info("gallery loaded", "users", matcher.Users(), "descriptors", matcher.Len(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// runDaemon opens the store, the models, the matcher and every service.
func (m *Main) runDaemon(ctx context.Context) error {
	log := m.logger("main")
	log.Info("starting kioskd", "version", Version, "device_id", m.Config.DeviceID, "data_dir", m.Config.DataDir)
	// dlib's models load while the store opens and the gallery decrypts:
	// the two are independent and each takes about a second.
	encErr := make(chan error, 1)
	go func() { encErr <- m.openEncoder() }()
	err := m.openStore()
	if err == nil {
		err = m.loadMatcher(ctx)
	}
	if eerr := <-encErr; err == nil {
		err = eerr
	}
	if err != nil {
		return err
	}
	m.openCalibrator()
	if err := m.openServices(ctx); err != nil {
		return err
	}
	if err := m.openControl(); err != nil {
		return err
	}
	if err := m.openNotify(); err != nil {
		return err
	}
	log.Info("kioskd ready")
	return nil
}

// openNotify tells systemd kioskd is ready and, when the unit has
// WatchdogSec, starts the watchdog pings; Close says STOPPING=1 first.
func (m *Main) openNotify() error {
	n, err := newNotifier(m.Getenv)
	if err != nil {
		return err
	}
	if n == nil {
		return nil
	}
	m.notify = n
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.addCloser(func() error {
		cancel()
		<-done
		err := n.Notify("STOPPING=1")
		return errors.Join(err, n.Close())
	})
	if err := n.Notify("READY=1", "STATUS=ready", fmt.Sprintf("MAINPID=%d", os.Getpid())); err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	if d := watchdogInterval(m.Getenv, os.Getpid()); d > 0 {
		go func() { defer close(done); m.runWatchdog(ctx, d) }()
	} else {
		close(done)
	}
	return nil
}

// Close closes every opened component in reverse order, within a deadline
// per component, and returns the first error.
func (m *Main) Close() error {
	m.mu.Lock()
	closers := m.closers
	m.closers = nil
	m.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
