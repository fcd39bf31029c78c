package localapi

import (
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
)

// AccountInput is the body of POST /api/v1/accounts and PUT
// /api/v1/accounts/{email} (where every field is optional).
type AccountInput struct {
	Email    string             `json:"email"`
	Role     models.AccountRole `json:"role"`
	Password string             `json:"password"`
	Disabled *bool              `json:"disabled"`
}

func (s *Server) handleListAccounts(c *gin.Context) {
	as, err := s.deps.Store.ListAccounts(c.Request.Context())
	if err != nil {
		s.writeError(c, err)
		return
	}
	if as == nil {
		as = []*models.LocalAccount{}
	}
	c.JSON(http.StatusOK, gin.H{"items": as})
}

// accountEmail normalises an account's email (trimmed, lower case) and
// checks it; the error names the field.
func accountEmail(raw string) (string, error) {
	email := strings.ToLower(strings.TrimSpace(raw))
	if !models.ValidEmail(email) || len(email) > models.MaxEmailLen {
		return "", models.Errorf(models.EINVALID, "email: %q is not a valid address", truncate(email, 80)).WithDetail("field", "email")
	}
	return email, nil
}

func (s *Server) handleCreateAccount(c *gin.Context) {
	var in AccountInput
	if err := s.bindJSON(c, &in); err != nil {
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	email, err := accountEmail(in.Email)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if !in.Role.Valid() {
		s.writeError(c, models.Errorf(models.EINVALID, "role: want technician or admin").WithDetail("field", "role"))
		return
	}
	if err := password.ValidatePassword(in.Password, email); err != nil {
		s.writeError(c, err)
		return
	}
	if _, err := s.deps.Store.GetAccount(ctx, email); err == nil {
		s.writeError(c, models.Errorf(models.ECONFLICT, "email: an account %s exists already", email).WithDetail("field", "email"))
		return
	} else if models.ErrorCode(err) != models.ENOTFOUND {
		s.writeError(c, err)
		return
	}
	h, err := password.HashPassword(in.Password)
	if err != nil {
		s.writeError(c, err)
		return
	}
	a := &models.LocalAccount{Email: email, Role: in.Role, PasswordHash: h, Source: models.SourceLocal, UpdatedAt: s.now().UTC()}
	if in.Disabled != nil {
		a.Disabled = *in.Disabled
	}
	if err := s.deps.Store.PutAccount(ctx, a); err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, a)
}

func (s *Server) handleUpdateAccount(c *gin.Context) {
	var in AccountInput
	if err := s.bindJSON(c, &in); err != nil {
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	a, err := s.deps.Store.GetAccount(ctx, c.Param("email"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	if in.Email != "" && !strings.EqualFold(in.Email, a.Email) {
		s.writeError(c, models.Errorf(models.EINVALID, "email: cannot be changed; create a new account").WithDetail("field", "email"))
		return
	}
	if in.Role != "" && !in.Role.Valid() {
		s.writeError(c, models.Errorf(models.EINVALID, "role: want technician or admin").WithDetail("field", "role"))
		return
	}
	var hash string
	if in.Password != "" {
		if err := password.ValidatePassword(in.Password, a.Email); err != nil {
			s.writeError(c, err)
			return
		}
		if hash, err = password.HashPassword(in.Password); err != nil {
			s.writeError(c, err)
			return
		}
	}
	me := account(c)
	// A central account keeps its Source and Version: the edit stands as a
	// local override until central sends a newer version.
	b, err := s.deps.Store.UpdateAccount(ctx, a.Email, func(b *models.LocalAccount) error {
		if in.Role != "" {
			b.Role = in.Role
		}
		if in.Disabled != nil {
			b.Disabled = *in.Disabled
		}
		if hash != "" {
			b.PasswordHash = hash
		}
		if me != nil && strings.EqualFold(me.Email, b.Email) && (b.Disabled || b.Role != models.AccountAdmin) {
			return models.Errorf(models.EINVALID, "You cannot disable or demote your own account; ask another admin.")
		}
		return nil
	})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, b)
}

func (s *Server) handleDeleteAccount(c *gin.Context) {
	if strings.EqualFold(account(c).Email, c.Param("email")) {
		s.writeError(c, models.Errorf(models.EINVALID, "You cannot delete your own account; ask another admin."))
		return
	}
	if err := s.deps.Store.DeleteAccount(c.Request.Context(), c.Param("email")); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// APIConfig is the local API's own configuration as GET /api/v1/config shows
// it when kioskd wires no ConfigProvider.
type APIConfig struct {
	TokenTTLSeconds   int64   `json:"token_ttl_seconds"`
	MaxUploadBytes    int64   `json:"max_upload_bytes"`
	MaxImageBytes     int64   `json:"max_image_bytes"`
	MaxImportRows     int     `json:"max_import_rows"`
	MaxZipEntries     int     `json:"max_zip_entries"`
	MaxUnzipBytes     int64   `json:"max_unzip_bytes"`
	MaxImagePixels    int     `json:"max_image_pixels"`
	DuplicateDistance float64 `json:"duplicate_distance"`
	LoginMaxFailures  int     `json:"login_max_failures"`
}

func (s *Server) handleGetConfig(c *gin.Context) {
	if s.deps.Config != nil {
		c.JSON(http.StatusOK, s.deps.Config.Config())
		return
	}
	c.JSON(http.StatusOK, gin.H{"localapi": APIConfig{
		TokenTTLSeconds: int64(s.cfg.TokenTTL.Seconds()), MaxUploadBytes: s.cfg.MaxUploadBytes, MaxImageBytes: s.cfg.MaxImageBytes,
		MaxImportRows: s.cfg.MaxImportRows, MaxZipEntries: s.cfg.MaxZipEntries, MaxUnzipBytes: s.cfg.MaxUnzipBytes,
		MaxImagePixels: s.cfg.MaxImagePixels, DuplicateDistance: s.cfg.DuplicateDistance, LoginMaxFailures: s.cfg.LoginMaxFailures,
	}})
}

func (s *Server) handlePutConfig(c *gin.Context) {
	if s.deps.Config == nil {
		s.writeError(c, models.Errorf(models.EUNAVAILABLE, "This kiosk does not accept configuration changes over the API; edit the config file."))
		return
	}
	if ct := c.ContentType(); ct != "application/json" && ct != "application/merge-patch+json" {
		s.writeError(c, models.Errorf(models.EINVALID, "Send a JSON merge patch with Content-Type: application/merge-patch+json."))
		return
	}
	s.guardBody(c, maxJSONBody)
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.writeError(c, asBodyError(err))
		return
	}
	v, err := s.deps.Config.UpdateConfig(c.Request.Context(), b)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// handleUnlockAccount clears the account's login throttling (every address).
func (s *Server) handleUnlockAccount(c *gin.Context) {
	email := strings.ToLower(strings.TrimSpace(c.Param("email")))
	if _, err := s.deps.Store.GetAccount(c.Request.Context(), email); err != nil {
		s.writeError(c, err)
		return
	}
	n := s.throttle.unlock(email)
	s.logger.Info("login throttling cleared", slog.String("email", email), slog.Int("keys", n), slog.String("by", account(c).Email))
	c.Status(http.StatusNoContent)
}
