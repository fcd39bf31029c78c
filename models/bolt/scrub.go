package bolt

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// Why a scrub: bbolt is copy-on-write. Deleting an encoding writes new pages
// and frees the old ones, which still hold the deleted ciphertext (and a
// deleted user's JSON) until some later write happens to reuse them. A scrub
// copies the live data into a fresh file (bbolt.Compact reads only reachable
// pages), atomically renames it over the database, and overwrites the old
// file's bytes with zeros through a descriptor kept open across the rename.
//
// Deletions only mark the file (scrub_pending, committed with the deletion,
// so a crash cannot lose it); the scrub runs ScrubDelay after the last mark,
// at Close, or at the next Open. A snapshot deleting 5,000 users is one
// transaction and costs one scrub; a burst of single deletions costs one too.

func (db *DB) scrubTempPath() string { return db.path + ".scrub" }

// scheduleScrub records that deleted secrets await a scrub and wakes the
// scrubber.
func (db *DB) scheduleScrub() {
	db.scrubMu.Lock()
	db.scrubPending = true
	db.scrubMu.Unlock()
	select {
	case db.scrubCh <- struct{}{}:
	default:
	}
}

func (db *DB) isScrubPending() bool {
	db.scrubMu.Lock()
	defer db.scrubMu.Unlock()
	return db.scrubPending
}

// Scrubs returns how many scrubs completed since Open (for tests and
// metrics).
func (db *DB) Scrubs() int {
	db.scrubMu.Lock()
	defer db.scrubMu.Unlock()
	return db.scrubs
}

// Scrub rewrites the file now if a deletion is pending, blocking every other
// operation meanwhile, then prunes the deletions from the backups in
// BackupDir. Deleted bytes are gone from the file and the backups when it
// returns nil.
func (db *DB) Scrub() error {
	db.mu.Lock()
	if db.bolt == nil {
		db.mu.Unlock()
		return ErrClosed
	}
	if db.isScrubPending() {
		if err := db.scrubLocked(); err != nil {
			db.mu.Unlock()
			return err
		}
	}
	db.mu.Unlock()
	// Pruning reads the store and rewrites backup files: other operations
	// go on meanwhile.
	db.backupMu.Lock()
	defer db.backupMu.Unlock()
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return ErrClosed
	}
	return db.pruneBackupsLocked()
}

// scrubLoop runs pending scrubs ScrubDelay after the latest deletion; on
// failure it retries with capped exponential backoff.
func (db *DB) scrubLoop(ctx context.Context) {
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-db.scrubCh:
		}
		delay := db.ScrubDelay
		if failures > 0 {
			delay = min(db.ScrubDelay<<min(failures, 10), 5*time.Minute)
		}
		// Debounce: a new deletion during the wait restarts it, up to a
		// bound so a steady trickle of deletions is still scrubbed.
		deadline := time.Now().Add(10 * delay)
		t := time.NewTimer(delay)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return // Close scrubs
			case <-db.scrubCh:
				if time.Now().Before(deadline) {
					t.Reset(delay)
				}
			case <-t.C:
				break wait
			}
		}
		if err := db.Scrub(); err != nil && err != ErrClosed {
			failures++
			if failures == 1 || failures%10 == 0 {
				db.Logger.Error("scrub deleted data from store file", "err", err, "failures", failures)
			}
			select {
			case db.scrubCh <- struct{}{}:
			default:
			}
			continue
		}
		failures = 0
	}
}

// scrubLocked rewrites the file with only live data. db.mu must be held for
// writing: no transaction may be open while the file is swapped.
func (db *DB) scrubLocked() error {
	start := time.Now()
	tmp := db.scrubTempPath()
	_ = os.Remove(tmp)
	if err := compactInto(tmp, db.bolt, !db.NoSync); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("scrub: %w", err)
	}

	// Keep the old inode open so its bytes can be zeroed after the rename.
	old, err := os.OpenFile(db.path, os.O_RDWR, 0)
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("scrub: %w", err)
	}
	defer old.Close()
	if err := db.bolt.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("scrub: close: %w", err)
	}
	db.bolt = nil
	renameErr := os.Rename(tmp, db.path)
	if renameErr == nil && !db.NoSync {
		renameErr = syncDir(filepath.Dir(db.path))
	}
	bdb, err := db.openBolt()
	if err != nil {
		return fmt.Errorf("scrub: reopen: %w", err) // the store stays closed
	}
	db.bolt = bdb
	if renameErr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("scrub: %w", renameErr)
	}
	if err := zeroFile(old, !db.NoSync); err != nil {
		db.Logger.Warn("scrub: zero old store file", "err", err)
	}

	db.scrubMu.Lock()
	db.scrubPending = false
	db.scrubs++
	db.scrubMu.Unlock()
	db.Logger.Debug("scrubbed store file", "took", time.Since(start))
	return nil
}

// compactInto copies src's live data into a new bbolt file at path, with
// the scrub flag cleared.
func compactInto(path string, src *bbolt.DB, fsync bool) error {
	dst, err := bbolt.Open(path, 0o600, &bbolt.Options{NoSync: true, Timeout: time.Second, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return err
	}
	err = bbolt.Compact(dst, src, 16<<20)
	if err == nil {
		err = dst.Update(func(tx *bbolt.Tx) error {
			if b := tx.Bucket(bucketSchema); b != nil {
				return b.Delete(scrubPendingKey)
			}
			return nil
		})
	}
	if err == nil && fsync {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// zeroFile overwrites f's whole content with zeros.
func zeroFile(f *os.File, fsync bool) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	zeros := make([]byte, 1<<20)
	for left := fi.Size(); left > 0; {
		n := min(left, int64(len(zeros)))
		if _, err := f.Write(zeros[:n]); err != nil {
			return err
		}
		left -= n
	}
	if fsync {
		return f.Sync()
	}
	return nil
}
