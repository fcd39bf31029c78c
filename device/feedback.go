package device

import (
	"sync"
	"time"

	"github.com/kioskd/kioskd/models"
)

// feedbackMessages are the texts shown for each gate problem.
var feedbackMessages = map[models.FeedbackKind]string{
	models.FeedbackIdle:         "Step up to the camera.",
	models.FeedbackOnePerson:    "One person at a time, please.",
	models.FeedbackMoveCloser:   "Please move closer.",
	models.FeedbackTooDark:      "Too dark: face the light.",
	models.FeedbackTooBright:    "Too bright: step out of the glare.",
	models.FeedbackHoldStill:    "Hold still.",
	models.FeedbackLookAtCamera: "Look at the camera.",
}

// announcer publishes feedback on the bus and remembers the last kind, so
// a gate problem is said once, not on every frame.
type announcer struct {
	bus *Bus
	now func() time.Time

	mu       sync.Mutex
	lastKind models.FeedbackKind
}

// problem publishes a gate problem when it differs from the last feedback;
// msg "" means the problem's usual text.
func (a *announcer) problem(kind models.FeedbackKind, msg string) {
	a.mu.Lock()
	same := kind == a.lastKind
	a.mu.Unlock()
	if kind == "" || same {
		return
	}
	if msg == "" {
		msg = feedbackMessages[kind]
	}
	a.publish(models.Feedback{Kind: kind, Message: msg})
}

// publish stamps f with the time when it has none and sends it.
func (a *announcer) publish(f models.Feedback) {
	if f.Time.IsZero() {
		f.Time = a.now()
	}
	a.mu.Lock()
	a.lastKind = f.Kind
	a.mu.Unlock()
	a.bus.Publish(f)
}
