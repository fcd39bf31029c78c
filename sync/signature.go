package sync

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/kioskd/kioskd/models"
)

// SignedMessage is central's signed envelope for commands, account pushes
// and configuration. The signature covers the purpose, device id, topic,
// sequence, issue and expiry times and the SHA-256 of the exact payload
// bytes (see SigningInput), so none of them can be swapped, replayed to
// another device or topic, or stretched in time.
type SignedMessage struct {
	Schema    int    `json:"schema"`
	Type      string `json:"type"`    // "signed"
	Purpose   string `json:"purpose"` // DownCommand, DownAccount, DownConfig or DownTimetable
	Device    string `json:"device"`
	Topic     string `json:"topic"`
	Seq       uint64 `json:"seq"`        // per device and purpose, strictly increasing
	IssuedAt  int64  `json:"issued_at"`  // Unix seconds
	ExpiresAt int64  `json:"expires_at"` // Unix seconds
	Payload   []byte `json:"payload"`    // base64 of the inner JSON document
	Sig       []byte `json:"sig"`        // base64 of the Ed25519 signature
}

// MaxSignedLifetime bounds ExpiresAt-IssuedAt: a leaked message cannot stay
// valid for long.
const MaxSignedLifetime = 30 * 24 * time.Hour

// SigningInput returns the bytes central signs:
//
//	kioskd-signed-v1\n{purpose}\n{device}\n{topic}\n{seq}\n{issued_at}\n{expires_at}\n{hex sha256(payload)}
func SigningInput(m *SignedMessage) []byte {
	sum := sha256.Sum256(m.Payload)
	b := make([]byte, 0, 256)
	b = append(b, "kioskd-signed-v1\n"...)
	b = append(b, m.Purpose...)
	b = append(b, '\n')
	b = append(b, m.Device...)
	b = append(b, '\n')
	b = append(b, m.Topic...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, m.Seq, 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, m.IssuedAt, 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, m.ExpiresAt, 10)
	b = append(b, '\n')
	b = append(b, hex.EncodeToString(sum[:])...)
	return b
}

// Sign fills Schema, Type and Sig of m with key (central's side).
func Sign(m *SignedMessage, key ed25519.PrivateKey) {
	m.Schema, m.Type = SchemaVersion, TypeSigned
	m.Sig = ed25519.Sign(key, SigningInput(m))
}

// DecodeSigned parses a signed envelope without checking the signature.
func DecodeSigned(b []byte, maxSize int) (*SignedMessage, error) {
	var m SignedMessage
	if err := decodeEnvelope(b, maxSize, TypeSigned, &m, &m.Schema, &m.Type); err != nil {
		return nil, err
	}
	if len(m.Sig) != ed25519.SignatureSize {
		return nil, models.Errorf(models.EINVALID, "signed: signature of %d bytes", len(m.Sig))
	}
	return &m, nil
}

// Rejection reasons for signed messages (logged and counted).
const (
	RejectForged      = "forged"
	RejectReplay      = "replay"
	RejectExpired     = "expired"
	RejectOtherDevice = "other_device"
	RejectMalformed   = "malformed"
	RejectOversized   = "oversized"
	RejectNoKey       = "no_key"
)

// VerifySigned checks m against the pinned key for this device, the topic
// it arrived on and the time now; lastSeq is the highest sequence already
// accepted for this purpose. It returns a rejection reason ("" when valid)
// and an error describing it.
func VerifySigned(m *SignedMessage, key ed25519.PublicKey, device, purpose, topic string, lastSeq uint64, now time.Time, skew time.Duration) (string, error) {
	switch {
	case len(key) != ed25519.PublicKeySize:
		return RejectNoKey, models.Errorf(models.EUNAVAILABLE, "signed: no registry public key configured")
	case !ed25519.Verify(key, SigningInput(m), m.Sig):
		return RejectForged, models.Errorf(models.EUNAUTHORIZED, "signed: bad signature")
	case m.Device != device:
		return RejectOtherDevice, models.Errorf(models.EFORBIDDEN, "signed: for device %q, not this one", m.Device)
	case m.Topic != topic || m.Purpose != purpose:
		return RejectOtherDevice, models.Errorf(models.EFORBIDDEN, "signed: for topic %q (%s), received on %q", m.Topic, m.Purpose, topic)
	case m.Seq <= lastSeq:
		return RejectReplay, models.Errorf(models.ECONFLICT, "signed: sequence %d already seen (last %d)", m.Seq, lastSeq)
	case m.IssuedAt < 0 || m.ExpiresAt <= m.IssuedAt || m.ExpiresAt-m.IssuedAt > int64(MaxSignedLifetime/time.Second):
		// In seconds: the lifetime in nanoseconds overflows int64 past ~292 years.
		return RejectMalformed, models.Errorf(models.EINVALID, "signed: lifetime out of range")
	case now.Unix() >= m.ExpiresAt:
		return RejectExpired, models.Errorf(models.EINVALID, "signed: expired at %s", time.Unix(m.ExpiresAt, 0).UTC().Format(time.RFC3339))
	case time.Unix(m.IssuedAt, 0).After(now.Add(skew)):
		return RejectExpired, models.Errorf(models.EINVALID, "signed: issued in the future (%s)", time.Unix(m.IssuedAt, 0).UTC().Format(time.RFC3339))
	}
	return "", nil
}
