package bolt

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/kioskd/kioskd/models"
	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the length of the key file: a XChaCha20-Poly1305 key.
const KeySize = chacha20poly1305.KeySize

// loadOrCreateKey reads the key file, or creates it (32 random bytes, mode
// 0600) when it does not exist and the database holds nothing sealed yet.
// A key readable by group or others, or of the wrong length, is refused:
// whoever reads it can decrypt every descriptor.
func loadOrCreateKey(path string, mustExist bool) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if mustExist {
			return nil, fmt.Errorf("key file %s is missing but the database was encrypted with a key: restore the key file from backup", path)
		}
		return createKey(path)
	} else if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is readable or writable by group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("key file %s holds %d bytes, want exactly %d", path, len(key), KeySize)
	}
	return key, nil
}

// createKey writes a new random key with O_EXCL so two processes cannot
// both create one.
func createKey(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return key, nil
}

// sealer encrypts descriptors with XChaCha20-Poly1305. Its AEAD holds only
// the key, so it is safe for concurrent use.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// keyCheckPlaintext is sealed into the schema bucket so that Open can tell a
// wrong key file from a corrupt record.
var keyCheckPlaintext = []byte("kioskd key check v1")

func (s *sealer) keyCheck() ([]byte, error) {
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(keyCheckPlaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, keyCheckPlaintext, keyCheckKey), nil
}

func (s *sealer) verifyKeyCheck(v []byte) error {
	if len(v) < chacha20poly1305.NonceSizeX {
		return errors.New("key check too short")
	}
	pt, err := s.aead.Open(nil, v[:chacha20poly1305.NonceSizeX], v[chacha20poly1305.NonceSizeX:], keyCheckKey)
	if err != nil {
		return err
	}
	if string(pt) != string(keyCheckPlaintext) {
		return errors.New("key check mismatch")
	}
	return nil
}

// Stored encoding layout (all integers big-endian):
//
//	[0]      format version (encodingFormatV1)
//	[1]      source (1 central, 2 local)
//	[2:10]   created_at, unix nanoseconds
//	[10]     n, length of the model name
//	[11:11+n] model name
//	then     24-byte nonce, then the sealed 512-byte little-endian descriptor
//
// The header and the record key (user id 0x00 encoding id) are the AEAD's
// additional data: a ciphertext moved to another record, or a header edited,
// fails authentication instead of yielding someone else's face.
const (
	encodingFormatV1  = 1
	descriptorBytes   = models.DescriptorSize * 4
	maxModelNameLen   = 64
	encodingHeaderMin = 11
)

var (
	errEncodingCorrupt = errors.New("stored encoding is malformed")
	errEncodingAuth    = errors.New("stored encoding failed authentication (wrong key, or the record was moved or altered)")
)

func sourceByte(s models.EncodingSource) byte {
	switch s {
	case models.SourceCentral:
		return 1
	case models.SourceLocal:
		return 2
	}
	return 0
}

func byteSource(b byte) (models.EncodingSource, bool) {
	switch b {
	case 1:
		return models.SourceCentral, true
	case 2:
		return models.SourceLocal, true
	}
	return "", false
}

// encodingKey returns the encodings bucket key of one encoding. IDs never
// contain 0x00 (validID), so a user's encodings are one prefix.
func encodingKey(userID, encID string) []byte {
	k := make([]byte, 0, len(userID)+1+len(encID))
	k = append(k, userID...)
	k = append(k, 0)
	return append(k, encID...)
}

// splitEncodingKey is encodingKey's inverse.
func splitEncodingKey(k []byte) (userID, encID string, ok bool) {
	for i, c := range k {
		if c == 0 {
			if i == 0 || i == len(k)-1 {
				return "", "", false
			}
			return string(k[:i]), string(k[i+1:]), true
		}
	}
	return "", "", false
}

// sealEncoding returns the stored form of enc under record key k.
func (s *sealer) sealEncoding(k []byte, enc *models.FaceEncoding) ([]byte, error) {
	src := sourceByte(enc.Source)
	if src == 0 || len(enc.Model) > maxModelNameLen {
		return nil, errEncodingCorrupt
	}
	hdrLen := encodingHeaderMin + len(enc.Model)
	out := make([]byte, hdrLen+chacha20poly1305.NonceSizeX, hdrLen+chacha20poly1305.NonceSizeX+descriptorBytes+s.aead.Overhead())
	out[0] = encodingFormatV1
	out[1] = src
	binary.BigEndian.PutUint64(out[2:10], uint64(enc.CreatedAt.UnixNano()))
	out[10] = byte(len(enc.Model))
	copy(out[11:], enc.Model)
	nonce := out[hdrLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	var pt [descriptorBytes]byte
	putDescriptor(pt[:], &enc.Descriptor)
	ad := make([]byte, 0, len(k)+hdrLen)
	ad = append(append(ad, k...), out[:hdrLen]...)
	out = s.aead.Seal(out, nonce, pt[:], ad)
	clear(pt[:])
	return out, nil
}

// encodingHeader is the cleartext part of a stored encoding.
type encodingHeader struct {
	source    models.EncodingSource
	createdAt time.Time
	model     string
	hdrLen    int
}

// parseEncodingHeader decodes and bounds-checks the cleartext header of v.
func parseEncodingHeader(v []byte) (encodingHeader, error) {
	var h encodingHeader
	if len(v) < encodingHeaderMin || v[0] != encodingFormatV1 {
		return h, errEncodingCorrupt
	}
	src, ok := byteSource(v[1])
	if !ok {
		return h, errEncodingCorrupt
	}
	n := int(v[10])
	h.hdrLen = encodingHeaderMin + n
	if n > maxModelNameLen || len(v) != h.hdrLen+chacha20poly1305.NonceSizeX+descriptorBytes+chacha20poly1305.Overhead {
		return h, errEncodingCorrupt
	}
	h.source = src
	h.createdAt = time.Unix(0, int64(binary.BigEndian.Uint64(v[2:10]))).UTC()
	if m := v[11:h.hdrLen]; string(m) == models.DefaultModelName {
		h.model = models.DefaultModelName // no allocation on the hot load path
	} else {
		h.model = string(m)
	}
	return h, nil
}

// openEncoding decrypts the stored encoding v under record key k into enc.
// buf is scratch space (at least len(k)+len(v) bytes avoid allocating).
func (s *sealer) openEncoding(k, v []byte, enc *models.FaceEncoding, buf []byte) ([]byte, error) {
	h, err := parseEncodingHeader(v)
	if err != nil {
		return buf, err
	}
	userID, encID, ok := splitEncodingKey(k)
	if !ok {
		return buf, errEncodingCorrupt
	}
	adLen := len(k) + h.hdrLen
	if need := adLen + descriptorBytes + chacha20poly1305.Overhead; cap(buf) < need {
		buf = make([]byte, 0, 2*need) // room for the plaintext too: Open must not allocate
	}
	buf = append(append(buf[:0], k...), v[:h.hdrLen]...)
	nonce := v[h.hdrLen : h.hdrLen+chacha20poly1305.NonceSizeX]
	pt, err := s.aead.Open(buf[adLen:], nonce, v[h.hdrLen+chacha20poly1305.NonceSizeX:], buf[:adLen])
	if err != nil || len(pt) != descriptorBytes {
		return buf, errEncodingAuth
	}
	enc.ID = encID
	enc.UserID = userID
	enc.Source = h.source
	enc.Model = h.model
	enc.CreatedAt = h.createdAt
	getDescriptor(&enc.Descriptor, pt)
	clear(pt)
	return buf, nil
}

func putDescriptor(b []byte, d *models.Descriptor) {
	for i, f := range d {
		binary.LittleEndian.PutUint32(b[i*4:], math.Float32bits(f))
	}
}

func getDescriptor(d *models.Descriptor, b []byte) {
	for i := range d {
		d[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[i*4:]))
	}
}

// Sealed record layout (records other than encodings: outbox messages):
//
//	[0]    format version (recordFormatV1)
//	then   24-byte nonce, then the sealed plaintext
//
// The additional data is the record's domain (its bucket) and key, so a
// sealed value moved to another record or bucket fails authentication.
const recordFormatV1 = 1

var errRecordAuth = errors.New("sealed record failed authentication (wrong key, or the record was moved or altered)")

// recordAD returns the additional data of a sealed record.
func recordAD(domain, k []byte) []byte {
	ad := make([]byte, 0, len(domain)+1+len(k))
	return append(append(append(ad, domain...), 0), k...)
}

// sealRecord returns pt sealed for record k of domain.
func (s *sealer) sealRecord(domain, k, pt []byte) ([]byte, error) {
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(pt)+s.aead.Overhead())
	out[0] = recordFormatV1
	nonce := out[1:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, nonce, pt, recordAD(domain, k)), nil
}

// openRecord decrypts a value sealRecord returned for record k of domain.
func (s *sealer) openRecord(domain, k, v []byte) ([]byte, error) {
	if len(v) < 1+chacha20poly1305.NonceSizeX+s.aead.Overhead() || v[0] != recordFormatV1 {
		return nil, errRecordAuth
	}
	pt, err := s.aead.Open(nil, v[1:1+chacha20poly1305.NonceSizeX], v[1+chacha20poly1305.NonceSizeX:], recordAD(domain, k))
	if err != nil {
		return nil, errRecordAuth
	}
	return pt, nil
}
