package localapi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// Request bodies must keep arriving: a client that stalls for
// cfg.BodyIdleTimeout, or that after bodyGrace has sent less than
// bodyMinRate bytes a second on average, is cut off, so slow clients cannot
// hold connections and upload slots open. (Headers are bounded by the
// server's ReadHeaderTimeout.)
const (
	bodyGrace   = 30 * time.Second
	bodyMinRate = 16 << 10 // bytes/s: a poor mobile link still sends 10x this
)

// errSlowBody is returned by a guarded body that arrives too slowly.
var errSlowBody = errors.New("the request body arrives too slowly")

// guardBody bounds c's request body to limit bytes and makes it arrive at a
// useful pace (see bodyIdle).
func (s *Server) guardBody(c *gin.Context, limit int64) {
	c.Request.Body = &pacedBody{r: http.MaxBytesReader(c.Writer, c.Request.Body, limit),
		rc: http.NewResponseController(c.Writer), idle: s.cfg.BodyIdleTimeout, start: time.Now()}
}

// pacedBody pushes the connection's read deadline on with every read and
// refuses a body that falls below bodyMinRate.
type pacedBody struct {
	r     io.ReadCloser
	rc    *http.ResponseController
	idle  time.Duration
	start time.Time
	n     int64
}

func (b *pacedBody) Read(p []byte) (int, error) {
	now := time.Now()
	if el := now.Sub(b.start); el > bodyGrace && float64(b.n) < bodyMinRate*el.Seconds() {
		return 0, errSlowBody
	}
	_ = b.rc.SetReadDeadline(now.Add(b.idle)) // unsupported only on test recorders
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errSlowBody
	case err == io.EOF:
		// The server's background read (which notices a client that went
		// away) must not time out while the handler works on the body.
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *pacedBody) Close() error { return b.r.Close() }

// asBodyError turns a body read error into a coded one.
func asBodyError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return models.Errorf(models.ETOOLARGE, "request body: larger than %d bytes", mbe.Limit)
	case errors.Is(err, errSlowBody):
		return models.Errorf(models.EINVALID, "request body: it stalled or arrived under %d KB/s; send it again over a better link", bodyMinRate>>10)
	}
	return models.Errorf(models.EINVALID, "multipart body: %v", err)
}
