package models

import (
	"context"
	"image"
)

// Face is one face found in an image.
type Face struct {
	Box        image.Rectangle `json:"box"`       // in the image's (EXIF-corrected) pixel coordinates
	Landmarks  []image.Point   `json:"landmarks"` // 5 points (dlib's 5-point model) or 68
	Descriptor Descriptor      `json:"-"`         // never serialised by the API
}

// Encoder finds faces in images and computes their descriptors.
type Encoder interface {
	// Encode decodes an image (JPEG, PNG; grayscale, CMYK and EXIF-rotated
	// too) and returns every face with its descriptor, left to right.
	// Errors: EBADIMAGE (unreadable, empty, truncated), ETOOLARGE (more
	// pixels or bytes than allowed; refused before decoding).
	Encode(ctx context.Context, img []byte) ([]Face, error)
	// EncodeOne applies the one-face rule: exactly one face, large enough.
	// Errors: as Encode, plus ENOFACE, EMULTIFACE (Details["count"]) and
	// EFACESMALL (Details["size"], Details["min"]).
	EncodeOne(ctx context.Context, img []byte) (*Face, error)
}

// Match is the result of a 1:N identification.
type Match struct {
	UserID   string  `json:"user_id,omitempty"` // "" when unknown
	Distance float64 `json:"distance"`          // to the best user's nearest descriptor; +Inf for an empty gallery
	// RunnerUpDistance is the distance to the nearest descriptor of the
	// second-best user, +Inf when there is none.
	RunnerUpDistance float64 `json:"runner_up_distance"`
	// BestUserID is the nearest user even when the match is refused.
	BestUserID string `json:"best_user_id,omitempty"`
	Known      bool   `json:"known"` // within threshold and clear of the runner-up by the margin
}

// Matcher identifies a descriptor against the cached gallery. Safe for
// concurrent use.
type Matcher interface {
	// Identify returns the best match for d. An empty gallery never matches.
	Identify(d *Descriptor) Match
	// SetUser replaces every descriptor of userID with ds (none removes it).
	SetUser(userID string, ds []Descriptor)
	// RemoveUser drops every descriptor of userID.
	RemoveUser(userID string)
	// Len returns the number of descriptors held.
	Len() int
}
