package sync

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/kioskd/kioskd/models"
)

// The outbox holds domain records (models.AttendanceEvent, the record of
// models.NewEnrolmentMessage, UnknownFaces); this file renders them in the
// documented wire format when they are published, so the format has one
// owner and a pending message goes out in the format of the running build.

// WireAttendance is the payload of an attendance uplink message.
type WireAttendance struct {
	ID        string    `json:"id"` // the event uuid, also the message key
	UserID    string    `json:"user_id"`
	Time      time.Time `json:"time"`
	KioskID   string    `json:"kiosk_id"`
	Distance  float64   `json:"distance"`
	Liveness  string    `json:"liveness,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	// Against a session of central's timetable (absent outside one).
	ClassGroup  string `json:"class_group,omitempty"`
	Member      bool   `json:"member,omitempty"`
	Punctuality string `json:"punctuality,omitempty"` // on_time or late
	MinutesLate int    `json:"minutes_late,omitempty"`
}

// UnknownFaces is the outbox record and the wire payload of an unknown
// uplink message: how many unknown faces the kiosk saw in [From, To).
type UnknownFaces struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Count int       `json:"count"`
}

// EnqueueUnknownFaces puts an unknown-face count in the outbox.
func EnqueueUnknownFaces(ctx context.Context, ob models.Outbox, uf UnknownFaces) error {
	uf.From, uf.To = uf.From.UTC(), uf.To.UTC()
	return ob.Enqueue(ctx, &models.OutboxMessage{Kind: models.OutboxUnknown, Key: uuid.NewString(), Payload: mustJSON(uf)})
}

// RenderUplink returns the wire payload of an outbox message: attendance as
// WireAttendance, enrolment as WireUser (descriptors base64 float32),
// unknown as UnknownFaces, session_summary as SessionSummary. Errors: EINVALID (a record it cannot read).
func RenderUplink(m *models.OutboxMessage) (json.RawMessage, error) {
	switch m.Kind {
	case models.OutboxAttendance:
		var ev models.AttendanceEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			return nil, models.Errorf(models.EINVALID, "outbox %s: attendance record: %v", m.Key, err)
		}
		return mustJSON(WireAttendance{ID: ev.ID, UserID: ev.UserID, Time: ev.Time.UTC(), KioskID: ev.KioskID,
			Distance: ev.Distance, Liveness: ev.Liveness, SessionID: ev.SessionID, ClassGroup: ev.ClassGroup, Member: ev.Member,
			Punctuality: string(ev.Punctuality), MinutesLate: ev.MinutesLate}), nil
	case models.OutboxEnrolment:
		rec, err := m.EnrolmentRecord()
		if err != nil {
			return nil, err
		}
		return mustJSON(EncodeUserRecord(rec, DtypeFloat32)), nil
	case models.OutboxUnknown:
		var uf UnknownFaces
		if err := json.Unmarshal(m.Payload, &uf); err != nil {
			return nil, models.Errorf(models.EINVALID, "outbox %s: unknown record: %v", m.Key, err)
		}
		return mustJSON(uf), nil
	case OutboxSessionSummary:
		var sum SessionSummary
		if err := json.Unmarshal(m.Payload, &sum); err != nil {
			return nil, models.Errorf(models.EINVALID, "outbox %s: session summary: %v", m.Key, err)
		}
		return mustJSON(sum), nil
	}
	return nil, models.Errorf(models.EINVALID, "outbox %s: kind %q has no wire format", m.Key, m.Kind)
}
