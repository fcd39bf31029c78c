package device

import (
	"context"
	"strings"
	"time"

	"github.com/kioskd/kioskd/models"
)

// Mode says how the kiosk decides who is in front of it (docs/accuracy.md,
// "Choosing a mode").
type Mode string

// Modes.
const (
	// ModeFace identifies the face 1:N against the whole gallery.
	ModeFace Mode = "face"
	// ModeIDFace always wants an ID first (the QR code of an ID card shown
	// to the camera, or the kiosk screen's keypad) and then verifies the
	// face against that user only.
	ModeIDFace Mode = "id_face"
	// ModeAuto identifies 1:N when the calibrated decision is clear and
	// otherwise asks for the ID, as ModeIDFace does.
	ModeAuto Mode = "auto"
)

// ClaimTTL is how long an ID shown or typed waits for its face.
const ClaimTTL = 20 * time.Second

// MaxClaimIDLen bounds an ID read from a QR code or typed on the keypad:
// the longest external_id a user may have.
const MaxClaimIDLen = models.MaxFieldLen

// IDVerifier checks a face against one user only, at that user's own
// threshold; *recognizer.Calibrator implements it.
type IDVerifier interface {
	VerifyUser(userID string, d *models.Descriptor) (match bool, distance, threshold float64, enrolled bool)
	// Verifiable reports whether some enrolled user's 1:1 check could
	// accept a face whose 1:N answer is m.
	Verifiable(m models.Match) bool
}

// UserFinder finds the user an ID card or the keypad names; the bolt store
// implements it.
type UserFinder interface {
	GetUserByExternalID(ctx context.Context, externalID string) (*models.User, error)
}

// idClaim is an ID shown or typed, waiting for a face to verify.
type idClaim struct {
	seq        uint64
	userID     string
	externalID string
	source     string    // "qr" or "keypad"
	expires    time.Time // wall clock
}

// UseIDs gives the pipeline what modes id_face and auto need: the users
// IDs name and the 1:1 check. Call it before Start.
func (p *Pipeline) UseIDs(users UserFinder, v IDVerifier) {
	p.users, p.verifier = users, v
}

// CleanClaimID trims an ID read or typed and checks it as a user's
// external_id is checked (models.User.Validate): 1-MaxClaimIDLen bytes of
// text without control characters, so that every ID central may give a
// user can be claimed.
func CleanClaimID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxClaimIDLen {
		return "", models.Errorf(models.EINVALID, "An ID is 1-%d characters.", MaxClaimIDLen).WithDetail("field", "id")
	}
	if err := models.CheckText("id", s); err != nil {
		return "", models.Errorf(models.EINVALID, "An ID holds no control characters.").WithDetail("field", "id")
	}
	return s, nil
}

// ClaimID takes an ID typed on the kiosk screen's keypad: the next face is
// verified against that user only, within ClaimTTL. Errors: ECONFLICT (this
// kiosk identifies by face only), EUNAVAILABLE (camera not running),
// EINVALID, ENOTFOUND ("Unknown ID", also said on the screen).
func (p *Pipeline) ClaimID(ctx context.Context, externalID string) (*models.User, error) {
	if p.cfg.Mode == ModeFace || p.cfg.Mode == "" {
		return nil, models.Errorf(models.ECONFLICT, "This kiosk identifies by face only; ID entry is off.")
	}
	if !p.started || p.closed {
		return nil, models.Errorf(models.EUNAVAILABLE, "The camera is not running.")
	}
	return p.claim(ctx, externalID, "keypad")
}

// claim resolves an ID from source and hands it to the decider; an unknown
// or inactive ID is said on the screen and refused.
func (p *Pipeline) claim(ctx context.Context, raw, source string) (*models.User, error) {
	xid, err := CleanClaimID(raw)
	if err != nil {
		return nil, err
	}
	u, err := p.users.GetUserByExternalID(ctx, xid)
	if err == nil && u.Status != models.UserActive {
		err = models.Errorf(models.ENOTFOUND, "no active user")
	}
	if err != nil {
		if models.ErrorCode(err) != models.ENOTFOUND {
			return nil, err
		}
		p.say.publish(models.Feedback{Kind: models.FeedbackUnknownID, Message: "Unknown ID. Please see an administrator."})
		return nil, models.Errorf(models.ENOTFOUND, "Unknown ID.")
	}
	p.stateMu.Lock()
	p.dec.setClaim(u.ID, xid, source)
	p.stateMu.Unlock()
	p.logger.Info("id claimed", "source", source, "user", u.ID)
	p.say.publish(models.Feedback{Kind: models.FeedbackIDAccepted, UserID: u.ID,
		Message: "ID " + xid + ": now look at the camera."})
	return u, nil
}
