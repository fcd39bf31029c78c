package main

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Reload re-reads the configuration file (SIGHUP, `systemctl reload
// kioskd`) and applies what can change while kioskd runs: the log level and
// the scheduled jobs (class sessions, retention, backups). Every other
// changed field is named in the log as taking effect at restart. A file
// that does not parse or validate changes nothing.
func (m *Main) Reload(ctx context.Context) error {
	log := m.logger("main")
	m.mu.Lock()
	old := m.Config
	m.mu.Unlock()
	next, err := m.loadConfig(old)
	if err != nil {
		log.Error("configuration not reloaded; kioskd keeps running on the previous one", "err", err)
		return err
	}
	_ = m.notify.Notify("RELOADING=1")
	defer func() { _ = m.notify.Notify("READY=1") }()

	var applied []string
	if next.LogLevel != old.LogLevel {
		_ = m.logLevel.UnmarshalText([]byte(next.LogLevel))
		applied = append(applied, "log_level")
	}
	if m.Jobs != nil && !reflect.DeepEqual(next.Jobs, old.Jobs) {
		jc := next.Jobs
		if jc.BackupDir == "" {
			jc.BackupDir = m.dataPath("backups")
		}
		if err := m.Jobs.Reload(jc); err != nil {
			log.Error("jobs not reloaded", "err", err)
			return fmt.Errorf("reload jobs: %w", err)
		}
		applied = append(applied, "jobs")
	}
	restart := changedFields(reflect.ValueOf(old), reflect.ValueOf(next), "")
	restart = slices.DeleteFunc(restart, func(f string) bool { return f == "log_level" || strings.HasPrefix(f, "jobs.") })

	m.mu.Lock()
	m.Config.LogLevel, m.Config.Jobs = next.LogLevel, next.Jobs
	m.mu.Unlock()
	log.Info("configuration reloaded", "applied", applied, "file", orDefault(m.ConfigPath, "(none)"))
	if len(restart) > 0 {
		log.Warn("changed in the configuration file but applied only at restart (systemctl restart kioskd)", "fields", restart)
	}
	return nil
}

// changedFields names, by their YAML paths, the leaves that differ between
// two configurations.
func changedFields(a, b reflect.Value, prefix string) []string {
	if a.Kind() != reflect.Struct {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return nil
		}
		return []string{prefix}
	}
	var out []string
	for i := 0; i < a.NumField(); i++ {
		f := a.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			name = strings.ToLower(f.Name)
		}
		if prefix != "" {
			name = prefix + "." + name
		}
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() != "time" {
			out = append(out, changedFields(a.Field(i), b.Field(i), name)...)
			continue
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}
