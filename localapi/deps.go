package localapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kioskd/kioskd/models"
)

// FeedbackSource is the pipeline's feedback bus: each subscriber gets its own
// channel; cancel unsubscribes and closes it. A slow subscriber loses
// messages rather than blocking the pipeline.
type FeedbackSource interface {
	Subscribe(buffer int) (<-chan models.Feedback, func())
}

// PreviewSource gives the latest camera frame as JPEG (with the face box
// drawn by the pipeline) and a sequence number that changes with each frame;
// nil bytes mean no frame yet.
type PreviewSource interface {
	LatestJPEG() ([]byte, uint64)
}

// FaceCapturer waits for the next frame that passes the pipeline's gates
// (one face, large enough, sharp, lit) and returns the face and that frame as
// JPEG. Errors: ENOFACE etc. as models.Encoder, EUNAVAILABLE (no camera).
type FaceCapturer interface {
	CaptureFace(ctx context.Context) (*models.Face, []byte, error)
}

// StatusProvider reports a component's state for /api/v1/status, as any
// JSON-encodable value.
type StatusProvider interface {
	Status() any
}

// StatusFunc adapts a function to StatusProvider, so that kioskd can wire a
// component whose Status method returns its own concrete type:
// StatusFunc(func() any { return pipeline.Status() }).
type StatusFunc func() any

// Status calls f.
func (f StatusFunc) Status() any { return f() }

// GalleryJudge makes the decisions calibrated on the enrolled gallery
// (recognizer.Calibrator): who else a face resembles, when that is the same
// person outright, and 1:1 checks of a face against one user.
type GalleryJudge interface {
	// NearestOther returns the user nearest to d other than userID and
	// its distance; "" when there is none.
	NearestOther(userID string, d *models.Descriptor) (string, float64)
	// DuplicateDistance: another user's face closer than this is the same
	// person outright (closer than almost any two users of this gallery).
	DuplicateDistance() float64
	// VerifyUser checks d against userID's faces only, at the user's own
	// threshold; enrolled is false when the user has no face.
	VerifyUser(userID string, d *models.Descriptor) (match bool, distance, threshold float64, enrolled bool)
	// Report is the gallery's calibration, shown by the status endpoint.
	Report() any
}

// ConfigProvider is kioskd's runtime configuration, which admins read and
// change through /api/v1/config. UpdateConfig takes a JSON merge patch and
// returns the new effective configuration; kioskd's implementation refuses
// every change (ECONFLICT: edit the file, restart). Errors: EINVALID, ECONFLICT.
type ConfigProvider interface {
	Config() any
	UpdateConfig(ctx context.Context, patch []byte) (any, error)
}

// Deps are the server's collaborators. Store, Enroller, Encoder, Matcher and
// Gallery are required; the rest may be nil, and the endpoints that need them then answer
// 503 EUNAVAILABLE saying what is missing (kioskd runs without a camera).
type Deps struct {
	Store models.Store
	// Enroller makes every change to users and faces: the store with its
	// outbox message in one transaction, then the matcher.
	Enroller models.Enroller
	Encoder  models.Encoder
	Matcher  models.Matcher
	Gallery  GalleryJudge

	Feedback FeedbackSource
	Preview  PreviewSource
	Capturer FaceCapturer
	Camera   StatusProvider // the device pipeline's status
	Sync     StatusProvider // sync's status (connected, last error, ...)
	Config   ConfigProvider

	// Ready reports whether kioskd is ready to serve (models loaded,
	// gallery loaded); nil means ready once the store answers.
	Ready func() error
	// Registry receives the API's metrics and is served at /metrics; nil
	// makes a private registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}
