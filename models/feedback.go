package models

import "time"

// FeedbackKind is what the kiosk screen should tell the person in front of it.
type FeedbackKind string

// Feedback kinds, published by the pipeline on the in-process bus.
const (
	FeedbackIdle           FeedbackKind = "idle"
	FeedbackOnePerson      FeedbackKind = "one_person_please"
	FeedbackMoveCloser     FeedbackKind = "move_closer"
	FeedbackTooDark        FeedbackKind = "too_dark"
	FeedbackTooBright      FeedbackKind = "too_bright"
	FeedbackHoldStill      FeedbackKind = "hold_still"
	FeedbackLookAtCamera   FeedbackKind = "look_at_camera"
	FeedbackRecognised     FeedbackKind = "recognised"
	FeedbackUnknown        FeedbackKind = "unknown"
	FeedbackLivenessFailed FeedbackKind = "liveness_failed"
	FeedbackCameraLost     FeedbackKind = "camera_lost"
	// ID + face (device.ModeIDFace, device.ModeAuto).
	FeedbackNeedID      FeedbackKind = "need_id"      // show the ID card or type the ID
	FeedbackIDAccepted  FeedbackKind = "id_accepted"  // an ID was read or typed: now the face
	FeedbackUnknownID   FeedbackKind = "unknown_id"   // no active user has that ID
	FeedbackVerified    FeedbackKind = "verified"     // face matched the ID; attendance recorded
	FeedbackNotVerified FeedbackKind = "not_verified" // face does not match the ID: nothing recorded
)

// Feedback is one message for the kiosk screen (and for sync's status).
type Feedback struct {
	Kind    FeedbackKind `json:"kind"`
	Message string       `json:"message"` // big readable words, e.g. "Welcome, Ada - 08:02"
	UserID  string       `json:"user_id,omitempty"`
	Name    string       `json:"name,omitempty"`
	EventID string       `json:"event_id,omitempty"` // the committed AttendanceEvent
	Time    time.Time    `json:"time"`
}
