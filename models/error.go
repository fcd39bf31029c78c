package models

import (
	"errors"
	"fmt"
)

// Error codes. They are stable strings: the API returns them, scripts match on
// them, and localapi maps each to one HTTP status in one place.
const (
	EINTERNAL     = "internal"       // a bug or an I/O failure; details are logged, not shown
	EINVALID      = "invalid"        // the input is malformed or breaks a rule
	ENOTFOUND     = "not_found"      // the thing asked for does not exist
	ECONFLICT     = "conflict"       // the change clashes with existing state (duplicate email, duplicate face)
	EUNAUTHORIZED = "unauthorized"   // no or bad credentials
	EFORBIDDEN    = "forbidden"      // credentials fine, role insufficient
	ETOOLARGE     = "too_large"      // the input exceeds a size, pixel or row limit
	ETHROTTLED    = "throttled"      // too many attempts; try later
	EUNAVAILABLE  = "unavailable"    // a component (camera, models, broker) is not ready
	ENOFACE       = "no_face"        // an image holds no detectable face
	EMULTIFACE    = "multiple_faces" // an image holds more than one face
	EFACESMALL    = "face_too_small" // the face is smaller than the configured minimum
	EBADIMAGE     = "bad_image"      // the bytes are not a decodable image
	ESTALE        = "stale"          // an update older than the stored version
)

// Error is kioskd's coded error. Code is one of the E* constants; Message is
// safe to show to a user and says what to do; Details carries structured facts
// (for EMULTIFACE the face count, for ECONFLICT the other user) for clients.
type Error struct {
	Code    string
	Message string
	Details map[string]any
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("kioskd error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns a coded error with a formatted, user-safe message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns e with one more structured detail set.
func (e *Error) WithDetail(key string, v any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[key] = v
	return e
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil and
// EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of the first *Error in err's
// chain, and "Internal error." for any other error: internal details are logged,
// never shown.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorDetails returns the details of the first *Error in err's chain, or nil.
func ErrorDetails(err error) map[string]any {
	var e *Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}
