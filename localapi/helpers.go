package localapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// maxJSONBody bounds a JSON request body.
const maxJSONBody = 1 << 20

// bindJSON decodes a JSON body strictly (unknown fields refused) into v.
func (s *Server) bindJSON(c *gin.Context, v any) error {
	if ct := c.ContentType(); ct != "application/json" {
		return models.Errorf(models.EINVALID, "Send a JSON body with Content-Type: application/json.")
	}
	s.guardBody(c, maxJSONBody)
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return models.Errorf(models.ETOOLARGE, "JSON body: larger than %d bytes", maxJSONBody)
		} else if errors.Is(err, errSlowBody) {
			return asBodyError(err)
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return models.Errorf(models.EINVALID, "%s: wrong type (want %s)", ute.Field, ute.Type).WithDetail("field", ute.Field)
		}
		if errors.Is(err, io.EOF) {
			return models.Errorf(models.EINVALID, "JSON body: empty")
		}
		msg := err.Error()
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return models.Errorf(models.EINVALID, "JSON body: %s", strings.TrimPrefix(msg, "json: "))
	}
	if dec.More() {
		return models.Errorf(models.EINVALID, "JSON body: more than one value")
	}
	return nil
}

// queryInt parses an optional non-negative integer query parameter.
func queryInt(c *gin.Context, name string, def, maxVal int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxVal {
		return 0, models.Errorf(models.EINVALID, "%s: want an integer in [0, %d]", name, maxVal).WithDetail("field", name)
	}
	return n, nil
}

// Page is a page of a list.
type Page[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

func paging(c *gin.Context) (offset, limit int, err error) {
	if offset, err = queryInt(c, "offset", 0, 1<<30); err != nil {
		return
	}
	limit, err = queryInt(c, "limit", models.DefaultPageSize, models.MaxPageSize)
	if err == nil && limit == 0 {
		limit = models.DefaultPageSize
	}
	return
}
