package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReload: SIGHUP's reload applies the log level and the sessions at
// once, names what needs a restart, and keeps running on a bad file.
func TestReload(t *testing.T) {
	var out, logs bytes.Buffer
	m := MustMain(t, &out)
	m.Logger = nil
	m.Stderr = &logs
	file := filepath.Join(t.TempDir(), "kioskd.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := "data_dir: " + m.Config.DataDir + "\nmodels: {dir: " + m.Config.Models.Dir + "}\napi: {addr: 127.0.0.1:0}\nrecognizer: {pool_size: 1}\n"
	write(base + "log_level: info\n")
	m.ConfigPath = file
	if err := m.ParseFlags(context.Background(), []string{"-config", file}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.Logger.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("debug enabled at info")
	}

	write(base + `log_level: debug
recognizer: {pool_size: 1, threshold: 0.5}
jobs:
  sessions:
    - {id: all-day, cron: "0 0 * * *", duration: 12h}
    - {id: evening, cron: "0 12 * * *", duration: 12h}
`)
	if err := m.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "recognizer") {
		t.Fatalf("duplicate key: %v, want the parse error", err) // recognizer given twice
	}
	if m.Logger.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("a refused file changed the log level")
	}
	write(strings.Replace(base, "recognizer: {pool_size: 1}", "recognizer: {pool_size: 1, threshold: 0.5}", 1) + `log_level: debug
jobs:
  sessions:
    - {id: all-day, cron: "0 0 * * *", duration: 12h}
    - {id: evening, cron: "0 12 * * *", duration: 12h}
`)
	if err := m.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !m.Logger.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("log level not reloaded")
	}
	if id := m.Jobs.SessionID(); id != "all-day" && id != "evening" {
		t.Fatalf("sessions not reloaded: open session %q", id)
	}
	if !strings.Contains(logs.String(), "recognizer.threshold") || !strings.Contains(logs.String(), "applied only at restart") {
		t.Fatalf("restart-only change not named in the log:\n%s", logs.String())
	}
	if m.Matcher.Threshold() == 0.5 {
		t.Fatal("threshold changed at run time, but the log says restart")
	}
}
