package models

import (
	"context"
	"fmt"
	"time"
)

// SyncState tracks an attendance event on its way to central.
type SyncState string

// Sync states. An event is Pending until central acknowledges its uuid end to
// end; only then is it Acked (PUBACK from the broker is not enough).
const (
	SyncPending SyncState = "pending"
	SyncAcked   SyncState = "acked"
)

// AttendanceEvent records that a user was recognised at a kiosk.
type AttendanceEvent struct {
	ID        string    `json:"id"` // UUID, the idempotency key end to end
	UserID    string    `json:"user_id"`
	Time      time.Time `json:"time"`
	KioskID   string    `json:"kiosk_id"`
	Distance  float64   `json:"distance"`
	Liveness  string    `json:"liveness,omitempty"` // how liveness was shown: "blink", "motion", "depth", "off"
	SessionID string    `json:"session_id,omitempty"`
	SyncState SyncState `json:"sync_state"`
	// Against a session of central's timetable (empty outside one): its
	// class group, whether the person belongs to it, on time or late (from
	// the session's late-after on) and, when late, minutes after its start.
	ClassGroup  string      `json:"class_group,omitempty"`
	Member      bool        `json:"member,omitempty"`
	Punctuality Punctuality `json:"punctuality,omitempty"`
	MinutesLate int         `json:"minutes_late,omitempty"`
}

// Punctuality says whether an attendance came on time for its session.
type Punctuality string

// Punctualities.
const (
	OnTime Punctuality = "on_time"
	Late   Punctuality = "late"
)

// PunctualityText is what the kiosk screen says of the event's
// punctuality: "On time", "Late (7 min)", or "" outside a session.
func (ev *AttendanceEvent) PunctualityText() string {
	switch ev.Punctuality {
	case OnTime:
		return "On time"
	case Late:
		return fmt.Sprintf("Late (%d min)", ev.MinutesLate)
	}
	return ""
}

// AttendanceFilter selects events for ListAttendance. Zero fields match all.
type AttendanceFilter struct {
	From, To  time.Time // From inclusive, To exclusive
	UserID    string
	SessionID string
	Offset    int
	Limit     int // 0 means DefaultPageSize; capped at MaxPageSize unless Unlimited
	Unlimited bool
}

// AttendanceStore keeps attendance events.
type AttendanceStore interface {
	// RecordAttendance validates ev, assigns ev.ID when empty, and commits
	// the event together with its outbox message (OutboxAttendance) in one
	// transaction: when it returns nil the event survives a crash.
	// Errors: EINVALID, ECONFLICT (an event with that id exists).
	RecordAttendance(ctx context.Context, ev *AttendanceEvent) error
	// ListAttendance returns matching events, newest first, and the total.
	ListAttendance(ctx context.Context, f AttendanceFilter) ([]*AttendanceEvent, int, error)
	// ForEachAttendance calls fn for each matching event, oldest first,
	// ignoring Offset and Limit (exports stream through it).
	ForEachAttendance(ctx context.Context, f AttendanceFilter, fn func(ev *AttendanceEvent) error) error
	// LastAttendance returns the user's latest event. Errors: ENOTFOUND.
	LastAttendance(ctx context.Context, userID string) (*AttendanceEvent, error)
	// DeleteAttendanceBefore removes acknowledged events older than t and
	// returns how many it removed; pending events are kept whatever their age.
	DeleteAttendanceBefore(ctx context.Context, t time.Time) (int, error)
}
