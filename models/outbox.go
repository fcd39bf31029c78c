package models

import (
	"context"
	"time"
)

// Outbox message kinds: what sync publishes for each.
const (
	OutboxAttendance = "attendance" // Payload is the AttendanceEvent as JSON
	OutboxEnrolment  = "enrolment"  // Payload is the user record enrolled on the device
	OutboxUnknown    = "unknown"    // Payload counts unknown faces
)

// OutboxMessage is a message waiting in bbolt until central acknowledges Key.
// The store keeps it sealed with the descriptor key.
type OutboxMessage struct {
	Seq       uint64    `json:"seq"`  // assigned by the store; per-device order
	Kind      string    `json:"kind"` // one of the Outbox* kinds
	Key       string    `json:"key"`  // the idempotency key central acks (event uuid)
	Payload   []byte    `json:"payload"`
	CreatedAt time.Time `json:"created_at"`
	// UserID names the user whose personal data (descriptors, name) the
	// payload carries: deleting the user drops the message if still
	// pending. Leave it empty on messages that must outlive the user (the
	// notice of its deletion).
	UserID string `json:"user_id,omitempty"`
}

// Outbox is the durable queue of messages for central.
type Outbox interface {
	// Enqueue appends messages in one transaction, assigning Seq and
	// CreatedAt. Errors: EINVALID (empty kind or key).
	Enqueue(ctx context.Context, msgs ...*OutboxMessage) error
	// PendingOutbox returns up to limit messages with Seq > afterSeq, in
	// Seq order.
	PendingOutbox(ctx context.Context, afterSeq uint64, limit int) ([]*OutboxMessage, error)
	// AckOutbox removes the messages with these keys and marks attendance
	// events with these ids acked, in one transaction; the file is scrubbed
	// afterwards when a removed message carried personal data. Unknown keys
	// are ignored (acks arrive twice). It returns how many messages it
	// removed.
	AckOutbox(ctx context.Context, keys []string) (int, error)
	// OutboxLen returns the number of messages waiting.
	OutboxLen(ctx context.Context) (int, error)
}

// MetaStore keeps small named values (sync sequence numbers, device state).
type MetaStore interface {
	// GetMeta returns the value for key. Errors: ENOTFOUND.
	GetMeta(ctx context.Context, key string) ([]byte, error)
	// SetMeta stores value under key.
	SetMeta(ctx context.Context, key string, value []byte) error
}
