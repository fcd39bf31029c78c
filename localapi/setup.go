package localapi

import (
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
)

// SetupRequest is the body of POST /api/v1/setup: the first admin.
type SetupRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// SetupState is the answer of GET /api/v1/setup.
type SetupState struct {
	// Needed is true while no account exists.
	Needed bool `json:"needed"`
	// Allowed is true when this client may create the first admin: only a
	// browser on the kiosk itself (loopback) may.
	Allowed bool `json:"allowed"`
}

// setupMu makes "no account yet" and "create the first admin" one step, so
// two first-run requests cannot both win.
var setupMu sync.Mutex

// setupAllowed reports whether r comes from the kiosk itself: loopback, not
// relayed by a local proxy, and not a page of another origin.
func setupAllowed(r *http.Request) bool {
	if !isLoopback(r) {
		return false
	}
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	return true
}

// noAccounts reports whether the store holds no account at all.
func (s *Server) noAccounts(c *gin.Context) (bool, error) {
	as, err := s.deps.Store.ListAccounts(c.Request.Context())
	return len(as) == 0, err
}

func (s *Server) handleSetupState(c *gin.Context) {
	none, err := s.noAccounts(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, SetupState{Needed: none, Allowed: none && setupAllowed(c.Request)})
}

// handleSetup creates the first admin and logs it in. It works only from
// the kiosk itself and only while no account exists; afterwards admins add
// accounts with POST /api/v1/accounts.
func (s *Server) handleSetup(c *gin.Context) {
	if !setupAllowed(c.Request) {
		s.writeError(c, models.Errorf(models.EFORBIDDEN, "The first admin can be created only on the kiosk itself (http://127.0.0.1), or with `kioskd admin add`."))
		return
	}
	var in SetupRequest
	if err := s.bindJSON(c, &in); err != nil {
		s.writeError(c, err)
		return
	}
	email, err := accountEmail(in.Email)
	if err != nil {
		s.writeError(c, err)
		return
	}
	var h string
	err = password.ValidatePassword(in.Password, email)
	if err == nil {
		h, err = password.HashPassword(in.Password)
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	setupMu.Lock()
	defer setupMu.Unlock()
	none, err := s.noAccounts(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if !none {
		s.writeError(c, models.Errorf(models.ECONFLICT, "Setup is done: an account exists already. Log in, or ask an admin for an account."))
		return
	}
	a := &models.LocalAccount{Email: email, Role: models.AccountAdmin, PasswordHash: h, Source: models.SourceLocal, UpdatedAt: s.now().UTC()}
	if err := s.deps.Store.PutAccount(c.Request.Context(), a); err != nil {
		s.writeError(c, err)
		return
	}
	s.logger.Info("first admin created from the kiosk", "email", email)
	tok, exp, err := s.tokens.issue(a)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, LoginResponse{Token: tok, ExpiresAt: exp.UTC(), Account: a})
}
