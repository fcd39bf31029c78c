package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/models/bolt"
)

// runBackup handles `kioskd backup [-o FILE]`: a consistent copy of the
// database, made by the running daemon when there is one. The key file is
// not in it: back up keys/descriptors.key once, apart from the backups.
func (m *Main) runBackup(ctx context.Context) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	out := fs.String("o", "", "also copy the backup to this file")
	if err := fs.Parse(m.Args); err != nil {
		return err
	}
	var res struct {
		File string `json:"file"`
	}
	err := m.callControl(ctx, "/backup", struct{}{}, &res)
	if errors.Is(err, errNoDaemon) {
		res.File, err = m.backupOffline()
		if err == nil {
			err = m.chownData()
		}
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if *out != "" {
		if err := copyFile(res.File, *out, 0o600); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		res.File = *out
	}
	return json.NewEncoder(m.Stdout).Encode(map[string]string{"file": res.File, "key": m.dataPath("keys", "descriptors.key")})
}

// backupOffline opens the store of a stopped daemon and backs it up into
// the backup folder, as the scheduled job does.
func (m *Main) backupOffline() (string, error) {
	if err := m.openStore(); err != nil {
		return "", err
	}
	if err := m.openJobs(); err != nil {
		return "", err
	}
	return m.Jobs.RunBackup()
}

// runRestore handles `kioskd restore FILE`: it decrypts an encrypted backup
// with this kiosk's key file into a new database, checks it, and puts it in
// place of the database of a stopped daemon. The database it replaces is
// kept beside it.
func (m *Main) runRestore(ctx context.Context) error {
	if len(m.Args) != 1 {
		return fmt.Errorf("restore: usage: kioskd restore [-config FILE] BACKUP")
	}
	src := m.Args[0]
	if err := m.callControl(ctx, "/", struct{}{}, nil); !errors.Is(err, errNoDaemon) {
		return fmt.Errorf("restore: kioskd is running on %s: stop it first (systemctl stop kioskd), restore, then start it", m.Config.DataDir)
	}
	keyPath := m.dataPath("keys", "descriptors.key")
	dst := m.dataPath("kioskd.db")
	tmp := dst + ".restore"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(tmp)
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	err = bolt.RestoreBackup(f, keyPath, tmp)
	f.Close()
	if err == nil {
		db := bolt.NewDB(tmp)
		db.KeyPath = keyPath
		db.Logger = m.logger("store")
		if err = db.Open(); err == nil {
			err = db.Check()
			if cerr := db.Close(); err == nil {
				err = cerr
			}
		}
	}
	switch {
	case errors.Is(err, bolt.ErrBackupKey):
		return fmt.Errorf("restore: %s was made with another key than %s: nothing changed. Put back the key file that was in use when the backup was made (it is not inside backups), then restore again", src, keyPath)
	case err != nil:
		return fmt.Errorf("restore: %s cannot be used, nothing changed: %w", src, err)
	}
	if err := chownLike(tmp, m.Config.DataDir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var kept string
	if _, err := os.Stat(dst); err == nil {
		kept = dst + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(dst, kept); err != nil {
			return fmt.Errorf("restore: keep the current database: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return json.NewEncoder(m.Stdout).Encode(map[string]string{"restored": src, "database": dst, "previous": kept})
}

// copyFile copies src to dst (created with mode perm) and syncs it.
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

// chownData gives what a command run as root may have created in the data
// directory (key folder and file, database, backups) the directory's owner,
// so the daemon, running as that user, can still open and write them.
func (m *Main) chownData() error {
	paths := []string{m.dataPath("keys"), m.dataPath("keys", "descriptors.key"), m.dataPath("kioskd.db"), m.dataPath("backups")}
	backups, _ := filepath.Glob(m.dataPath("backups", backupPattern))
	for _, p := range append(paths, backups...) {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := chownLike(p, m.Config.DataDir); err != nil {
			return err
		}
	}
	return nil
}

// chownLike gives path the owner of dir, so a database restored by root
// stays readable by the kioskd user that owns the data directory.
func chownLike(path, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	return os.Chown(filepath.Clean(path), int(st.Uid), int(st.Gid))
}
