package localapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// IDClaimer takes an ID typed on the kiosk screen's keypad: the next face
// is verified against that user only (device.Pipeline implements it).
// Errors: EINVALID, ENOTFOUND (unknown ID), ECONFLICT (this kiosk
// identifies by face only), EUNAVAILABLE.
type IDClaimer interface {
	ClaimID(ctx context.Context, externalID string) (*models.User, error)
}

// Keypad claims are rate-limited for the whole kiosk (one screen, one
// person at a time): claimBurst at once, then one per claimEvery, so IDs
// cannot be tried in bulk against a face held up to the camera.
const (
	claimBurst = 5
	claimEvery = 2 * time.Second
)

// claimLimiter is a token bucket; its zero value is full on first use.
type claimLimiter struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// allow takes a token at now, or returns how long until one is free.
func (l *claimLimiter) allow(now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = claimBurst
	} else if el := now.Sub(l.last); el > 0 {
		l.tokens = min(claimBurst, l.tokens+el.Seconds()/claimEvery.Seconds())
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true, 0
	}
	return false, time.Duration((1 - l.tokens) * float64(claimEvery))
}

// ClaimRequest is the body of POST /kiosk/claim.
type ClaimRequest struct {
	ID string `json:"id"`
}

// ClaimResponse answers an accepted keypad claim; it names nobody, since
// the screen is public.
type ClaimResponse struct {
	Result  string `json:"result"` // "claimed"
	Message string `json:"message"`
}

// handleClaim takes a keypad ID for the camera's next decision.
func (s *Server) handleClaim(c *gin.Context) {
	if s.deps.IDClaims == nil {
		s.writeError(c, models.Errorf(models.EUNAVAILABLE, "Camera offline: this kiosk has no camera running."))
		return
	}
	if ok, wait := s.claims.allow(s.now()); !ok {
		secs := int(wait/time.Second) + 1
		s.writeError(c, models.Errorf(models.ETHROTTLED, "Too many IDs typed; try again in %d s.", secs).WithDetail("retry_after_seconds", secs))
		return
	}
	var req ClaimRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	if _, err := s.deps.IDClaims.ClaimID(c.Request.Context(), req.ID); err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ClaimResponse{Result: "claimed", Message: "ID accepted: now look at the camera."})
}
