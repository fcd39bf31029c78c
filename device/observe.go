package device

import (
	"time"

	"github.com/kioskd/kioskd/models"
)

// Observe sets functions the pipeline calls on its goroutines, for metrics:
// gate with each gated frame's problem ("" when the frame passed), record
// after each committed event with the wall time of its track's first gated
// frame. Call it before Start; a nil function leaves that hook unset.
func (p *Pipeline) Observe(gate func(problem models.FeedbackKind), record func(ev *models.AttendanceEvent, firstGated time.Time)) {
	if gate != nil {
		p.onGate = func(_ time.Time, g *Gate, _ *track) { gate(g.Problem) }
	}
	if record != nil {
		p.onRecord = func(ev *models.AttendanceEvent, t *track, _ time.Time) { record(ev, t.firstGated) }
	}
}
