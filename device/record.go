package device

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/kioskd/kioskd/models"
)

// record commits userID's attendance for t (mean vote distance dist,
// liveness proof, frame time now) and announces it after the commit. A
// failure says nothing: the next encoding tries again.
func (d *decider) record(t *track, userID string, dist float64, proof string, now time.Time) {
	user, err := d.store.GetUser(d.ctx, userID)
	if err != nil || user.Status != models.UserActive {
		if models.ErrorCode(err) == models.EINTERNAL {
			d.warn("user", "look up user", "user", userID, "err", err)
			return // try again with the next encoding
		}
		t.decided = true
		d.say.publish(models.Feedback{Kind: models.FeedbackUnknown, Message: "Face not recognised. Please see an administrator."})
		return
	}
	ev := &models.AttendanceEvent{
		ID:        uuid.NewString(),
		UserID:    userID,
		Time:      d.now(),
		KioskID:   d.cfg.KioskID,
		Distance:  dist,
		Liveness:  proof,
		SyncState: models.SyncPending,
	}
	d.trace("commit", t.id, -1)
	if err := d.store.RecordAttendance(d.ctx, ev); err != nil {
		// Not committed: say nothing, try again with the next encoding.
		d.warn("record", "record attendance", "user", userID, "err", err)
		return
	}
	t.decided = true
	d.trace("committed", t.id, -1)
	d.lastEvents[userID] = lastEvent{at: now, id: ev.ID}
	d.pruneEvents(now)
	d.count(func(s *CameraStatus) { s.Events++ })
	d.logger.Info("attendance recorded", "user", userID, "event", ev.ID, "distance", dist, "liveness", proof)
	if d.onRecord != nil {
		d.onRecord(ev, t, now)
	}
	msg := fmt.Sprintf("Welcome, %s - %s", user.FullName, ev.Time.Local().Format("15:04"))
	if pt := ev.PunctualityText(); pt != "" { // the recorder stamps central's class session
		msg += " - " + pt
	}
	kind := models.FeedbackRecognised
	if t.verifiedUser != "" {
		kind, msg = models.FeedbackVerified, "ID verified. "+msg
	}
	d.say.publish(models.Feedback{Kind: kind, UserID: userID, Name: user.FullName, EventID: ev.ID,
		Time: ev.Time, Message: msg})
}
