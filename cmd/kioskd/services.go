package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kioskd/kioskd/device"
	"github.com/kioskd/kioskd/localapi"
	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/password"
	ksync "github.com/kioskd/kioskd/sync"
)

// openServices starts the scheduled jobs and, as configured, the camera
// pipeline, the MQTT sync and the local API.
func (m *Main) openServices(ctx context.Context) error {
	m.metrics = newKioskMetrics(func() *device.Pipeline { return m.Pipeline }, func() *ksync.Client { return m.Sync }, m.DB, time.Now)
	if err := m.openJobs(); err != nil {
		return err
	}
	if m.Config.Sync.Broker != "" {
		if err := m.openSync(ctx); err != nil {
			return err
		}
	}
	if m.Config.Device.Source != "" {
		if err := m.openPipeline(ctx); err != nil {
			return err
		}
	}
	return m.openAPI()
}

func (m *Main) openJobs() error {
	jc := m.Config.Jobs
	jc.BackupDir = m.backupDir()
	jobs := NewJobs(jc, m.logger("jobs"))
	jobs.Retention = m.DB
	jobs.Backups = m.DB
	if err := jobs.Open(); err != nil {
		return fmt.Errorf("open jobs: %w", err)
	}
	m.Jobs = jobs
	m.addCloser(jobs.Close)
	return nil
}

// notifyingRecorder commits attendance and then wakes sync, so an event
// goes out at once rather than at the next outbox poll.
type notifyingRecorder struct {
	*bolt.DB
	notify func()
	// stamp sets the event's class session and punctuality.
	stamp func(ctx context.Context, ev *models.AttendanceEvent)
}

func (r notifyingRecorder) RecordAttendance(ctx context.Context, ev *models.AttendanceEvent) error {
	if ev.SessionID == "" && r.stamp != nil {
		r.stamp(ctx, ev)
	}
	if err := r.DB.RecordAttendance(ctx, ev); err != nil {
		return err
	}
	if r.notify != nil {
		r.notify()
	}
	return nil
}

func (m *Main) openPipeline(ctx context.Context) error {
	rec := notifyingRecorder{DB: m.DB, stamp: m.stampSession}
	if m.Sync != nil {
		rec.notify = m.Sync.Notify
	}
	m.Bus = device.NewBus()
	cfg := m.Config.deviceConfig()
	gater, closeGater, err := device.OpenGater(&cfg)
	if err != nil {
		return fmt.Errorf("start camera pipeline: %w", err)
	}
	p := device.NewPipeline(cfg, gater, m.Encoder, m.Matcher, rec, m.Bus, m.logger("device"))
	p.Observe(m.metrics.observeGate, m.metrics.observeRecord)
	if err := p.Start(ctx); err != nil {
		closeGater()
		return fmt.Errorf("start camera pipeline: %w", err)
	}
	m.Pipeline = p
	m.addCloser(closeGater) // closers run in reverse: after the pipeline's Close
	if m.Sync != nil {
		m.Sync.SetUnknownCounter(func() uint64 { return p.Status().Unknown })
	}
	m.addCloser(p.Close)
	m.addLoop(pipelineCheck(p.Status, p.LastTaken, m.StallAfter))
	return nil
}

// stampSession sets the class session an event belongs to: from central's
// timetable (the person's class group first) when it has one open in this
// kiosk's room, with the group, membership and punctuality; else the
// configured session open now.
func (m *Main) stampSession(ctx context.Context, ev *models.AttendanceEvent) {
	if m.Sync != nil && m.Sync.Timetable() != nil {
		group := ""
		if u, err := m.DB.GetUser(ctx, ev.UserID); err == nil {
			group = u.ClassGroup
		}
		if s, member, ok := m.Sync.Timetable().SessionFor(m.Config.Sync.Room, group, ev.Time); ok {
			ev.SessionID, ev.ClassGroup, ev.Member, ev.Punctuality = s.ID, s.ClassGroup, member, models.OnTime
			if s.Late(ev.Time) {
				ev.Punctuality, ev.MinutesLate = models.Late, int(ev.Time.Sub(s.Start)/time.Minute)
			}
			return
		}
	}
	ev.SessionID = m.Jobs.SessionID()
}

func (m *Main) openSync(ctx context.Context) error {
	c := ksync.NewClient(m.Config.syncConfig(), m.DB, m.Gallery, m.logger("sync"))
	c.SetHealth(m.health)
	c.OnCommand = m.runCommand
	c.PasswordHashSupported = password.PasswordHashSupported
	if err := c.Open(ctx); err != nil {
		return fmt.Errorf("open sync: %w", err)
	}
	m.Sync = c
	m.addCloser(c.Close)
	m.addLoop(beatCheck("sync", c.LastLoop, m.StallAfter))
	return nil
}

// health is what sync's status message says of the other parts; "" means
// fine, and so does having no camera configured.
func (m *Main) health() ksync.HealthReport {
	h := ksync.HealthReport{Model: "ok", DB: "ok"}
	if m.Pipeline != nil {
		switch st := m.Pipeline.Status(); st.State {
		case device.CameraRunning, device.CameraEnded:
			h.Camera = "ok"
		default:
			h.Camera = string(st.State)
		}
	}
	if _, err := m.DB.CountUsers(context.Background()); err != nil {
		h.DB = err.Error()
	}
	return h
}

// runCommand runs the commands central may send beyond sync's own.
func (m *Main) runCommand(ctx context.Context, cmd ksync.Command) error {
	switch cmd.Name {
	case "backup":
		_, err := m.Jobs.RunBackup()
		return err
	case "retention":
		m.Jobs.RunRetention(ctx)
		return nil
	}
	return models.Errorf(models.EINVALID, "unknown command %q", cmd.Name)
}

func (m *Main) openAPI() error {
	cfg := localapi.Config(m.Config.API)
	cfg.DeviceID = m.Config.DeviceID
	cfg.Version = Version
	deps := localapi.Deps{
		Store:    m.DB,
		Enroller: m.Gallery,
		Encoder:  m.Encoder,
		Matcher:  m.Matcher,
		Gallery:  m.Calibrator,
		Config:   &runtimeConfig{m: m},
		Ready:    m.ready,
	}
	deps.Registry = prometheus.NewRegistry()
	deps.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m.metrics)
	if m.Pipeline != nil {
		deps.Feedback = m.Bus
		deps.Preview = m.Pipeline
		deps.Capturer = m.Pipeline
		deps.Camera = localapi.StatusFunc(func() any { return m.Pipeline.Status() })
	}
	if m.Sync != nil {
		deps.Sync = localapi.StatusFunc(func() any { return m.Sync.Status() })
	}
	s := localapi.NewServer(cfg, deps, m.logger("localapi"))
	if err := s.Open(); err != nil {
		return fmt.Errorf("open api: %w", err)
	}
	m.API = s
	m.addCloser(s.Close)
	m.logger("main").Info("api listening", "url", s.URL())
	return nil
}

// ready reports whether kioskd can do its job: store answering and
// writing, models loaded, gallery loaded.
func (m *Main) ready() error {
	if m.Encoder == nil || m.Matcher == nil {
		return models.Errorf(models.EUNAVAILABLE, "models are loading")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := m.DB.CountUsers(ctx); err != nil {
		return models.Errorf(models.EUNAVAILABLE, "database not answering")
	}
	if _, err := m.DB.WriteFault(); err != nil {
		return err // disk full or read-only, until a write succeeds again
	}
	return nil
}

// runtimeConfig lets admins read the effective configuration (secrets
// redacted) through the API.
type runtimeConfig struct{ m *Main }

// Config returns the effective configuration with secrets redacted.
func (r *runtimeConfig) Config() any {
	r.m.mu.Lock()
	c := r.m.Config
	r.m.mu.Unlock()
	if c.Sync.Password != "" {
		c.Sync.Password = "(set)"
	}
	return c
}

// UpdateConfig refuses changes at run time: the configuration file is the
// single source of truth and its changes take effect at restart, so a kiosk
// never runs a configuration nobody can read back from disk.
func (r *runtimeConfig) UpdateConfig(ctx context.Context, patch []byte) (any, error) {
	if !json.Valid(patch) {
		return nil, models.Errorf(models.EINVALID, "patch: not valid JSON")
	}
	return nil, models.Errorf(models.ECONFLICT, "configuration changes are made in the configuration file (%s) and take effect at restart", orDefault(r.m.ConfigPath, "built-in defaults; pass -config FILE"))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
