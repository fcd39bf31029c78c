package device

import (
	"time"

	"github.com/kioskd/kioskd/models"
)

// The decider's side of ID + face (mode.go): a claim, from a QR code or the
// keypad, makes the next decision a 1:1 check of the track's encodings
// against the claimed user only; K matching encodings name that user (then
// liveness, cooldown and the commit apply unchanged), K others refuse the
// claim and nothing is recorded. A claim is used by one decision or expires.
//
// Who is unknown: in auto, a face no enrolled user's 1:1 check could accept
// (K stranger votes) is unknown at once, like in mode face, and is not asked
// for an ID; a face 1:N cannot name but some user's 1:1 could (close to
// several, or within a user's 1:1 range) is asked for one. In both modes a
// track asked for an ID that shows no valid one within idPromptTimeout is
// counted unknown, once.

// idPromptTimeout is how long a face asked for an ID may take to have one
// verified before it counts as unknown: time to take a card out and hold
// it up, or to type an ID, at a door.
const idPromptTimeout = 10 * time.Second

// verdict is a 1:1 answer for one encoding.
type verdict struct {
	match, enrolled bool
	distance        float64
}

// setClaim makes userID (ID xid, read from source) the claim the next
// decision verifies against, replacing any earlier one.
func (d *decider) setClaim(userID, xid, source string) {
	d.claimSeq++
	d.claim = &idClaim{seq: d.claimSeq, userID: userID, externalID: xid, source: source, expires: d.now().Add(ClaimTTL)}
}

// liveClaim returns the pending claim, dropping it once expired.
func (d *decider) liveClaim() *idClaim {
	if d.claim != nil && !d.now().Before(d.claim.expires) {
		d.logger.Info("id claim expired", "source", d.claim.source, "user", d.claim.userID)
		d.claim = nil
	}
	return d.claim
}

// wantsID reports whether an ID should be looked for (a QR code in the
// frame): in id_face without a pending claim unless the face in view is
// already verified, in auto only once the screen asked for one.
func (d *decider) wantsID() bool {
	t := d.track
	switch {
	case d.cfg.Mode != ModeIDFace && d.cfg.Mode != ModeAuto:
		return false
	case d.liveClaim() != nil:
		return false
	case t != nil && (t.decided || t.verifiedUser != ""):
		return false
	case d.cfg.Mode == ModeIDFace:
		return true
	}
	return t != nil && t.askedID
}

// askID asks t's person for an ID, once per track (now is frame time); a
// track asked idPromptTimeout ago that has no verified ID yet is counted
// unknown, once.
func (d *decider) askID(t *track, now time.Time) {
	if !t.askedID {
		t.askedID = true
		d.say.publish(models.Feedback{Kind: models.FeedbackNeedID, Message: "Show your ID card or type your ID."})
	}
	if t.askedAt.IsZero() {
		t.askedAt = now
	}
	if !t.unknownAnnounce && now.Sub(t.askedAt) >= idPromptTimeout {
		d.unknown(t, "No valid ID shown. Please see an administrator.")
	}
}

// unknown counts t as unknown, once, and says msg.
func (d *decider) unknown(t *track, msg string) {
	if t.unknownAnnounce {
		return
	}
	t.unknownAnnounce = true
	d.count(func(s *CameraStatus) { s.Unknown++ })
	d.say.publish(models.Feedback{Kind: models.FeedbackUnknown, Message: msg})
}

// strangers reports whether at least k of the kept votes are strangers.
func (v *votes) strangers(k int) bool {
	n := 0
	for _, x := range v.ring {
		if x.userID == "" && x.stranger {
			n++
		}
	}
	return n >= k
}

// idWinner is decide's step for modes id_face and auto, given the 1:N
// winner at frame time now: it returns who t is, and handled when the 1:N
// answer must not be used (waiting for an ID or its check, or the claim was
// refused).
func (d *decider) idWinner(t *track, userID string, dist float64, ok bool, now time.Time) (string, float64, bool, bool) {
	if t.verifiedUser != "" {
		return t.verifiedUser, t.verifiedDist, true, true
	}
	if c := d.liveClaim(); c != nil {
		return d.checkClaim(t, c)
	}
	k := d.cfg.ConfirmK
	switch {
	case d.cfg.Mode == ModeAuto && !ok && t.votes.strangers(k):
		// Nobody's 1:1 check could accept this face: asking for an ID
		// cannot help; decide says "not recognised" as in mode face.
		return "", 0, false, false
	case d.cfg.Mode == ModeIDFace || (!ok && t.votes.unknown(k)):
		// auto: 1:N could not name anyone clearly.
		d.askID(t, now)
		return "", 0, false, true
	}
	return userID, dist, ok, false
}

// checkClaim verifies t's encodings against claim c: K matches name c's
// user, K misses refuse c ("ID and face do not match"); either uses c up.
func (d *decider) checkClaim(t *track, c *idClaim) (string, float64, bool, bool) {
	var hits, misses int
	var sum float64
	for i := range t.votes.ring {
		v := &t.votes.ring[i]
		if v.desc == nil {
			continue
		}
		if v.checked != c.seq {
			r := d.verify(c.userID, v.desc)
			if !r.enrolled {
				d.refuseClaim(t, c, "This ID has no enrolled face. Please see an administrator.")
				return "", 0, false, true
			}
			v.checked, v.match, v.vdist = c.seq, r.match, r.distance
		}
		if v.match {
			hits++
			sum += v.vdist
		} else {
			misses++
		}
	}
	switch {
	case hits >= d.cfg.ConfirmK:
		d.claim = nil
		t.verifiedUser, t.verifiedDist = c.userID, sum/float64(hits)
		d.logger.Info("id verified", "source", c.source, "user", c.userID, "distance", t.verifiedDist)
		return t.verifiedUser, t.verifiedDist, true, true
	case misses >= d.cfg.ConfirmK:
		d.refuseClaim(t, c, "ID and face do not match.")
	}
	return "", 0, false, true
}

// refuseClaim uses c up without recording anything and says why.
func (d *decider) refuseClaim(t *track, c *idClaim, msg string) {
	d.claim = nil
	t.askedID = true // the refusal stays on the screen; the keypad stays open
	d.count(func(s *CameraStatus) { s.NotVerified++ })
	d.logger.Info("id not verified", "source", c.source, "user", c.userID, "track", t.id)
	d.say.publish(models.Feedback{Kind: models.FeedbackNotVerified, Message: msg})
}
