package device

import (
	"context"
	"log/slog"
	"time"

	"github.com/kioskd/kioskd/models"
)

// decider turns gated frames and encodings into decisions: it follows one
// face as a track, gathers its votes and liveness evidence, applies the
// cooldown and commits the attendance (record.go), saying what happens on
// the way. It does no image work; the pipeline serialises its calls.
type decider struct {
	cfg    *Config
	store  AttendanceRecorder
	say    *announcer
	logger *slog.Logger
	warn   func(key, msg string, args ...any) // rate-limited warning
	ctx    context.Context
	now    func() time.Time // wall clock, for event times
	count  func(func(*CameraStatus))

	// onTrace and onRecord are the pipeline's hooks; nil when unset.
	onTrace  func(step string, trackID uint64, seq int, wall time.Time)
	onRecord func(ev *models.AttendanceEvent, t *track, at time.Time)

	track      *track
	nextTrack  uint64
	lastEvents map[string]lastEvent

	// ID + face (idface.go): the 1:1 check, the pending claim and the
	// last claim's number.
	verify   func(userID string, d *models.Descriptor) verdict
	claim    *idClaim
	claimSeq uint64
}

// lastEvent is a user's last commit, for the cooldown.
type lastEvent struct {
	at time.Time
	id string
}

func (d *decider) trace(step string, trackID uint64, seq int) {
	if d.onTrace != nil {
		d.onTrace(step, trackID, seq, time.Now())
	}
}

// gated moves the track on with one gated frame (frame time at, wall time
// captured) and returns it when the frame passed the gates, nil otherwise.
func (d *decider) gated(at, captured time.Time, seq int, g *Gate) *track {
	t := d.track
	if t != nil && at.Sub(t.lastSeen) > d.cfg.TrackTimeout {
		t, d.track = nil, nil
	}
	switch {
	case len(g.Faces) > 1:
		// Two people: whatever was gathered for one of them no longer
		// counts, and nothing is encoded.
		d.track = nil
		d.say.problem(g.Problem, "One person at a time, please.")
		return nil
	case g.Face == nil:
		d.say.problem(g.Problem, "")
		return nil
	}
	box := g.Face.Box
	if t != nil && d.appearanceBreak(t, g.Face.Patch) {
		t, d.track = nil, nil
	}
	if t == nil || iou(t.box, box) < d.cfg.TrackIoU {
		d.nextTrack++
		t = &track{id: d.nextTrack, firstSeen: at, votes: votes{m: d.cfg.ConfirmM},
			live: newLiveness(d.cfg.BlinkEAR, d.cfg.LivenessMotion)}
		d.track = t
	}
	t.box, t.lastSeen = box, at
	if g.Face.Patch != nil {
		t.patch = g.Face.Patch
	}
	if len(g.Face.Landmarks) == lmCount {
		was := t.live.proof()
		pl := g.Face.Planarity
		if t.firstSeen.Equal(at) {
			// Tracked from the frame before, which belongs to another
			// track (another face, or a photo swapped in): not this face's.
			pl = nil
		}
		t.live.add(at, g.Face.Landmarks, pl)
		if was == "" && t.live.proof() != "" {
			d.trace("live", t.id, seq)
		}
	}
	if !g.Passed() {
		msg := ""
		if g.Problem == models.FeedbackTooDark && backlit(g.Face) {
			msg = "Light behind you: turn so the light falls on your face."
		}
		d.say.problem(g.Problem, msg)
		// Evidence often comes while the face is turned (a head turn): a
		// track already identified on gated frames may be recorded.
		d.decide(t, at)
		return nil
	}
	if t.firstGated.IsZero() {
		t.firstGated = captured
		if d.onTrace != nil {
			d.onTrace("gated", t.id, seq, captured)
		}
	}
	t.luma = g.Face.Brightness
	return t
}

// wantsPixels reports whether the gates should track the face's pixels on
// the frame at frame time at (FaceQuality.Planarity): not once the current
// track has shown liveness or been decided, nor with liveness off. A face
// that may start a new track is tracked.
func (d *decider) wantsPixels(at time.Time) bool {
	t := d.track
	switch {
	case !d.cfg.Liveness:
		return false
	case t == nil || at.Sub(t.lastSeen) > d.cfg.TrackTimeout:
		return true
	}
	return !t.decided && t.live.proof() == ""
}

// appearanceBreak reports whether the face in patch no longer looks like
// the track's last one: the same place, but not the same face (see
// continuity.go).
func (d *decider) appearanceBreak(t *track, patch facePatch) bool {
	// A missing patch compares as 1: nothing to tell the faces apart.
	sim := t.patch.similarity(patch)
	if d.cfg.TrackContinuity <= 0 || sim >= d.cfg.TrackContinuity {
		return false
	}
	d.count(func(s *CameraStatus) { s.AppearanceBreaks++ })
	// Rate-limited: a noisy camera could do this on every frame; the
	// status counts every one.
	d.warn("appearance", "face changed at once (a photo swapped, or a camera cut); its track starts over",
		"track", t.id, "similarity", sim, "decided", t.decided)
	return true
}

// encodeDue reports whether t, undecided, is due another encoding at frame
// time at (EncodeInterval after the last).
func (d *decider) encodeDue(t *track, at time.Time) bool {
	return !t.decided && (t.lastEncode.IsZero() || at.Sub(t.lastEncode) >= d.cfg.EncodeInterval)
}

// current returns the track an encoding of track id should vote in: the
// current one, nil when it has ended.
func (d *decider) current(id uint64) *track {
	if t := d.track; t != nil && t.id == id {
		return t
	}
	return nil
}

// vote adds one encoding's identification (frame seq) to t.
func (d *decider) vote(t *track, v vote, seq int) {
	t.votes.add(v)
	if v.userID != "" {
		d.trace("vote", t.id, seq)
	} else {
		d.trace("vote-unknown", t.id, seq)
	}
}

// decide records attendance once K of the last M encodings agree and the
// face has shown it is alive, unless the cooldown holds; now is frame time.
func (d *decider) decide(t *track, now time.Time) {
	if t.decided {
		return
	}
	userID, dist, ok := t.votes.winner(d.cfg.ConfirmK)
	if d.cfg.Mode == ModeIDFace || d.cfg.Mode == ModeAuto {
		var handled bool
		if userID, dist, ok, handled = d.idWinner(t, userID, dist, ok, now); handled && !ok {
			return
		}
	}
	if !ok {
		if t.votes.unknown(d.cfg.ConfirmK) {
			d.unknown(t, "Face not recognised. Please see an administrator.")
		}
		return
	}
	proof := LivenessOff
	if d.cfg.Liveness {
		proof = t.live.proof()
		if proof == "" {
			if t.recognisedAt.IsZero() {
				t.recognisedAt = now
			}
			// Most people show passive evidence within a second; ask the
			// rest for what a photo cannot do.
			if !t.prompted && now.Sub(t.recognisedAt) >= livenessPromptAfter {
				t.prompted = true
				d.say.publish(models.Feedback{Kind: models.FeedbackLookAtCamera, Message: "Please blink, or turn your head a little."})
			}
			if !t.livenessFailed && now.Sub(t.recognisedAt) > d.cfg.LivenessTimeout {
				t.livenessFailed = true
				d.count(func(s *CameraStatus) { s.LivenessFailed++ })
				d.logger.Info("liveness not shown", "track", t.id, "expression_change", t.live.maxRange)
				d.say.publish(models.Feedback{Kind: models.FeedbackLivenessFailed, Message: "Liveness check failed. Please blink or move naturally; photos are not accepted."})
			}
			return
		}
	}
	if last, ok := d.recentEvent(userID, now); ok {
		t.decided = true
		d.say.publish(models.Feedback{Kind: models.FeedbackRecognised, UserID: userID, EventID: last.id,
			Message: "Already recorded.", Time: d.now()})
		return
	}
	d.record(t, userID, dist, proof, now)
}

// recentEvent returns the user's last event when it is within the cooldown,
// asking the store after a restart.
func (d *decider) recentEvent(userID string, now time.Time) (lastEvent, bool) {
	if d.cfg.Cooldown <= 0 {
		return lastEvent{}, false
	}
	if last, ok := d.lastEvents[userID]; ok {
		return last, now.Sub(last.at) < d.cfg.Cooldown
	}
	if ev, err := d.store.LastAttendance(d.ctx, userID); err == nil && d.now().Sub(ev.Time) < d.cfg.Cooldown {
		return lastEvent{at: now.Add(-d.now().Sub(ev.Time)), id: ev.ID}, true
	}
	return lastEvent{}, false
}

// pruneEvents bounds the cooldown map.
func (d *decider) pruneEvents(now time.Time) {
	if len(d.lastEvents) < 4096 {
		return
	}
	for id, e := range d.lastEvents {
		if now.Sub(e.at) >= d.cfg.Cooldown {
			delete(d.lastEvents, id)
		}
	}
}
