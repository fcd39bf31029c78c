package localapi

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
)

// tokenCookie carries the token for what a browser loads without headers
// (the MJPEG <img>, EventSource, downloads). It is honoured on GET only, so a
// forged cross-site form cannot use it to change anything.
const tokenCookie = "kioskd_token"

const ctxAccount = "localapi.account"
const ctxClaims = "localapi.claims"

// authenticate requires a valid token; with allowLoopback, a client on the
// loopback interface passes without one when cfg.TrustLoopback is set and
// its Host header names this machine (a DNS-rebinding page in the kiosk's
// browser reaches loopback under its own name, and is refused).
func (s *Server) authenticate(allowLoopback bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		tok := bearerToken(c.Request)
		if tok == "" && allowLoopback && s.cfg.TrustLoopback && isLoopback(c.Request) && s.hostAllowed(c.Request.Host) {
			c.Next()
			return
		}
		if tok == "" {
			s.writeError(c, models.Errorf(models.EUNAUTHORIZED, "Log in first: this needs an Authorization: Bearer token."))
			return
		}
		claims, err := s.tokens.verify(tok)
		if err != nil {
			s.writeError(c, err)
			return
		}
		a, err := s.session(c.Request.Context(), claims)
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.Set(ctxAccount, a)
		c.Set(ctxClaims, claims)
		c.Next()
	}
}

// session returns the account of a verified token while the token still
// stands for it: the account exists, is enabled and has the credential the
// token was issued for. Errors: EUNAUTHORIZED, the store's.
func (s *Server) session(ctx context.Context, claims *tokenClaims) (*models.LocalAccount, error) {
	a, err := s.accounts.get(ctx, claims.Email, s.deps.Store.GetAccount)
	if models.ErrorCode(err) == models.ENOTFOUND || (err == nil && a.Disabled) {
		return nil, models.Errorf(models.EUNAUTHORIZED, "This account no longer exists or is disabled.")
	} else if err != nil {
		return nil, err
	}
	if !s.tokens.matches(claims, a) {
		return nil, models.Errorf(models.EUNAUTHORIZED, "The password of this account changed, or the account was re-created; log in again.")
	}
	return a, nil
}

// sessionLive reports whether the session a stream was opened with still
// stands (expiry, logout, account deleted, disabled or its password
// changed); a loopback-trusted stream has none and stays live.
func (s *Server) sessionLive(c *gin.Context) bool {
	v, ok := c.Get(ctxClaims)
	if !ok {
		return true
	}
	claims := v.(*tokenClaims)
	if s.tokens.check(claims) != nil {
		return false
	}
	_, err := s.session(c.Request.Context(), claims)
	return err == nil
}

// requireRole refuses accounts without role (admins pass every check).
func (s *Server) requireRole(role models.AccountRole) gin.HandlerFunc {
	return func(c *gin.Context) {
		a := account(c)
		if a == nil || (a.Role != role && a.Role != models.AccountAdmin) {
			s.writeError(c, models.Errorf(models.EFORBIDDEN, "Only an admin may do this."))
			return
		}
		c.Next()
	}
}

// account returns the authenticated account, nil for a loopback client.
func account(c *gin.Context) *models.LocalAccount {
	v, _ := c.Get(ctxAccount)
	a, _ := v.(*models.LocalAccount)
	return a
}

func isAdmin(c *gin.Context) bool {
	a := account(c)
	return a != nil && a.Role == models.AccountAdmin
}

func bearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return ""
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if ck, err := r.Cookie(tokenCookie); err == nil {
			return ck.Value
		}
	}
	return ""
}

// clientAddr is the peer's IP: no forwarding header is trusted.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hostAllowed reports whether a Host header names this machine: a loopback
// name or address, or one of cfg.AllowedHosts (any port).
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, h := range s.cfg.AllowedHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

func isLoopback(r *http.Request) bool {
	ip := net.ParseIP(clientAddr(r))
	return ip != nil && ip.IsLoopback()
}

// LoginRequest is the body of POST /api/v1/auth/login.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// LoginResponse carries a new token.
type LoginResponse struct {
	Token     string               `json:"token"`
	ExpiresAt time.Time            `json:"expires_at"`
	Account   *models.LocalAccount `json:"account"`
}

// hashSlot waits for one of the password-hashing slots (one per core);
// release gives it back.
func (s *Server) hashSlot(ctx context.Context) (release func(), err error) {
	select {
	case s.hashSem <- struct{}{}:
		return func() { <-s.hashSem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// verifyPassword runs one hash verification in a hashing slot.
func (s *Server) verifyPassword(ctx context.Context, hash, pw string) (bool, error) {
	release, err := s.hashSlot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	return password.VerifyPassword(hash, pw)
}

// hashWork is the password hashing a login does: verify one hash, or spend
// the work of verifying one; tests wrap it to see which cost classes a
// failed login pays for.
type hashWork struct {
	verify func(hash, pw string) (bool, error)
	spend  func(hash, pw string)
}

// checkLogin verifies pw against a's hash (a nil or disabled a
// matches nothing) and, when it fails, spends the work of one hash of every
// other cost class in use, so a failed login costs the same whether the
// email is unknown, a device account (argon2id) or a central one (pbkdf2,
// bcrypt, ...). A success returns early: only the password's holder sees it.
func (s *Server) checkLogin(ctx context.Context, a *models.LocalAccount, pw string) (bool, error) {
	release, err := s.hashSlot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	class := ""
	if a != nil && !a.Disabled {
		ok, err := s.hash.verify(a.PasswordHash, pw)
		if ok || ctx.Err() != nil {
			return ok, err
		}
		if err != nil {
			s.logger.Warn("account password hash cannot be checked", "email", a.Email, "err", err)
		}
		class = password.PasswordCostClass(a.PasswordHash)
	}
	for c, h := range s.costClasses(ctx) {
		if c != class {
			s.hash.spend(h, pw)
		}
	}
	return false, nil
}

// maxCostClasses bounds the hashes a failed login spends work on.
const maxCostClasses = 4

// costClassTTL is how long the cost classes in use are reused.
const costClassTTL = 30 * time.Second

// costClasses maps each password cost class of the enabled accounts, and
// that of the device's own hashes, to one hash of it (at most
// maxCostClasses, the device's first).
func (s *Server) costClasses(ctx context.Context) map[string]string {
	s.classMu.Lock()
	defer s.classMu.Unlock()
	if s.classes != nil && s.now().Before(s.classesAt.Add(costClassTTL)) {
		return s.classes
	}
	m := map[string]string{password.PasswordCostClass(s.dummy): s.dummy}
	as, err := s.deps.Store.ListAccounts(ctx)
	if err != nil {
		return m // not cached: the next login tries again
	}
	for _, a := range as {
		if c := password.PasswordCostClass(a.PasswordHash); c != "" && !a.Disabled && len(m) < maxCostClasses {
			if _, ok := m[c]; !ok {
				m[c] = a.PasswordHash
			}
		}
	}
	s.classes, s.classesAt = m, s.now()
	return m
}

func (s *Server) handleLogin(c *gin.Context) {
	var req LoginRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	email := strings.ToLower(strings.TrimSpace(req.Email))
	addr := clientAddr(c.Request)
	if email == "" || req.Password == "" {
		s.writeError(c, models.Errorf(models.EINVALID, "email and password are required."))
		return
	}
	if len(email) > models.MaxEmailLen || len(req.Password) > password.MaxPasswordLen {
		s.writeError(c, models.Errorf(models.EINVALID, "email or password is too long."))
		return
	}
	if err := s.throttle.check(email, addr); err != nil {
		s.metrics.logins.WithLabelValues("throttled").Inc()
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	a, err := s.deps.Store.GetAccount(ctx, email)
	if err != nil && models.ErrorCode(err) != models.ENOTFOUND {
		s.writeError(c, err)
		return
	}
	ok, err := s.checkLogin(ctx, a, req.Password)
	if err != nil && ctx.Err() != nil {
		s.writeError(c, err)
		return
	}
	if !ok || a == nil || a.Disabled {
		s.throttle.fail(email, addr)
		s.metrics.logins.WithLabelValues("failed").Inc()
		s.writeError(c, models.Errorf(models.EUNAUTHORIZED, "Email or password is wrong."))
		return
	}
	s.throttle.succeed(email, addr)
	tok, exp, err := s.tokens.issue(a)
	if err != nil {
		s.writeError(c, err)
		return
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	http.SetCookie(c.Writer, &http.Cookie{Name: tokenCookie, Value: tok, Path: "/", Expires: exp,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.JSON(http.StatusOK, LoginResponse{Token: tok, ExpiresAt: exp.UTC(), Account: a})
}

func (s *Server) handleLogout(c *gin.Context) {
	if v, ok := c.Get(ctxClaims); ok {
		if err := s.tokens.revoke(c.Request.Context(), v.(*tokenClaims)); err != nil {
			s.writeError(c, err)
			return
		}
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: tokenCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.Status(http.StatusNoContent)
}

func (s *Server) handleMe(c *gin.Context) {
	c.JSON(http.StatusOK, account(c))
}

// PasswordChange is the body of PUT /api/v1/me/password.
type PasswordChange struct {
	Current string `json:"current_password"`
	New     string `json:"new_password"`
}

func (s *Server) handleChangePassword(c *gin.Context) {
	var req PasswordChange
	if err := s.bindJSON(c, &req); err != nil {
		s.writeError(c, err)
		return
	}
	a := account(c)
	ctx := c.Request.Context()
	addr := clientAddr(c.Request)
	if err := s.throttle.check(a.Email, addr); err != nil {
		s.writeError(c, err)
		return
	}
	if ok, _ := s.verifyPassword(ctx, a.PasswordHash, req.Current); !ok {
		s.throttle.fail(a.Email, addr)
		s.writeError(c, models.Errorf(models.EUNAUTHORIZED, "current_password: wrong.").WithDetail("field", "current_password"))
		return
	}
	if err := password.ValidatePassword(req.New, a.Email); err != nil {
		s.writeError(c, err)
		return
	}
	h, err := password.HashPassword(req.New)
	if err != nil {
		s.writeError(c, err)
		return
	}
	// A central account stays central: the new password stands as a local
	// override until central sends a newer version.
	if _, err := s.deps.Store.UpdateAccount(ctx, a.Email, func(b *models.LocalAccount) error {
		b.PasswordHash = h
		return nil
	}); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
