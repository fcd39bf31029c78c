package localapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

func (s *Server) handleHealthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// handleReadyz answers 200 once the store answers and kioskd says it is
// ready (models and gallery loaded), 503 saying why otherwise.
func (s *Server) handleReadyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.deps.Store.CountUsers(ctx); err != nil {
		s.logger.Warn("readyz: store", "err", err)
		s.writeError(c, models.Errorf(models.EUNAVAILABLE, "The database is not answering."))
		return
	}
	if s.deps.Ready != nil {
		if err := s.deps.Ready(); err != nil {
			if models.ErrorCode(err) == models.EINTERNAL {
				err = models.Errorf(models.EUNAVAILABLE, "Not ready: %v", err)
			}
			s.writeError(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// Status is the body of GET /api/v1/status.
type Status struct {
	DeviceID  string    `json:"device_id"`
	Version   string    `json:"version"`
	Time      time.Time `json:"time"`
	UptimeSec int64     `json:"uptime_seconds"`
	Ready     bool      `json:"ready"`
	Camera    any       `json:"camera"`
	Models    any       `json:"models"`
	Sync      any       `json:"sync"`
	// Calibration is the gallery's: impostor and genuine distances, the
	// operating points, and the warning when it is too dense for 1:N.
	Calibration any `json:"calibration"`
	Counts      struct {
		Users     int `json:"users"`
		Encodings int `json:"encodings"`
		Gallery   int `json:"gallery"` // descriptors in the matcher
		Outbox    int `json:"outbox"`
	} `json:"counts"`
}

func (s *Server) handleStatus(c *gin.Context) {
	body, err := s.cache.get("status", func() ([]byte, error) {
		st, err := s.status(c.Request.Context())
		if err != nil {
			return nil, err
		}
		return json.Marshal(st)
	})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

func (s *Server) status(ctx context.Context) (*Status, error) {
	st := &Status{DeviceID: s.cfg.DeviceID, Version: s.cfg.Version, Time: s.now().UTC(),
		UptimeSec: int64(s.now().Sub(s.started).Seconds())}
	var err error
	if st.Counts.Users, err = s.deps.Store.CountUsers(ctx); err != nil {
		return nil, err
	}
	if st.Counts.Encodings, err = s.deps.Store.CountEncodings(ctx); err != nil {
		return nil, err
	}
	if st.Counts.Outbox, err = s.deps.Store.OutboxLen(ctx); err != nil {
		return nil, err
	}
	st.Counts.Gallery = s.deps.Matcher.Len()
	st.Ready = s.deps.Ready == nil || s.deps.Ready() == nil
	st.Models = gin.H{"loaded": s.deps.Encoder != nil, "name": models.DefaultModelName}
	st.Calibration = s.deps.Gallery.Report()
	st.Camera = gin.H{"configured": false}
	if s.deps.Camera != nil {
		st.Camera = s.deps.Camera.Status()
	}
	st.Sync = gin.H{"configured": false}
	if s.deps.Sync != nil {
		st.Sync = s.deps.Sync.Status()
	}
	return st, nil
}
