package bolt

import (
	"context"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket names. One bucket per entity, plus the indexes that keep lookups
// O(log n). The layout is versioned by SchemaVersion; see migrate.go.
var (
	bucketSchema       = []byte("schema")            // schema version, key check, scrub flag
	bucketUsers        = []byte("users")             // user id -> user JSON
	bucketEncodings    = []byte("encodings")         // user id 0x00 encoding id -> sealed encoding
	bucketEncodingIDs  = []byte("encoding_ids")      // encoding id -> user id
	bucketEmailIndex   = []byte("idx_email")         // email -> user id
	bucketExtIDIndex   = []byte("idx_external_id")   // external id -> user id
	bucketNameIndex    = []byte("idx_name")          // lower(full name) 0x00 user id -> user id (v2)
	bucketTombstones   = []byte("tombstones")        // user id -> big-endian version
	bucketAttendance   = []byte("attendance")        // big-endian time 0x?? event id -> event JSON
	bucketAttendanceID = []byte("attendance_ids")    // event id -> attendance key
	bucketLatest       = []byte("attendance_latest") // user id -> attendance key of the newest event (v2)
	bucketOutbox       = []byte("outbox")            // big-endian seq -> sealed message JSON (v3)
	bucketOutboxKeys   = []byte("outbox_keys")       // key 0x00 big-endian seq -> nil
	bucketOutboxUsers  = []byte("outbox_users")      // user id 0x00 big-endian seq -> nil (v3)
	bucketAccounts     = []byte("accounts")          // lower(email) -> account JSON
	bucketMeta         = []byte("meta")              // MetaStore's key -> value
)

// Keys in bucketSchema.
var (
	schemaVersionKey = []byte("version")
	keyCheckKey      = []byte("key_check")     // a sealed constant proving the key file matches
	scrubPendingKey  = []byte("scrub_pending") // set when deleted secrets may linger in free pages
	prunePendingKey  = []byte("prune_pending") // set with scrub_pending until backups are pruned
)

// DefaultScrubDelay is how long the store waits after a deletion before it
// rewrites the file, so that a burst of deletions costs one rewrite.
const DefaultScrubDelay = 2 * time.Second

// DB is the bbolt implementation of Store. Create it with NewDB, set the
// exported fields, then call Open. All methods are safe for concurrent use.
type DB struct {
	// KeyPath is the file holding the 32-byte descriptor encryption key.
	// It defaults to the database path plus ".key"; keep it out of backups
	// of the database file.
	KeyPath string
	// Now returns the current time; tests inject a fixed clock.
	Now func() time.Time
	// Logger receives operational messages; defaults to discarding them.
	Logger *slog.Logger
	// NoSync skips fsync on commit. Only for tests and benchmarks: a crash
	// can lose or corrupt data.
	NoSync bool
	// ScrubDelay is how long after a deletion the file is rewritten to wipe
	// the deleted bytes (DefaultScrubDelay when zero). Close always scrubs
	// when a deletion is pending.
	ScrubDelay time.Duration
	// LockTimeout bounds the wait for another process's lock on the file.
	LockTimeout time.Duration
	// BackupDir is the folder WriteBackup's files live in. After each
	// scrub, deleted users, encodings and accounts are pruned from every
	// backup there too. Empty: backups are not pruned.
	BackupDir string

	path string

	// mu guards bolt: every operation holds it for reading; the scrubber
	// holds it for writing while it swaps the file.
	mu     sync.RWMutex
	bolt   *bbolt.DB
	aead   *sealer
	closed bool

	faultMu sync.Mutex
	fault   writeFault // latest disk fault of a write, cleared by a success

	// enqueueFault, set by tests before use, fails every enrolment
	// message's write: the change it came with must roll back too.
	enqueueFault error

	backupAEAD cipher.AEAD // derived from the descriptor key
	backupMu   sync.Mutex  // serializes writing and pruning backups; taken before mu

	scrubMu      sync.Mutex // guards scrubPending
	scrubPending bool
	scrubCh      chan struct{}
	scrubs       int // completed scrubs, for tests

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Compile-time check that DB implements Store.
var _ models.Store = (*DB)(nil)

// ErrClosed is returned by operations on a DB that is not open.
var ErrClosed = errors.New("store is closed")

// NewDB returns a DB for the bbolt file at path. It does no I/O.
func NewDB(path string) *DB {
	return &DB{
		path:        path,
		Now:         time.Now,
		LockTimeout: 2 * time.Second,
		scrubCh:     make(chan struct{}, 1),
	}
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Open opens (creating on first run) the database and its key file, runs
// pending migrations and a consistency check, and refuses to start when the
// key is unsafe or the data is inconsistent.
func (db *DB) Open() error {
	if db.path == "" {
		return fmt.Errorf("open store: path required")
	}
	if db.Now == nil {
		db.Now = time.Now
	}
	if db.Logger == nil {
		db.Logger = slog.New(slog.DiscardHandler)
	}
	if db.KeyPath == "" {
		db.KeyPath = db.path + ".key"
	}
	if db.ScrubDelay <= 0 {
		db.ScrubDelay = DefaultScrubDelay
	}
	if err := os.MkdirAll(filepath.Dir(db.path), 0o700); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	// A leftover from a scrub interrupted by a crash holds only live data;
	// the original file is still authoritative.
	_ = os.Remove(db.scrubTempPath())
	db.removeBackupTemps()

	bdb, err := db.openBolt()
	if err != nil {
		return err
	}
	db.mu.Lock()
	db.bolt = bdb
	db.closed = false
	db.mu.Unlock()

	if err := db.open(); err != nil {
		db.mu.Lock()
		// db.bolt, not bdb: a scrub in open swaps the handle.
		if db.bolt != nil {
			_ = db.bolt.Close()
		}
		db.bolt = nil
		db.closed = true
		db.mu.Unlock()
		return err
	}

	// Nothing writes yet: let go of the pages the check just read. The
	// handle is db.bolt: a scrub at open (a deletion before a crash) has
	// closed bdb and opened the new file.
	releaseMapped(db.bolt, db.path)

	// Backups still to prune (a crash after the scrub): the scrubber does
	// it after its delay.
	var prune bool
	_ = db.bolt.View(func(tx *bbolt.Tx) error {
		prune = tx.Bucket(bucketSchema).Get(prunePendingKey) != nil
		return nil
	})
	if prune && db.BackupDir != "" {
		db.scrubCh <- struct{}{}
	}

	ctx, cancel := context.WithCancel(context.Background())
	db.cancel = cancel
	db.wg.Add(1)
	go func() {
		defer db.wg.Done()
		db.scrubLoop(ctx)
	}()
	return nil
}

// open does the part of Open after the bbolt file is open.
func (db *DB) open() error {
	var keyCheck []byte
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketSchema); b != nil {
			keyCheck = cloneBytes(b.Get(keyCheckKey))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	key, err := loadOrCreateKey(db.KeyPath, keyCheck != nil)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s, err := newSealer(key)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	db.aead = s
	if db.backupAEAD, err = newBackupAEAD(key); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	clear(key)
	if keyCheck != nil {
		if err := s.verifyKeyCheck(keyCheck); err != nil {
			return fmt.Errorf("open store: key file %s does not match database %s: restore the key that was used with this database", db.KeyPath, db.path)
		}
	}

	if err := db.migrate(); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if err := db.check(false); err != nil {
		return fmt.Errorf("open store: consistency check of %s failed (restore a backup, or move the file aside to start empty): %w", db.path, err)
	}

	var pending bool
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		pending = tx.Bucket(bucketSchema).Get(scrubPendingKey) != nil
		return nil
	}); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if pending {
		// A deletion was committed but the rewrite did not happen (crash).
		db.mu.Lock()
		err := db.scrubLocked()
		db.mu.Unlock()
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
	}
	return nil
}

// openBolt opens the bbolt file with the DB's options.
func (db *DB) openBolt() (*bbolt.DB, error) {
	bdb, err := bbolt.Open(db.path, 0o600, &bbolt.Options{
		Timeout:      db.LockTimeout,
		NoSync:       db.NoSync,
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store: %s is locked by another process (is kioskd already running?)", db.path)
	} else if hint := db.diskFault(err); hint != "" {
		return nil, fmt.Errorf("open store: %s (%w)", hint, err)
	} else if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return bdb, nil
}

// Close waits for background work, wipes pending deletions from the file
// and closes it. It is safe to call more than once.
func (db *DB) Close() error {
	if db.cancel != nil {
		db.cancel()
	}
	db.wg.Wait()

	db.backupMu.Lock() // before db.mu, as everywhere
	defer db.backupMu.Unlock()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return nil
	}
	var errs []error
	if db.isScrubPending() {
		if err := db.scrubLocked(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if db.bolt != nil {
		if err := db.pruneBackupsLocked(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if db.bolt != nil {
		if err := db.bolt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	db.bolt = nil
	db.closed = true
	return errors.Join(errs...)
}

// view runs fn in a read transaction.
func (db *DB) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return ErrClosed
	}
	return db.bolt.View(fn)
}

// update runs fn in a write transaction. When fn reports (via *scrub) that
// it removed secrets, the file is scheduled for a rewrite after commit.
func (db *DB) update(ctx context.Context, fn func(tx *bbolt.Tx, w *writeState) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return ErrClosed
	}
	var w writeState
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		w = writeState{}
		if err := fn(tx, &w); err != nil {
			return err
		}
		if w.scrub {
			b := tx.Bucket(bucketSchema)
			if err := b.Put(scrubPendingKey, []byte{1}); err != nil {
				return err
			}
		}
		if w.prune {
			// A new value each time: a prune that read an older one must not
			// clear this deletion's mark (see pruneBackupsLocked).
			b := tx.Bucket(bucketSchema)
			var n uint64
			if v := b.Get(prunePendingKey); len(v) == 8 {
				n = binary.BigEndian.Uint64(v)
			}
			return b.Put(prunePendingKey, binary.BigEndian.AppendUint64(nil, n+1))
		}
		return nil
	})
	if err == nil && w.scrub {
		db.scheduleScrub()
	}
	if err != nil && models.ErrorCode(err) != models.EINTERNAL {
		return err // fn refused the change: not a disk fault
	}
	return db.noteWrite(err)
}

// writeState carries facts a write transaction learns for after its commit.
type writeState struct {
	scrub bool // secrets were deleted: rewrite the file to wipe free pages
	prune bool // users, encodings or accounts were deleted: prune backups too
}

// syncDir fsyncs a directory so a rename or create in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// cloneBytes copies b; bbolt's slices are only valid inside a transaction.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
