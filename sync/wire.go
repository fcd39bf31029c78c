package sync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/kioskd/kioskd/models"
)

// SchemaVersion is the version of every JSON payload this package writes
// and the only one it reads. A payload without "schema" or with another
// version is refused: central must not send what kiosks cannot read.
const SchemaVersion = 1

// Message types (the "type" field).
const (
	TypeUsers           = "users"
	TypeHead            = "head"
	TypeSnapshot        = "snapshot"
	TypeSnapshotRequest = "snapshot_request"
	TypeAck             = "ack"
	TypeSigned          = "signed"
	TypeStatus          = "status"
	TypeHeartbeat       = "heartbeat"
	TypeCommandResult   = "command_result"
)

// User record operations.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// Limits on downlink messages beyond MaxPayload.
const (
	MaxUsersPerMessage = 5000
	MaxAckKeys         = 10000
	MaxSnapshotChunks  = 100000
)

// WireUser is a user record on the wire: an upsert carries the full record
// with its encodings (which replace the user's central encodings), a delete
// carries only id and version (a tombstone).
type WireUser struct {
	Op         string         `json:"op"`
	ID         string         `json:"id"`
	Version    int64          `json:"version"`
	ExternalID string         `json:"external_id,omitempty"`
	Email      string         `json:"email,omitempty"`
	FullName   string         `json:"full_name,omitempty"`
	Role       string         `json:"role,omitempty"`
	Status     string         `json:"status,omitempty"`
	Department string         `json:"department,omitempty"`
	Programme  string         `json:"programme,omitempty"`
	ClassGroup string         `json:"class_group,omitempty"`
	UpdatedAt  *time.Time     `json:"updated_at,omitempty"`
	Encodings  []WireEncoding `json:"encodings,omitempty"`
	// LocalID, on central's upsert, is the kiosk's id of the same person
	// (from its enrolment): the kiosk re-keys that user to ID.
	LocalID string `json:"local_id,omitempty"`
}

// WireEncoding is one face encoding on the wire. Descriptor is a JSON array
// of 128 numbers, or a base64 string with Dtype float32 or float64.
type WireEncoding struct {
	ID         string          `json:"id,omitempty"`
	Descriptor json.RawMessage `json:"descriptor"`
	Dtype      string          `json:"dtype,omitempty"`
	Model      string          `json:"model,omitempty"`
	CreatedAt  *time.Time      `json:"created_at,omitempty"`
}

// UsersMessage is a batch of user records on the site's users topic.
type UsersMessage struct {
	Schema   int        `json:"schema"`
	Type     string     `json:"type"`
	Site     string     `json:"site"`
	Seq      uint64     `json:"seq"` // per-site, starts at 1, +1 per message
	IssuedAt time.Time  `json:"issued_at"`
	Users    []WireUser `json:"users"`
}

// HeadMessage is the retained latest sequence of a site.
type HeadMessage struct {
	Schema   int       `json:"schema"`
	Type     string    `json:"type"`
	Site     string    `json:"site"`
	Seq      uint64    `json:"seq"`
	IssuedAt time.Time `json:"issued_at"`
}

// SnapshotChunk is one chunk of a snapshot answering a request: the whole
// registry of the site at sequence Seq is the union of chunks 0..Chunks-1.
type SnapshotChunk struct {
	Schema     int        `json:"schema"`
	Type       string     `json:"type"`
	Site       string     `json:"site"`
	Device     string     `json:"device"`
	RequestID  string     `json:"request_id"`
	SnapshotID string     `json:"snapshot_id"`
	Seq        uint64     `json:"seq"`
	Chunk      int        `json:"chunk"`
	Chunks     int        `json:"chunks"`
	Total      int        `json:"total"` // users in the whole snapshot
	Users      []WireUser `json:"users"`
}

// SnapshotRequest asks central for a snapshot.
type SnapshotRequest struct {
	Schema    int       `json:"schema"`
	Type      string    `json:"type"`
	Site      string    `json:"site"`
	Device    string    `json:"device"`
	RequestID string    `json:"request_id"`
	HaveSeq   uint64    `json:"have_seq"`
	Reason    string    `json:"reason"` // initial, gap, command
	Time      time.Time `json:"time"`
}

// AckMessage lists the keys of uplink messages central has stored.
type AckMessage struct {
	Schema int      `json:"schema"`
	Type   string   `json:"type"`
	Device string   `json:"device"`
	Keys   []string `json:"keys"`
}

// UplinkMessage wraps an outbox message on its uplink topic.
type UplinkMessage struct {
	Schema     int             `json:"schema"`
	Type       string          `json:"type"` // the outbox kind
	Site       string          `json:"site"`
	Device     string          `json:"device"`
	Key        string          `json:"key"` // idempotency key central acks
	Seq        uint64          `json:"seq"` // per-device order
	CreatedAt  time.Time       `json:"created_at"`
	Historical bool            `json:"historical"` // buffered while offline
	Payload    json.RawMessage `json:"payload"`
}

// decodeStrict unmarshals b into v after checking size, and then checks the
// schema and type fields. Unknown fields are ignored (central may add
// optional fields within a schema version).
func decodeEnvelope(b []byte, maxSize int, wantType string, v any, schema *int, typ *string) error {
	if maxSize > 0 && len(b) > maxSize {
		return models.Errorf(models.ETOOLARGE, "payload: %d bytes, limit %d", len(b), maxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return models.Errorf(models.EINVALID, "payload: %s", jsonErr(err))
	}
	if dec.More() {
		return models.Errorf(models.EINVALID, "payload: trailing data")
	}
	if *schema != SchemaVersion {
		return models.Errorf(models.EINVALID, "payload: schema %d, want %d", *schema, SchemaVersion)
	}
	if *typ != wantType {
		return models.Errorf(models.EINVALID, "payload: type %q, want %q", *typ, wantType)
	}
	return nil
}

func jsonErr(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q: %s is not a %s", e.Field, e.Value, e.Type)
	case *json.SyntaxError:
		return "not valid JSON at offset " + strconv.FormatInt(e.Offset, 10)
	}
	return "not valid JSON"
}

// DecodeUsersMessage parses and checks a users message; records are
// validated one by one by DecodeUserRecord.
func DecodeUsersMessage(b []byte, maxSize int) (*UsersMessage, error) {
	var m UsersMessage
	if err := decodeEnvelope(b, maxSize, TypeUsers, &m, &m.Schema, &m.Type); err != nil {
		return nil, err
	}
	if m.Seq == 0 {
		return nil, models.Errorf(models.EINVALID, "users: seq required")
	}
	if len(m.Users) > MaxUsersPerMessage {
		return nil, models.Errorf(models.ETOOLARGE, "users: %d records, limit %d", len(m.Users), MaxUsersPerMessage)
	}
	return &m, nil
}

// DecodeHead parses a head message.
func DecodeHead(b []byte, maxSize int) (*HeadMessage, error) {
	var m HeadMessage
	if err := decodeEnvelope(b, maxSize, TypeHead, &m, &m.Schema, &m.Type); err != nil {
		return nil, err
	}
	return &m, nil
}

// DecodeSnapshotChunk parses and checks a snapshot chunk.
func DecodeSnapshotChunk(b []byte, maxSize int) (*SnapshotChunk, error) {
	var m SnapshotChunk
	if err := decodeEnvelope(b, maxSize, TypeSnapshot, &m, &m.Schema, &m.Type); err != nil {
		return nil, err
	}
	switch {
	case m.SnapshotID == "" || m.RequestID == "":
		return nil, models.Errorf(models.EINVALID, "snapshot: snapshot_id and request_id required")
	case m.Chunks < 1 || m.Chunks > MaxSnapshotChunks:
		return nil, models.Errorf(models.EINVALID, "snapshot: chunks %d out of range", m.Chunks)
	case m.Chunk < 0 || m.Chunk >= m.Chunks:
		return nil, models.Errorf(models.EINVALID, "snapshot: chunk %d of %d", m.Chunk, m.Chunks)
	case len(m.Users) > MaxUsersPerMessage:
		return nil, models.Errorf(models.ETOOLARGE, "snapshot: %d records in a chunk, limit %d", len(m.Users), MaxUsersPerMessage)
	case m.Total < 0:
		return nil, models.Errorf(models.EINVALID, "snapshot: negative total")
	}
	return &m, nil
}

// DecodeAck parses an ack message.
func DecodeAck(b []byte, maxSize int) (*AckMessage, error) {
	var m AckMessage
	if err := decodeEnvelope(b, maxSize, TypeAck, &m, &m.Schema, &m.Type); err != nil {
		return nil, err
	}
	if len(m.Keys) > MaxAckKeys {
		return nil, models.Errorf(models.ETOOLARGE, "ack: %d keys, limit %d", len(m.Keys), MaxAckKeys)
	}
	return &m, nil
}

// DecodeUserRecord validates one wire record and converts it to the store's
// form. Deletes need only id and a positive version; upserts need a valid
// user, a positive version and valid descriptors. Errors are EINVALID.
func DecodeUserRecord(w *WireUser) (models.UserRecord, error) {
	var rec models.UserRecord
	if w.ID == "" || len(w.ID) > models.MaxIDLen {
		return rec, models.Errorf(models.EINVALID, "user: id required, at most %d characters", models.MaxIDLen)
	}
	if w.Version <= 0 {
		return rec, models.Errorf(models.EINVALID, "user %s: version must be positive", w.ID)
	}
	switch w.Op {
	case OpDelete:
		rec.User = models.User{ID: w.ID, Version: w.Version}
		if w.UpdatedAt != nil {
			rec.User.UpdatedAt = *w.UpdatedAt
		}
		rec.Deleted = true
		return rec, nil
	case OpUpsert, "":
	default:
		return rec, models.Errorf(models.EINVALID, "user %s: op %q is not upsert or delete", w.ID, w.Op)
	}
	u := models.User{
		ID: w.ID, ExternalID: w.ExternalID, Email: w.Email, FullName: w.FullName,
		Role: models.Role(w.Role), Status: models.UserStatus(w.Status), Department: w.Department,
		Programme: w.Programme, ClassGroup: w.ClassGroup, Version: w.Version,
	}
	if w.UpdatedAt != nil {
		u.UpdatedAt = *w.UpdatedAt
	}
	u.Normalize()
	if err := u.Validate(); err != nil {
		return rec, models.Errorf(models.EINVALID, "user %s: %s", w.ID, models.ErrorMessage(err))
	}
	if len(w.Encodings) > models.MaxEncodingsPerUser {
		return rec, models.Errorf(models.EINVALID, "user %s: %d encodings, limit %d", w.ID, len(w.Encodings), models.MaxEncodingsPerUser)
	}
	if len(w.LocalID) > models.MaxIDLen {
		return rec, models.Errorf(models.EINVALID, "user %s: local_id too long", w.ID)
	}
	rec.User, rec.LocalID = u, w.LocalID
	rec.Encodings = make([]models.FaceEncoding, 0, len(w.Encodings))
	for i := range w.Encodings {
		e := &w.Encodings[i]
		d, err := DecodeDescriptor(e.Descriptor, e.Dtype)
		if err != nil {
			return rec, models.Errorf(models.EINVALID, "user %s: encoding %d: %s", w.ID, i, models.ErrorMessage(err))
		}
		if len(e.ID) > models.MaxIDLen {
			return rec, models.Errorf(models.EINVALID, "user %s: encoding %d: id too long", w.ID, i)
		}
		fe := models.FaceEncoding{ID: e.ID, UserID: u.ID, Descriptor: d, Source: models.SourceCentral, Model: e.Model}
		if fe.Model == "" {
			fe.Model = models.DefaultModelName
		} else if fe.Model != models.DefaultModelName {
			return rec, models.Errorf(models.EINVALID, "user %s: encoding %d: model %q is not %s", w.ID, i, fe.Model, models.DefaultModelName)
		}
		if e.CreatedAt != nil {
			fe.CreatedAt = *e.CreatedAt
		}
		rec.Encodings = append(rec.Encodings, fe)
	}
	return rec, nil
}

// EncodeUserRecord converts a store record to its wire form, descriptors as
// dtype: "" or "json" for JSON arrays, DtypeFloat32 or DtypeFloat64 for
// base64.
func EncodeUserRecord(rec *models.UserRecord, dtype string) WireUser {
	u := &rec.User
	if rec.Deleted {
		w := WireUser{Op: OpDelete, ID: u.ID, Version: u.Version}
		if !u.UpdatedAt.IsZero() {
			t := u.UpdatedAt
			w.UpdatedAt = &t
		}
		return w
	}
	w := WireUser{
		Op: OpUpsert, ID: u.ID, Version: u.Version, ExternalID: u.ExternalID, Email: u.Email,
		FullName: u.FullName, Role: string(u.Role), Status: string(u.Status), Department: u.Department,
		Programme: u.Programme, ClassGroup: u.ClassGroup, LocalID: rec.LocalID,
	}
	if !u.UpdatedAt.IsZero() {
		t := u.UpdatedAt
		w.UpdatedAt = &t
	}
	for i := range rec.Encodings {
		e := &rec.Encodings[i]
		we := WireEncoding{ID: e.ID, Model: e.Model}
		if !e.CreatedAt.IsZero() {
			t := e.CreatedAt.UTC()
			we.CreatedAt = &t
		}
		switch dtype {
		case DtypeFloat32, DtypeFloat64:
			we.Descriptor = EncodeDescriptorBase64(&e.Descriptor, dtype)
			we.Dtype = dtype
		default:
			we.Descriptor = EncodeDescriptorArray(&e.Descriptor)
		}
		w.Encodings = append(w.Encodings, we)
	}
	return w
}

func appendFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
