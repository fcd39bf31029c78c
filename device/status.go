package device

import "time"

// CameraState is the state of the frame source.
type CameraState string

// Camera states.
const (
	CameraStarting     CameraState = "starting"     // opening the source for the first time
	CameraRunning      CameraState = "running"      // frames arriving
	CameraReconnecting CameraState = "reconnecting" // the source failed; reopening with backoff
	CameraBlack        CameraState = "black"        // frames arrive but have been black for Config.CameraCheck
	CameraFrozen       CameraState = "frozen"       // frames arrive but have not changed for Config.CameraCheck
	CameraEnded        CameraState = "ended"        // a file or folder played to its end
	CameraStopped      CameraState = "stopped"      // Close was called
)

// CameraStatus is a snapshot of the pipeline for the API and health checks.
type CameraStatus struct {
	State       CameraState `json:"state"`
	Source      string      `json:"source"`
	Since       time.Time   `json:"since"` // when State was entered
	LastFrameAt time.Time   `json:"last_frame_at"`
	LastError   string      `json:"last_error,omitempty"`
	// Message says what to check when State is black or frozen.
	Message string `json:"message,omitempty"`
	// Frames read, frames gated (processed), frames dropped because the
	// pipeline was busy, and how many times the source was reopened.
	Frames    uint64 `json:"frames"`
	Processed uint64 `json:"processed"`
	// Idle counts frames not gated because nobody was in view and nothing
	// changed (idle.go).
	Idle    uint64 `json:"idle"`
	Dropped uint64 `json:"dropped"`
	Reopens uint64 `json:"reopens"`
	// Encodings run, attendance events recorded, unknown faces seen,
	// tracks refused for lack of liveness.
	Encodings      uint64 `json:"encodings"`
	Events         uint64 `json:"events"`
	Unknown        uint64 `json:"unknown"`
	LivenessFailed uint64 `json:"liveness_failed"`
	// AppearanceBreaks counts tracks ended because the face's appearance
	// changed at once (a photo swapped for another, or a camera cut).
	AppearanceBreaks uint64 `json:"appearance_breaks"`
	// NotVerified counts ID claims refused: the face did not match the ID
	// (or the ID has no enrolled face).
	NotVerified uint64 `json:"not_verified"`
	// FeedbackDropped counts feedback lost by slow bus subscribers.
	FeedbackDropped uint64 `json:"feedback_dropped"`
}
