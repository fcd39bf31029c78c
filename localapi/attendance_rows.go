package localapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// maxRowsSpan bounds the period of GET /api/v1/attendance/rows: it reads
// every event of the period to filter them by class group.
const maxRowsSpan = 31 * 24 * time.Hour

// AttendanceRow is an attendance event with the person's name and class
// group, as the technician's attendance page lists it.
type AttendanceRow struct {
	*models.AttendanceEvent
	Name       string `json:"name"`
	Email      string `json:"email"`
	ClassGroup string `json:"class_group"`
}

// handleAttendanceRows lists the events of a period (from and to required,
// at most maxRowsSpan apart), newest first, with who they belong to,
// optionally only those of one class group.
func (s *Server) handleAttendanceRows(c *gin.Context) {
	f, err := attendanceFilter(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if f.From.IsZero() || f.To.IsZero() || f.To.Sub(f.From) > maxRowsSpan {
		s.writeError(c, models.Errorf(models.EINVALID, "from, to: both required, at most 31 days apart").WithDetail("field", "from"))
		return
	}
	group := strings.TrimSpace(c.Query("class_group"))
	if len(group) > models.MaxFieldLen {
		s.writeError(c, models.Errorf(models.EINVALID, "class_group: too long").WithDetail("field", "class_group"))
		return
	}
	page := Page[AttendanceRow]{Items: []AttendanceRow{}, Offset: f.Offset, Limit: f.Limit}
	all := f
	all.Offset, all.Limit, all.Unlimited = 0, 0, true
	ctx := c.Request.Context()
	evs, _, err := s.deps.Store.ListAttendance(ctx, all)
	if err != nil {
		s.writeError(c, err)
		return
	}
	users := map[string]*models.User{}
	for _, ev := range evs {
		u, ok := users[ev.UserID]
		if !ok {
			u, err = s.deps.Store.GetUser(ctx, ev.UserID)
			if err != nil && models.ErrorCode(err) != models.ENOTFOUND {
				s.writeError(c, err)
				return
			}
			users[ev.UserID] = u // nil: the person was deleted since
		}
		row := AttendanceRow{AttendanceEvent: ev}
		if u != nil {
			row.Name, row.Email, row.ClassGroup = u.FullName, u.Email, u.ClassGroup
		}
		if group != "" && !strings.EqualFold(row.ClassGroup, group) {
			continue
		}
		if page.Total >= f.Offset && len(page.Items) < f.Limit {
			page.Items = append(page.Items, row)
		}
		page.Total++
	}
	c.JSON(http.StatusOK, page)
}
