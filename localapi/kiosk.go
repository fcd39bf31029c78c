package localapi

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// web holds the kiosk screen and the technician page: plain HTML, CSS and
// JavaScript, nothing fetched from outside.
//
//go:embed web
var web embed.FS

var webFS, _ = fs.Sub(web, "web")

func (s *Server) handlePage(name string) gin.HandlerFunc {
	return func(c *gin.Context) {
		b, err := fs.ReadFile(webFS, name)
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/html; charset=utf-8", b)
	}
}

var staticTypes = map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

func (s *Server) handleStatic(c *gin.Context) {
	name := strings.TrimPrefix(path.Clean(c.Param("file")), "/")
	ct, ok := staticTypes[path.Ext(name)]
	b, err := fs.ReadFile(webFS, name)
	if !ok || err != nil || strings.HasSuffix(name, ".html") {
		s.writeError(c, models.Errorf(models.ENOTFOUND, "No such file."))
		return
	}
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, ct, b)
}

// streamSlot takes one of cfg.MaxStreams slots for a live stream, or answers
// 503 when all are taken; release gives the slot back.
func (s *Server) streamSlot(c *gin.Context) (release func(), ok bool) {
	select {
	case s.streams <- struct{}{}:
		return func() { <-s.streams }, true
	default:
		s.writeError(c, models.Errorf(models.EUNAVAILABLE, "Too many live streams are open (%d); close one or try again later.", cap(s.streams)).
			WithDetail("retry_after_seconds", 10))
		return nil, false
	}
}

// sseHeartbeat keeps idle feedback streams open through proxies and lets
// the server notice a client that went away.
const sseHeartbeat = 15 * time.Second

// handleFeedbackSSE streams the pipeline's feedback as Server-Sent Events
// ("event: feedback", data: models.Feedback as JSON). Without a pipeline it
// sends one "Camera offline" message and keeps the stream open.
func (s *Server) handleFeedbackSSE(c *gin.Context) {
	release, ok := s.streamSlot(c)
	if !ok {
		return
	}
	defer release()
	w := c.Writer
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.metrics.sseClients.Inc()
	defer s.metrics.sseClients.Dec()
	send := func(fb models.Feedback) bool {
		b, _ := json.Marshal(fb)
		if _, err := fmt.Fprintf(w, "event: feedback\ndata: %s\n\n", b); err != nil {
			return false
		}
		w.Flush()
		return true
	}
	var ch <-chan models.Feedback
	if s.deps.Feedback != nil {
		var cancel func()
		ch, cancel = s.deps.Feedback.Subscribe(16)
		defer cancel()
		if !send(models.Feedback{Kind: models.FeedbackIdle, Message: "Look at the camera", Time: s.now().UTC()}) {
			return
		}
	} else if !send(models.Feedback{Kind: models.FeedbackCameraLost, Message: "Camera offline", Time: s.now().UTC()}) {
		return
	}
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	recheck := time.NewTicker(s.cfg.StreamRecheck)
	defer recheck.Stop()
	ctx := c.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-recheck.C:
			if !s.sessionLive(c) {
				return
			}
		case fb, ok := <-ch:
			if !ok {
				send(models.Feedback{Kind: models.FeedbackCameraLost, Message: "Camera offline", Time: s.now().UTC()})
				return
			}
			if !send(fb) {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			w.Flush()
		}
	}
}

// Preview pacing: at most previewFPS frames a second to each viewer.
const previewFPS = 12

// handlePreview streams the camera's latest frames as MJPEG
// (multipart/x-mixed-replace), which an <img> shows without any script.
func (s *Server) handlePreview(c *gin.Context) {
	if s.deps.Preview == nil {
		s.writeError(c, models.Errorf(models.EUNAVAILABLE, "Camera offline: this kiosk has no camera running."))
		return
	}
	release, ok := s.streamSlot(c)
	if !ok {
		return
	}
	defer release()
	const boundary = "kioskdframe"
	w := c.Writer
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(time.Second / previewFPS)
	defer tick.Stop()
	ctx := c.Request.Context()
	// Each part is followed at once by the next boundary: browsers show a
	// part only when they see the boundary that ends it.
	if _, err := fmt.Fprintf(w, "--%s\r\n", boundary); err != nil {
		return
	}
	var last uint64
	var sent, checked time.Time
	for {
		if time.Since(checked) >= s.cfg.StreamRecheck {
			if !s.sessionLive(c) {
				return
			}
			checked = time.Now()
		}
		// An unchanged frame is sent again each second: browsers render a
		// part when the next one starts, and a still camera must show too.
		if b, seq := s.deps.Preview.LatestJPEG(); b != nil && (seq != last || time.Since(sent) >= time.Second) {
			last, sent = seq, time.Now()
			if _, err := fmt.Fprintf(w, "Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(b)); err != nil {
				return
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "\r\n--%s\r\n", boundary); err != nil {
				return
			}
			w.Flush()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
