package bolt

import (
	"bytes"
	"fmt"
	"io"
	"sort"

	"github.com/kioskd/kioskd/models"
	"go.etcd.io/bbolt"
)

// Test-only access to internals, for the external test package.

// RawEncodingForTest returns the stored (sealed) bytes of one encoding.
func (db *DB) RawEncodingForTest(userID, encID string) []byte {
	var v []byte
	db.mu.RLock()
	defer db.mu.RUnlock()
	_ = db.bolt.View(func(tx *bbolt.Tx) error {
		v = cloneBytes(tx.Bucket(bucketEncodings).Get(encodingKey(userID, encID)))
		return nil
	})
	return v
}

// RawUpdateForTest runs fn on the raw bbolt file, bypassing every check.
func (db *DB) RawUpdateForTest(fn func(tx *bbolt.Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.bolt.Update(fn)
}

// DescriptorBytesForTest returns the plaintext form of d as sealed.
func DescriptorBytesForTest(d *models.Descriptor) []byte {
	b := make([]byte, descriptorBytes)
	putDescriptor(b, d)
	return b
}

// Exported for tests building older layouts by hand.
var (
	MigrateV1ForTest        = migrateV1
	EncodingKeyForTest      = encodingKey
	AttendanceKeyForTest    = attendanceKey
	BucketUsersForTest      = bucketUsers
	BucketEncodingsForTest  = bucketEncodings
	BucketEncIDsForTest     = bucketEncodingIDs
	BucketEmailForTest      = bucketEmailIndex
	BucketExtIDForTest      = bucketExtIDIndex
	BucketAttendanceForTest = bucketAttendance
	BucketAttIDsForTest     = bucketAttendanceID
	BucketSchemaForTest     = bucketSchema
	BucketNameIndexForTest  = bucketNameIndex
	BucketLatestForTest     = bucketLatest
	BucketTombstonesForTest = bucketTombstones
	BucketOutboxForTest     = bucketOutbox
	BucketOutboxKeysForTest = bucketOutboxKeys
)

// SealEncodingForTest seals enc with key the way the store does.
func SealEncodingForTest(key []byte, enc *models.FaceEncoding) ([]byte, error) {
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	return s.sealEncoding(encodingKey(enc.UserID, enc.ID), enc)
}

// OpenEncodingForTest is the decoder fuzzed by FuzzStoredEncoding.
func OpenEncodingForTest(key, k, v []byte) (*models.FaceEncoding, error) {
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	var enc models.FaceEncoding
	_, err = s.openEncoding(k, v, &enc, nil)
	return &enc, err
}

// DecodeStoredForTest runs the record decoders on v.
func DecodeStoredForTest(v []byte) {
	_, _ = decodeUser(v)
	_, _ = decodeEvent(v)
	if s, err := newSealer(make([]byte, KeySize)); err == nil {
		_, _ = s.openRecord(bucketOutbox, v[:min(8, len(v))], v)
	}
	_, _ = decodeAccount(v)
	_, _ = parseEncodingHeader(v)
	_, _, _ = splitEncodingKey(v)
}

// DumpForTest renders users, indexes, tombstones and decrypted encodings as
// sorted lines, to compare states that were reached in different ways.
func (db *DB) DumpForTest() []string {
	var out []string
	db.mu.RLock()
	defer db.mu.RUnlock()
	_ = db.bolt.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketUsers, bucketEncodingIDs, bucketEmailIndex, bucketExtIDIndex, bucketNameIndex, bucketTombstones} {
			_ = tx.Bucket(name).ForEach(func(k, v []byte) error {
				out = append(out, fmt.Sprintf("%s %q=%q", name, k, v))
				return nil
			})
		}
		var buf []byte
		return tx.Bucket(bucketEncodings).ForEach(func(k, v []byte) error {
			var enc models.FaceEncoding
			var err error
			if buf, err = db.aead.openEncoding(k, v, &enc, buf); err != nil {
				out = append(out, fmt.Sprintf("encodings %q: %v", k, err))
				return nil
			}
			out = append(out, fmt.Sprintf("encodings %q=%s/%s/%s/%d/%v", k, enc.UserID, enc.Source, enc.Model, enc.CreatedAt.UnixNano(), enc.Descriptor))
			return nil
		})
	})
	sort.Strings(out)
	return out
}

// RawOutboxForTest returns the stored (sealed) bytes of one outbox message.
func (db *DB) RawOutboxForTest(seq uint64) []byte {
	var v []byte
	db.mu.RLock()
	defer db.mu.RUnlock()
	_ = db.bolt.View(func(tx *bbolt.Tx) error {
		v = cloneBytes(tx.Bucket(bucketOutbox).Get(seqKey(seq)))
		return nil
	})
	return v
}

// ParseBackupForTest runs the backup parsers over data: as a whole file
// (decrypted with key) and as a plaintext record stream. It returns the
// records read from the stream.
func ParseBackupForTest(key, data []byte) int {
	if aead, err := newBackupAEAD(key); err == nil {
		if br, err := newBackupReader(bytes.NewReader(data), aead); err == nil {
			_, _ = io.Copy(io.Discard, br)
		}
	}
	n := 0
	_ = readRecords(bytes.NewReader(data), func(*backupRecord) error { n++; return nil })
	return n
}

// DumpStreamForTest returns the plaintext record stream of the store.
func (db *DB) DumpStreamForTest() []byte {
	var buf bytes.Buffer
	db.mu.RLock()
	defer db.mu.RUnlock()
	_ = db.bolt.View(func(tx *bbolt.Tx) error { return dumpTx(tx, &buf) })
	return buf.Bytes()
}

// FailEnrolmentMessagesForTest makes every enrolment message's write fail
// with err (nil: succeed again). Call it while no write runs.
func (db *DB) FailEnrolmentMessagesForTest(err error) { db.enqueueFault = err }
