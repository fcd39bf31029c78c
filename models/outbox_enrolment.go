package models

import (
	"bytes"
	"encoding/json"
)

// outboxRecord is how an OutboxEnrolment message keeps its domain record:
// the user, the encodings enrolled on the device (descriptors included,
// which FaceEncoding never marshals) and whether it was deleted. Package
// sync renders the documented wire format from it at publish time, so the
// outbox holds no wire format of its own.
type outboxRecord struct {
	User      User             `json:"user"`
	Encodings []outboxEncoding `json:"encodings,omitempty"`
	Deleted   bool             `json:"deleted,omitempty"`
}

type outboxEncoding struct {
	FaceEncoding
	Descriptor Descriptor `json:"descriptor"` // shadows FaceEncoding's unmarshalled field
}

// NewEnrolmentMessage returns the outbox message telling central of a user
// enrolled, changed or deleted (rec.Deleted) on the device, under a fresh
// key. Only the encodings in rec travel: callers pass the local ones.
func NewEnrolmentMessage(rec *UserRecord) (*OutboxMessage, error) {
	or := outboxRecord{User: rec.User, Deleted: rec.Deleted}
	for _, e := range rec.Encodings {
		or.Encodings = append(or.Encodings, outboxEncoding{FaceEncoding: e, Descriptor: e.Descriptor})
	}
	b, err := json.Marshal(or)
	if err != nil {
		return nil, Errorf(EINVALID, "enrolment: %v", err)
	}
	m := &OutboxMessage{Kind: OutboxEnrolment, Key: NewID(), Payload: b}
	if !rec.Deleted { // deleting the user drops its pending enrolments, never the notice
		m.UserID = rec.User.ID
	}
	return m, nil
}

// EnrolmentRecord decodes the domain record of an OutboxEnrolment message.
// Errors: EINVALID (another kind, or a payload NewEnrolmentMessage did not
// write).
func (m *OutboxMessage) EnrolmentRecord() (*UserRecord, error) {
	if m.Kind != OutboxEnrolment {
		return nil, Errorf(EINVALID, "outbox %s: kind %q is not %q", m.Key, m.Kind, OutboxEnrolment)
	}
	var or outboxRecord
	dec := json.NewDecoder(bytes.NewReader(m.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&or); err != nil {
		return nil, Errorf(EINVALID, "outbox %s: enrolment payload: %v", m.Key, err)
	}
	if or.User.ID == "" {
		return nil, Errorf(EINVALID, "outbox %s: enrolment payload: no user id", m.Key)
	}
	rec := &UserRecord{User: or.User, Deleted: or.Deleted}
	for _, e := range or.Encodings {
		fe := e.FaceEncoding
		fe.Descriptor = e.Descriptor
		rec.Encodings = append(rec.Encodings, fe)
	}
	return rec, nil
}
