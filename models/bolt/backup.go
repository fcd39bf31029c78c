package bolt

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"
)

// A backup is an encrypted dump of every bucket, not a copy of the bbolt
// file: nothing in it is readable without the key file, and it can be
// filtered as a stream, which is how deletions reach backups already
// written (pruneBackups) without a cleartext temporary copy.
//
// Layout:
//
//	header  backupMagic (16 bytes), 16-byte random file id
//	chunks  4-byte big-endian n, 24-byte nonce, n bytes sealed (at most
//	        backupChunk bytes of plaintext each)
//
// Each chunk's additional data is the header, its index and whether it is
// the last, so chunks cannot be reordered, dropped or moved between files,
// and a truncated file fails. The key is derived from the descriptor key
// (HKDF-SHA256, info backupKeyInfo). The plaintext is a record stream:
//
//	'B' uvarint len, bucket name, uvarint bucket sequence
//	'K' uvarint len, key, uvarint len, value   (in the current bucket)
//	'E'                                        (end)
//
// Values are stored as in the file: encodings and outbox messages stay
// sealed with the descriptor key inside the backup's own encryption.
var backupMagic = []byte("KIOSKD-BACKUP\x00v1")

const (
	backupChunk   = 64 << 10
	backupKeyInfo = "kioskd backup v1"
	backupIDSize  = 16
	backupTempExt = ".tmp"
)

// newBackupAEAD derives the backup key from the descriptor key.
func newBackupAEAD(key []byte) (cipher.AEAD, error) {
	bk, err := hkdf.Key(sha256.New, key, nil, backupKeyInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.NewX(bk)
}

// backupWriter encrypts a record stream into chunks.
type backupWriter struct {
	w      io.Writer
	aead   cipher.AEAD
	header []byte
	buf    []byte
	index  uint64
	n      int64 // bytes written
	err    error
}

func newBackupWriter(w io.Writer, aead cipher.AEAD) (*backupWriter, error) {
	header := make([]byte, len(backupMagic)+backupIDSize)
	copy(header, backupMagic)
	if _, err := rand.Read(header[len(backupMagic):]); err != nil {
		return nil, err
	}
	bw := &backupWriter{w: w, aead: aead, header: header, buf: make([]byte, 0, backupChunk)}
	bw.write(header)
	return bw, bw.err
}

func (bw *backupWriter) write(b []byte) {
	if bw.err != nil {
		return
	}
	n, err := bw.w.Write(b)
	bw.n += int64(n)
	bw.err = err
}

// chunkAD is the additional data of chunk index (last: the final chunk).
func chunkAD(header []byte, index uint64, last bool) []byte {
	ad := binary.BigEndian.AppendUint64(append([]byte(nil), header...), index)
	if last {
		return append(ad, 1)
	}
	return append(ad, 0)
}

func (bw *backupWriter) flush(last bool) {
	if bw.err != nil {
		return
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		bw.err = err
		return
	}
	ct := bw.aead.Seal(nil, nonce, bw.buf, chunkAD(bw.header, bw.index, last))
	clear(bw.buf)
	bw.buf = bw.buf[:0]
	bw.index++
	bw.write(binary.BigEndian.AppendUint32(nil, uint32(len(ct))))
	bw.write(nonce)
	bw.write(ct)
}

// Write buffers plaintext, sealing full chunks.
func (bw *backupWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 && bw.err == nil {
		n := min(len(p), backupChunk-len(bw.buf))
		bw.buf = append(bw.buf, p[:n]...)
		p = p[n:]
		if len(bw.buf) == backupChunk {
			bw.flush(false)
		}
	}
	if bw.err != nil {
		return 0, bw.err
	}
	return total, nil
}

// Close seals the last chunk.
func (bw *backupWriter) Close() error {
	bw.flush(true)
	return bw.err
}

// backupReader decrypts a backup's chunks into the record stream.
type backupReader struct {
	r      *bufio.Reader
	aead   cipher.AEAD
	header []byte
	buf    []byte
	index  uint64
	done   bool
}

var errBackupCorrupt = errors.New("backup is truncated or corrupt")

// ErrBackupKey reports a backup whose first block does not open with the
// key file given: it was made with another key (or that block is damaged).
var ErrBackupKey = errors.New("backup was made with another key")

func newBackupReader(r io.Reader, aead cipher.AEAD) (*backupReader, error) {
	br := &backupReader{r: bufio.NewReaderSize(r, backupChunk+1024), aead: aead, header: make([]byte, len(backupMagic)+backupIDSize)}
	if _, err := io.ReadFull(br.r, br.header); err != nil || !bytes.Equal(br.header[:len(backupMagic)], backupMagic) {
		return nil, errors.New("not a kioskd backup")
	}
	return br, nil
}

func (br *backupReader) Read(p []byte) (int, error) {
	for len(br.buf) == 0 {
		if br.done {
			return 0, io.EOF
		}
		var hdr [4 + chacha20poly1305.NonceSizeX]byte
		if _, err := io.ReadFull(br.r, hdr[:]); err != nil {
			return 0, errBackupCorrupt
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n > backupChunk+uint32(br.aead.Overhead()) {
			return 0, errBackupCorrupt
		}
		ct := make([]byte, n)
		if _, err := io.ReadFull(br.r, ct); err != nil {
			return 0, errBackupCorrupt
		}
		_, err := br.r.Peek(1)
		last := errors.Is(err, io.EOF)
		pt, oerr := br.aead.Open(ct[:0], hdr[4:], ct, chunkAD(br.header, br.index, last))
		if oerr != nil && br.index == 0 {
			return 0, ErrBackupKey
		} else if oerr != nil {
			return 0, errBackupCorrupt
		}
		br.index++
		br.buf, br.done = pt, last
	}
	n := copy(p, br.buf)
	br.buf = br.buf[n:]
	return n, nil
}

// Record kinds of the plaintext stream.
const (
	recBucket = 'B'
	recKV     = 'K'
	recEnd    = 'E'
)

// maxBackupField bounds one name, key or value read from a backup.
const maxBackupField = 16 << 20

func putField(w *bufio.Writer, b []byte) {
	var n [binary.MaxVarintLen64]byte
	_, _ = w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	_, _ = w.Write(b)
}

func readField(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxBackupField {
		return nil, errBackupCorrupt
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, errBackupCorrupt
	}
	return b, nil
}

// backupRecord is one record of the stream: a bucket start (Key nil) or a
// key/value of Bucket.
type backupRecord struct {
	bucket   string
	sequence uint64
	k, v     []byte
}

// dumpTx writes every bucket of tx as a record stream to w.
func dumpTx(tx *bbolt.Tx, w io.Writer) error {
	bw := bufio.NewWriterSize(w, backupChunk)
	err := tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		_ = bw.WriteByte(recBucket)
		putField(bw, name)
		var n [binary.MaxVarintLen64]byte
		_, _ = bw.Write(n[:binary.PutUvarint(n[:], b.Sequence())])
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return fmt.Errorf("bucket %s: nested bucket %q is not supported", name, k)
			}
			_ = bw.WriteByte(recKV)
			putField(bw, k)
			putField(bw, v)
			return nil
		})
	})
	if err != nil {
		return err
	}
	_ = bw.WriteByte(recEnd)
	return bw.Flush()
}

// readRecords calls fn for each record of the stream in r.
func readRecords(r io.Reader, fn func(rec *backupRecord) error) error {
	br := bufio.NewReaderSize(r, backupChunk)
	var rec backupRecord
	for {
		kind, err := br.ReadByte()
		if errors.Is(err, ErrBackupKey) {
			return err
		} else if err != nil {
			return errBackupCorrupt
		}
		switch kind {
		case recEnd:
			return nil
		case recBucket:
			name, err := readField(br)
			if err != nil {
				return err
			}
			seq, err := binary.ReadUvarint(br)
			if err != nil {
				return errBackupCorrupt
			}
			rec = backupRecord{bucket: string(name), sequence: seq}
		case recKV:
			if rec.bucket == "" {
				return errBackupCorrupt
			}
			if rec.k, err = readField(br); err != nil {
				return err
			}
			if rec.v, err = readField(br); err != nil {
				return err
			}
		default:
			return errBackupCorrupt
		}
		if err := fn(&rec); err != nil {
			return err
		}
		rec.k, rec.v = nil, nil
	}
}

// writeRecord appends rec to a record stream.
func writeRecord(w *bufio.Writer, rec *backupRecord) {
	if rec.k == nil {
		_ = w.WriteByte(recBucket)
		putField(w, []byte(rec.bucket))
		var n [binary.MaxVarintLen64]byte
		_, _ = w.Write(n[:binary.PutUvarint(n[:], rec.sequence)])
		return
	}
	_ = w.WriteByte(recKV)
	putField(w, rec.k)
	putField(w, rec.v)
}

// Backup writes an encrypted dump of the database (live data only: freed
// pages are not read) to w from one read transaction, while the store
// keeps serving. Restoring it needs the key file. It returns the number of
// bytes written.
func (db *DB) Backup(w io.Writer) (int64, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return 0, ErrClosed
	}
	bw, err := newBackupWriter(w, db.backupAEAD)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	err = db.bolt.View(func(tx *bbolt.Tx) error { return dumpTx(tx, bw) })
	if err == nil {
		err = bw.Close()
	}
	if err != nil {
		return bw.n, fmt.Errorf("backup: %w", err)
	}
	return bw.n, nil
}

// WriteBackup writes Backup's dump to path (mode 0600) atomically: a
// temporary file is synced and renamed into place. Deletions made later are
// pruned from it (see BackupDir). It returns the size written.
func (db *DB) WriteBackup(path string) (int64, error) {
	db.backupMu.Lock()
	defer db.backupMu.Unlock()
	tmp := path + backupTempExt
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	n, err := db.Backup(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// RestoreBackup writes the database held in the backup r to a new bbolt
// file at dbPath, decrypting with the key file at keyPath (the key the
// backup was made with). It refuses to overwrite an existing file. Open
// the result with NewDB(dbPath) and the same key file.
func RestoreBackup(r io.Reader, keyPath, dbPath string) error {
	key, err := loadOrCreateKey(keyPath, true)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	aead, err := newBackupAEAD(key)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	br, err := newBackupReader(r, aead)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := os.Stat(dbPath); err == nil {
		return fmt.Errorf("restore: %s exists: move it aside first", dbPath)
	}
	tmp := dbPath + backupTempExt
	_ = os.Remove(tmp)
	bdb, err := bbolt.Open(tmp, 0o600, &bbolt.Options{NoSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var tx *bbolt.Tx
	pending := 0
	err = readRecords(br, func(rec *backupRecord) error {
		if tx == nil || pending >= 10000 { // bounded transactions
			if tx != nil {
				if err := tx.Commit(); err != nil {
					return err
				}
			}
			var err error
			if tx, err = bdb.Begin(true); err != nil {
				return err
			}
			pending = 0
		}
		pending++
		if rec.k == nil {
			b, err := tx.CreateBucketIfNotExists([]byte(rec.bucket))
			if err != nil {
				return err
			}
			return b.SetSequence(rec.sequence)
		}
		b := tx.Bucket([]byte(rec.bucket))
		if b == nil {
			return errBackupCorrupt
		}
		return b.Put(rec.k, rec.v)
	})
	if err == nil && tx != nil {
		err = tx.Commit()
		tx = nil
	}
	if tx != nil {
		_ = tx.Rollback()
	}
	if err == nil {
		err = bdb.Sync()
	}
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dbPath)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	return syncDir(filepath.Dir(dbPath))
}

// liveSets are the ids a backup may keep: users, encodings and accounts
// that still exist.
type liveSets struct {
	users, encodings, accounts map[string]bool
}

func txLiveSets(tx *bbolt.Tx) liveSets {
	ls := liveSets{users: map[string]bool{}, encodings: map[string]bool{}, accounts: map[string]bool{}}
	for b, set := range map[string]map[string]bool{string(bucketUsers): ls.users, string(bucketEncodingIDs): ls.encodings, string(bucketAccounts): ls.accounts} {
		_ = tx.Bucket([]byte(b)).ForEach(func(k, _ []byte) error {
			set[string(k)] = true
			return nil
		})
	}
	return ls
}

// keep reports whether a backup record still belongs in a backup: records
// of deleted users, encodings and accounts, and outbox messages carrying a
// deleted user's data, do not. dropped collects the sequence numbers of
// dropped outbox messages (outbox sorts before outbox_keys).
func (db *DB) keep(rec *backupRecord, ls liveSets, dropped map[uint64]bool) bool {
	if rec.k == nil {
		return true
	}
	before := func(sep byte) string {
		if i := bytes.IndexByte(rec.k, sep); i >= 0 {
			return string(rec.k[:i])
		}
		return string(rec.k)
	}
	switch rec.bucket {
	case string(bucketUsers):
		return ls.users[string(rec.k)]
	case string(bucketEncodings):
		_, encID, ok := splitEncodingKey(rec.k)
		return ok && ls.encodings[encID]
	case string(bucketEncodingIDs):
		return ls.encodings[string(rec.k)]
	case string(bucketEmailIndex), string(bucketExtIDIndex), string(bucketNameIndex):
		return ls.users[string(rec.v)]
	case string(bucketAccounts):
		return ls.accounts[string(rec.k)]
	case string(bucketOutboxUsers):
		return ls.users[before(0)]
	case string(bucketOutbox):
		m, err := db.openOutbox(rec.k, rec.v)
		if err != nil || (m.UserID != "" && !ls.users[m.UserID]) {
			if len(rec.k) == 8 {
				dropped[binary.BigEndian.Uint64(rec.k)] = true
			}
			return false
		}
		return true
	case string(bucketOutboxKeys):
		return len(rec.k) < 9 || !dropped[binary.BigEndian.Uint64(rec.k[len(rec.k)-8:])]
	}
	return true
}

// pruneBackupFile rewrites one backup without what keep drops; it leaves
// the file alone when nothing is dropped. The old file's bytes are zeroed.
func (db *DB) pruneBackupFile(path string, ls liveSets) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br, err := newBackupReader(f, db.backupAEAD)
	if err != nil {
		return false, nil // not a backup of ours
	}
	tmp := path + ".prune" + backupTempExt
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	bw, err := newBackupWriter(out, db.backupAEAD)
	if err != nil {
		_ = out.Close()
		return false, err
	}
	w := bufio.NewWriterSize(bw, backupChunk)
	dropped := map[uint64]bool{}
	ndrop := 0
	err = readRecords(br, func(rec *backupRecord) error {
		if !db.keep(rec, ls, dropped) {
			ndrop++
			return nil
		}
		writeRecord(w, rec)
		return nil
	})
	if err == nil {
		_ = w.WriteByte(recEnd)
		err = w.Flush()
	}
	if err == nil {
		err = bw.Close()
	}
	if err == nil && ndrop > 0 {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil || ndrop == 0 {
		return false, err
	}
	old, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer old.Close()
	if err := os.Rename(tmp, path); err != nil {
		return false, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return false, err
	}
	return true, zeroFile(old, true)
}

// pruneBackupsLocked removes what was deleted from the store from every
// backup in BackupDir, then clears the pending mark. The caller holds
// db.backupMu, then db.mu (either way) with the store open: backupMu is
// always taken first.
func (db *DB) pruneBackupsLocked() error {
	if db.BackupDir == "" {
		return nil
	}
	var ls liveSets
	var mark []byte
	if err := db.bolt.View(func(tx *bbolt.Tx) error {
		mark = cloneBytes(tx.Bucket(bucketSchema).Get(prunePendingKey))
		if mark != nil {
			ls = txLiveSets(tx)
		}
		return nil
	}); err != nil || mark == nil {
		return err
	}
	entries, err := os.ReadDir(db.BackupDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("prune backups: %w", err)
	}
	pruned := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), backupTempExt) {
			continue
		}
		changed, err := db.pruneBackupFile(filepath.Join(db.BackupDir, e.Name()), ls)
		if err != nil {
			return fmt.Errorf("prune backup %s: %w", e.Name(), err)
		}
		if changed {
			pruned++
		}
	}
	// A deletion committed meanwhile (pruning runs beside writers) left a
	// new mark: keep it for the next prune.
	if err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSchema)
		if !bytes.Equal(b.Get(prunePendingKey), mark) {
			return nil
		}
		return b.Delete(prunePendingKey)
	}); err != nil {
		return fmt.Errorf("prune backups: %w", err)
	}
	if pruned > 0 {
		db.Logger.Info("pruned deletions from backups", "files", pruned)
	}
	return nil
}

// removeBackupTemps deletes backups and prunes a crash left half-written in
// BackupDir: never complete, and never pruned either.
func (db *DB) removeBackupTemps() {
	if db.BackupDir == "" {
		return
	}
	entries, _ := os.ReadDir(db.BackupDir)
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), backupTempExt) {
			_ = os.Remove(filepath.Join(db.BackupDir, e.Name()))
		}
	}
}
