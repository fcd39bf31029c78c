package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
)

type fakeBackup struct{ data []byte }

func (f *fakeBackup) WriteBackup(path string) (int64, error) {
	return int64(len(f.data)), os.WriteFile(path, f.data, 0o600)
}

type fakeRetention struct{ cutoff time.Time }

func (f *fakeRetention) DeleteAttendanceBefore(_ context.Context, t time.Time) (int, error) {
	f.cutoff = t
	return 3, nil
}

func TestJobs_BackupKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig().Jobs
	cfg.BackupDir, cfg.BackupKeep = dir, 2
	j := NewJobs(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	j.Backups = &fakeBackup{data: []byte("db bytes")}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 4; i++ {
		j.Now = func() time.Time { return now.Add(time.Duration(i) * time.Hour) }
		if _, err := j.RunBackup(); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := filepath.Glob(filepath.Join(dir, "kioskd-*.backup"))
	if len(got) != 2 {
		t.Fatalf("%d backups kept, want 2: %v", len(got), got)
	}
	if filepath.Base(got[1]) != "kioskd-20260102T060405Z.backup" {
		t.Fatalf("newest backup is %s", got[1])
	}
	b, _ := os.ReadFile(got[1])
	if !bytes.Equal(b, []byte("db bytes")) {
		t.Fatalf("backup content %q", b)
	}
}

func TestJobs_RetentionCutoff(t *testing.T) {
	cfg := DefaultConfig().Jobs
	cfg.RetentionDays = 30
	j := NewJobs(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r := &fakeRetention{}
	j.Retention = r
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	j.Now = func() time.Time { return now }
	if n := j.RunRetention(context.Background()); n != 3 {
		t.Fatalf("deleted %d", n)
	}
	if want := now.AddDate(0, 0, -30); !r.cutoff.Equal(want) {
		t.Fatalf("cutoff %s, want %s", r.cutoff, want)
	}
}

func TestJobs_SessionOpenAtStartMidClass(t *testing.T) {
	cfg := DefaultConfig().Jobs
	cfg.Sessions = []SessionConfig{{ID: "maths", Cron: "0 8 * * *", Duration: 2 * time.Hour}}
	j := NewJobs(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Date(2026, 3, 31, 9, 15, 0, 0, time.Local)
	j.Now = func() time.Time { return now }
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if got := j.SessionID(); got != "maths" {
		t.Fatalf("SessionID at 09:15 = %q, want maths (opened 08:00 for 2h)", got)
	}
	now = time.Date(2026, 3, 31, 10, 0, 1, 0, time.Local)
	if got := j.SessionID(); got != "" {
		t.Fatalf("SessionID at 10:00:01 = %q, want none", got)
	}
}

// The backup job's file restores with `kioskd restore` into a store that
// opens with the same key and holds the same accounts.
func TestJobs_BackupRestores(t *testing.T) {
	var out bytes.Buffer
	admin := MustMain(t, &out)
	admin.Command, admin.Args = "admin", []string{"add", "--email", "owner@example.org", "--role", "admin"}
	admin.Stdin = strings.NewReader("kiosk-admin-pass-42\n")
	if err := admin.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	dataDir := admin.Config.DataDir
	j := NewJobs(admin.Config.Jobs, slog.New(slog.DiscardHandler))
	j.Config.BackupDir = admin.backupDir()
	j.Backups = admin.DB
	path, err := j.RunBackup()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dataDir, "kioskd.db"), filepath.Join(dataDir, "kioskd.db.old")); err != nil {
		t.Fatal(err)
	}
	m := MustMain(t, &out)
	m.Config.DataDir = dataDir
	m.Command, m.Args = "restore", []string{path}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	db := bolt.NewDB(filepath.Join(dataDir, "kioskd.db"))
	db.KeyPath = m.keyPath()
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if a, err := db.GetAccount(context.Background(), "owner@example.org"); err != nil || a.Role != models.AccountAdmin {
		t.Fatalf("restored account: %+v %v", a, err)
	}
	db.Close()
	// A second restore keeps the database it replaces beside it.
	out.Reset()
	m.Args = []string{path}
	if err := m.Run(context.Background()); err != nil || !strings.Contains(out.String(), "before-restore") {
		t.Fatalf("restore over a database: %v %q", err, out.String())
	}
}
