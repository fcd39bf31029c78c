package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/models/bolt"
)

// mustRunCommand runs a one-shot subcommand on dataDir and returns its
// stdout.
func mustRunCommand(tb testing.TB, dataDir string, stdin string, args ...string) (string, error) {
	tb.Helper()
	var out bytes.Buffer
	m := MustMain(tb, &out)
	m.Config.DataDir = dataDir
	m.Command, m.Args = args[0], args[1:]
	m.Stdin = strings.NewReader(stdin)
	err := m.Run(context.Background())
	if cerr := m.Close(); err == nil && cerr != nil {
		tb.Fatalf("close: %v", cerr)
	}
	return out.String(), err
}

// TestBackupRestore: a backup restores into a stopped kiosk with the same
// key; a backup made with another key is refused with what to do and the
// database is left alone; a running daemon refuses restore but makes the
// backup itself.
func TestBackupRestore(t *testing.T) {
	dir := t.TempDir()
	if _, err := mustRunCommand(t, dir, "kiosk-admin-pass-42\n", "admin", "add", "--email", "a@example.org", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	out, err := mustRunCommand(t, dir, "", "backup")
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ File, Key string }
	if err := json.Unmarshal([]byte(out), &res); err != nil || !strings.HasPrefix(res.File, filepath.Join(dir, "backups")) {
		t.Fatalf("backup output %q: %v", out, err)
	}
	// Accounts made after the backup disappear with the restore.
	if _, err := mustRunCommand(t, dir, "kiosk-tech-pass-4242\n", "admin", "add", "--email", "later@example.org", "--role", "technician"); err != nil {
		t.Fatal(err)
	}
	if out, err = mustRunCommand(t, dir, "", "restore", res.File); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"previous"`) {
		t.Fatalf("restore output %q", out)
	}
	db := bolt.NewDB(filepath.Join(dir, "kioskd.db"))
	db.KeyPath = filepath.Join(dir, "keys", "descriptors.key")
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	as, _ := db.ListAccounts(context.Background())
	db.Close()
	if len(as) != 1 || as[0].Email != "a@example.org" {
		t.Fatalf("restored accounts %v, want only a@example.org", as)
	}

	// Another kiosk (another key) refuses this backup.
	other := t.TempDir()
	if _, err := mustRunCommand(t, other, "kiosk-admin-pass-42\n", "admin", "add", "--email", "b@example.org", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(other, "kioskd.db"))
	_, err = mustRunCommand(t, other, "", "restore", res.File)
	if err == nil || !strings.Contains(err.Error(), "made with another key") {
		t.Fatalf("restore with another key: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(other, "kioskd.db"))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused restore changed the database")
	}

	// With the daemon running: backup goes through it, restore is refused.
	var dout bytes.Buffer
	d := MustMain(t, &dout)
	d.Config.DataDir = dir
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out, err = mustRunCommand(t, dir, "", "backup", "-o", filepath.Join(t.TempDir(), "copy.db")); err != nil || !strings.Contains(out, "copy.db") {
		t.Fatalf("backup while running: %q %v", out, err)
	}
	if _, err = mustRunCommand(t, dir, "", "restore", res.File); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("restore while running: %v", err)
	}
}

// TestAdminAddWhileRunning: the first account is added while the daemon
// holds the store, through its control socket; the new admin logs in.
func TestAdminAddWhileRunning(t *testing.T) {
	var out bytes.Buffer
	m := MustMain(t, &out)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := mustRunCommand(t, m.Config.DataDir, "kiosk-admin-pass-42\n", "admin", "add", "--email", "Admin@Example.org", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	MustLogin(t, m.API.URL(), "admin@example.org", "kiosk-admin-pass-42")
	if info, err := os.Stat(filepath.Join(m.Config.DataDir, controlSocket)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", info, err)
	}
}
