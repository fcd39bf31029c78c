package localapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/xuri/excelize/v2"

	"github.com/kioskd/kioskd/models"
)

// maxExportRows is what one Excel sheet holds below its header row.
const maxExportRows = 1_048_575

// attendanceFilter reads from, to (RFC 3339), user_id, session_id and paging.
func attendanceFilter(c *gin.Context) (models.AttendanceFilter, error) {
	var f models.AttendanceFilter
	var err error
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := c.Query(p.name); v != "" {
			if *p.dst, err = time.Parse(time.RFC3339, v); err != nil {
				return f, models.Errorf(models.EINVALID, "%s: want an RFC 3339 time such as 2025-01-31T08:00:00Z", p.name).WithDetail("field", p.name)
			}
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, models.Errorf(models.EINVALID, "from: must be before to").WithDetail("field", "from")
	}
	f.UserID, f.SessionID = c.Query("user_id"), c.Query("session_id")
	if len(f.UserID) > models.MaxIDLen || len(f.SessionID) > models.MaxFieldLen {
		return f, models.Errorf(models.EINVALID, "user_id, session_id: too long")
	}
	f.Offset, f.Limit, err = paging(c)
	return f, err
}

func (s *Server) handleListAttendance(c *gin.Context) {
	f, err := attendanceFilter(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	evs, total, err := s.deps.Store.ListAttendance(c.Request.Context(), f)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if evs == nil {
		evs = []*models.AttendanceEvent{}
	}
	c.JSON(http.StatusOK, Page[*models.AttendanceEvent]{Items: evs, Total: total, Offset: f.Offset, Limit: f.Limit})
}

var attendanceHeader = []any{"Event ID", "Time (UTC)", "User ID", "External ID", "Full name", "Email", "Kiosk", "Distance", "Liveness", "Session", "Sync state"}

func (s *Server) handleExportAttendance(c *gin.Context) {
	f, err := attendanceFilter(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	group, err := classGroupQuery(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	f.Offset, f.Limit, f.Unlimited = 0, 0, true
	ctx := c.Request.Context()
	x := excelize.NewFile(excelize.Options{TmpDir: s.cfg.TempDir})
	defer x.Close()
	sw, err := x.NewStreamWriter("Sheet1")
	if err != nil {
		s.writeError(c, err)
		return
	}
	_ = sw.SetColWidth(1, 1, 38)
	_ = sw.SetColWidth(2, 2, 22)
	_ = sw.SetColWidth(5, 6, 28)
	if err := sw.SetRow("A1", attendanceHeader); err != nil {
		s.writeError(c, err)
		return
	}
	users := newUserCache(ctx, s.deps.Store)
	row := 1
	err = s.deps.Store.ForEachAttendance(ctx, f, func(ev *models.AttendanceEvent) error {
		if row > maxExportRows {
			return models.Errorf(models.ETOOLARGE, "More than %d events: narrow the time range.", maxExportRows)
		}
		u := users.get(ev.UserID) // a deleted user leaves the name empty
		var ext, name, email, cg string
		if u != nil {
			ext, name, email, cg = u.ExternalID, u.FullName, u.Email, u.ClassGroup
		}
		if group != "" && !strings.EqualFold(cg, group) {
			return nil
		}
		row++
		cell, _ := excelize.CoordinatesToCellName(1, row)
		return sw.SetRow(cell, []any{
			safeCell(ev.ID), ev.Time.UTC().Format("2006-01-02 15:04:05"), safeCell(ev.UserID), safeCell(ext),
			safeCell(name), safeCell(email), safeCell(ev.KioskID), ev.Distance, safeCell(ev.Liveness),
			safeCell(ev.SessionID), string(ev.SyncState),
		})
	})
	if err == nil {
		err = sw.Flush()
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	name := fmt.Sprintf("attendance-%s.xlsx", s.now().UTC().Format("20060102-150405"))
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Header("Content-Type", xlsxContentType)
	c.Status(http.StatusOK)
	if _, err := x.WriteTo(c.Writer); err != nil {
		s.logger.Warn("export write", "err", err)
	}
}
