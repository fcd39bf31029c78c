package localapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// Enrolment duplicate codes (docs/accuracy.md): the face is another
// user's outright, or resembles another user and needs a technician's
// confirmation (confirm_different).
const (
	EDUPLICATE         = "duplicate"
	EPOSSIBLEDUPLICATE = "possible_duplicate"
)

// httpStatus is the one place mapping models error codes to HTTP statuses.
func httpStatus(code string) int {
	switch code {
	case models.EINVALID, models.ENOFACE, models.EMULTIFACE, models.EFACESMALL, models.EBADIMAGE:
		return http.StatusUnprocessableEntity
	case models.ENOTFOUND:
		return http.StatusNotFound
	case models.ECONFLICT, models.ESTALE, EDUPLICATE, EPOSSIBLEDUPLICATE:
		return http.StatusConflict
	case models.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case models.EFORBIDDEN:
		return http.StatusForbidden
	case models.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case models.ETHROTTLED:
		return http.StatusTooManyRequests
	case models.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// ErrorResponse is the body of every error reply.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody carries a models error's code, its user-safe message and details.
type ErrorBody struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// writeError replies with err's status and body. Internal errors are logged
// with the request and shown as "Internal error.".
func (s *Server) writeError(c *gin.Context, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = models.Errorf(models.ETOOLARGE, "request body: larger than %d bytes", mbe.Limit)
	}
	code := models.ErrorCode(err)
	if code == models.EINTERNAL {
		s.logger.Error("request failed", slog.String("method", c.Request.Method),
			slog.String("path", c.FullPath()), slog.Any("err", err))
	}
	status := httpStatus(code)
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if d, ok := models.ErrorDetails(err)["retry_after_seconds"].(int); ok {
			c.Header("Retry-After", itoa(d))
		}
	}
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="kioskd"`)
	}
	c.AbortWithStatusJSON(status, ErrorResponse{Error: ErrorBody{
		Code: code, Message: models.ErrorMessage(err), Details: models.ErrorDetails(err),
	}})
}
