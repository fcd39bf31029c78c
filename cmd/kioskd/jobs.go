package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	gosync "sync"
	"time"

	"github.com/robfig/cron/v3"
)

// retentionStore is what the retention job needs of the store.
type retentionStore interface {
	DeleteAttendanceBefore(ctx context.Context, t time.Time) (int, error)
}

// backupStore is what the backup job needs of the store: an encrypted dump
// written atomically to a file.
type backupStore interface {
	WriteBackup(path string) (int64, error)
}

// backupPattern names backup files; they sort by time.
const backupPattern = "kioskd-*.backup"

// Jobs runs kioskd's scheduled jobs with robfig/cron: attendance retention,
// database backups and class sessions.
type Jobs struct {
	Config JobsConfig
	Now    func() time.Time
	Logger *slog.Logger

	Retention retentionStore
	Backups   backupStore

	cron    *cron.Cron
	mu      gosync.Mutex
	session string    // the open class session, "" when none
	until   time.Time // when it closes
}

// NewJobs returns the scheduler; Open starts it.
func NewJobs(cfg JobsConfig, logger *slog.Logger) *Jobs {
	return &Jobs{Config: cfg, Now: time.Now, Logger: logger}
}

// cronParser accepts standard 5-field specs and descriptors like @daily.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// validateCron checks every cron spec in cfg, naming the field.
func validateCron(cfg JobsConfig) error {
	specs := map[string]string{"jobs.retention_cron": cfg.RetentionCron, "jobs.backup_cron": cfg.BackupCron}
	for i, s := range cfg.Sessions {
		specs[fmt.Sprintf("jobs.sessions[%d].cron", i)] = s.Cron
	}
	for field, spec := range specs {
		if spec == "" {
			continue
		}
		if _, err := cronParser.Parse(spec); err != nil {
			return fmt.Errorf("%s: %q: %v", field, spec, err)
		}
	}
	return nil
}

// Open schedules the jobs and starts the cron goroutine.
func (j *Jobs) Open() error {
	j.cron = cron.New(cron.WithParser(cronParser), cron.WithChain(cron.Recover(cronLogger{j.Logger})))
	add := func(spec string, fn func()) error {
		if spec == "" {
			return nil
		}
		_, err := j.cron.AddFunc(spec, fn)
		return err
	}
	if j.Retention != nil {
		if err := add(j.Config.RetentionCron, func() { j.RunRetention(context.Background()) }); err != nil {
			return fmt.Errorf("schedule retention: %w", err)
		}
	}
	if j.Backups != nil {
		if err := add(j.Config.BackupCron, func() { _, _ = j.RunBackup() }); err != nil {
			return fmt.Errorf("schedule backup: %w", err)
		}
	}
	for _, s := range j.Config.Sessions {
		if err := add(s.Cron, func() { j.openSession(s) }); err != nil {
			return fmt.Errorf("schedule session %s: %w", s.ID, err)
		}
	}
	// A session already running when kioskd starts (a restart mid-class)
	// must be open at once, not at its next start.
	now := j.Now()
	for _, s := range j.Config.Sessions {
		sched, _ := cronParser.Parse(s.Cron)
		if start := lastActivation(sched, now, s.Duration); !start.IsZero() {
			j.mu.Lock()
			j.session, j.until = s.ID, start.Add(s.Duration)
			j.mu.Unlock()
		}
	}
	j.cron.Start()
	return nil
}

// lastActivation returns the latest activation of sched within d before now,
// or the zero time.
func lastActivation(sched cron.Schedule, now time.Time, d time.Duration) time.Time {
	var last time.Time
	for t := sched.Next(now.Add(-d)); !t.After(now); t = sched.Next(t) {
		last = t
	}
	return last
}

// Reload replaces the schedule with cfg's (SIGHUP): it waits for running
// jobs, forgets the open session and opens what cfg has open now.
func (j *Jobs) Reload(cfg JobsConfig) error {
	if err := j.Close(); err != nil {
		return err
	}
	j.mu.Lock()
	j.session, j.until = "", time.Time{}
	j.Config = cfg // under mu: a backup command may run meanwhile
	j.mu.Unlock()
	return j.Open()
}

// config returns the configuration (Reload may replace it).
func (j *Jobs) config() JobsConfig {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.Config
}

// Close stops the scheduler and waits for running jobs.
func (j *Jobs) Close() error {
	if j.cron != nil {
		<-j.cron.Stop().Done()
	}
	return nil
}

// SessionID returns the class session open now, or "". The pipeline stamps
// it on every attendance event.
func (j *Jobs) SessionID() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.session != "" && j.Now().Before(j.until) {
		return j.session
	}
	return ""
}

func (j *Jobs) openSession(s SessionConfig) {
	j.mu.Lock()
	j.session, j.until = s.ID, j.Now().Add(s.Duration)
	j.mu.Unlock()
	j.Logger.Info("class session open", "session", s.ID, "class_group", s.ClassGroup, "until", j.until.Format(time.RFC3339))
}

// RunRetention deletes acknowledged attendance older than the retention
// period; pending events are kept whatever their age.
func (j *Jobs) RunRetention(ctx context.Context) int {
	cutoff := j.Now().AddDate(0, 0, -j.config().RetentionDays)
	n, err := j.Retention.DeleteAttendanceBefore(ctx, cutoff)
	if err != nil {
		j.Logger.Error("retention failed", "err", err)
		return 0
	}
	j.Logger.Info("retention done", "deleted", n, "before", cutoff.Format(time.RFC3339))
	return n
}

// RunBackup writes an encrypted dump of the database (see
// bolt.DB.Backup) into the backup folder and keeps the newest BackupKeep.
// The store prunes later deletions from the files it wrote. It returns the
// new file's path.
func (j *Jobs) RunBackup() (string, error) {
	cfg := j.config()
	if err := os.MkdirAll(cfg.BackupDir, 0o700); err != nil {
		j.Logger.Error("backup failed", "err", err)
		return "", fmt.Errorf("create backup dir: %w", err)
	}
	name := filepath.Join(cfg.BackupDir, strings.Replace(backupPattern, "*", j.Now().UTC().Format("20060102T150405Z"), 1))
	n, err := j.Backups.WriteBackup(name)
	if err != nil {
		j.Logger.Error("backup failed", "err", err)
		return "", fmt.Errorf("write backup: %w", err)
	}
	j.prune(cfg)
	j.Logger.Info("backup done", "file", name, "bytes", n)
	return name, nil
}

// prune removes all but the newest BackupKeep backups.
func (j *Jobs) prune(cfg JobsConfig) {
	matches, _ := filepath.Glob(filepath.Join(cfg.BackupDir, backupPattern))
	sort.Strings(matches) // names sort by time
	for len(matches) > cfg.BackupKeep {
		if err := os.Remove(matches[0]); err != nil {
			j.Logger.Warn("prune backup", "file", matches[0], "err", err)
		}
		matches = matches[1:]
	}
}

// cronLogger adapts slog to cron's logger so a panicking job is logged.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug(msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error(strings.TrimSpace(msg), append(kv, "err", err)...)
}
