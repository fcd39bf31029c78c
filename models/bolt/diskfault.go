package bolt

import (
	"errors"
	"fmt"
	"github.com/kioskd/kioskd/models"
	"syscall"
	"time"
)

// Disk faults: a full disk or a data dir turned read-only makes every write
// transaction fail; bbolt rolls it back and the file stays as it was. The
// store reports such failures as EUNAVAILABLE with what to do, remembers the
// latest for status, and forgets it at the next successful write: recovery
// needs no restart once space returns.

// diskFault says what to do when err comes from a full or read-only disk;
// "" for any other error.
func (db *DB) diskFault(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Sprintf("no space left for %s: free space on that disk", db.path)
	case errors.Is(err, syscall.EROFS):
		return fmt.Sprintf("%s is on a read-only file system: remount it read-write", db.path)
	}
	return ""
}

// writeFault is the latest failed write and when it happened.
type writeFault struct {
	err error
	at  time.Time
}

// noteWrite records the outcome of a write transaction and returns the
// error callers should see.
func (db *DB) noteWrite(err error) error {
	db.faultMu.Lock()
	defer db.faultMu.Unlock()
	if err == nil {
		if db.fault.err != nil {
			db.Logger.Info("store writes again", "after", db.fault.err)
		}
		db.fault = writeFault{}
		return nil
	}
	hint := db.diskFault(err)
	if hint == "" {
		return err
	}
	fe := models.Errorf(models.EUNAVAILABLE, "store: %s; kioskd resumes writing by itself", hint)
	if db.fault.err == nil {
		db.Logger.Error("store cannot write", "err", err)
	}
	db.fault = writeFault{err: fe, at: db.Now()}
	return fmt.Errorf("%w (%v)", fe, err)
}

// WriteFault returns when the latest disk fault (full or read-only) made a
// write fail and its error, or a nil error once a later write succeeded.
// Status pages show it.
func (db *DB) WriteFault() (at time.Time, err error) {
	db.faultMu.Lock()
	defer db.faultMu.Unlock()
	return db.fault.at, db.fault.err
}
