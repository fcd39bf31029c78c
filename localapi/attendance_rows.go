package localapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// maxRowsSpan bounds the period of GET /api/v1/attendance/rows: it reads
// every event of the period to filter them by class group and count them.
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
// at most maxRowsSpan apart), oldest first, with who they belong to,
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
	group, err := classGroupQuery(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	page := Page[AttendanceRow]{Items: []AttendanceRow{}, Offset: f.Offset, Limit: f.Limit}
	users := newUserCache(c.Request.Context(), s.deps.Store)
	f.Offset, f.Limit, f.Unlimited = 0, 0, true
	err = s.deps.Store.ForEachAttendance(c.Request.Context(), f, func(ev *models.AttendanceEvent) error {
		row := AttendanceRow{AttendanceEvent: ev}
		if u := users.get(ev.UserID); u != nil {
			row.Name, row.Email, row.ClassGroup = u.FullName, u.Email, u.ClassGroup
		}
		if group != "" && !strings.EqualFold(row.ClassGroup, group) {
			return nil
		}
		if page.Total >= page.Offset && len(page.Items) < page.Limit {
			page.Items = append(page.Items, row)
		}
		page.Total++
		return nil
	})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

// classGroupQuery reads the optional class_group filter.
func classGroupQuery(c *gin.Context) (string, error) {
	group := strings.TrimSpace(c.Query("class_group"))
	if len(group) > models.MaxFieldLen {
		return "", models.Errorf(models.EINVALID, "class_group: too long").WithDetail("field", "class_group")
	}
	return group, nil
}

// userCache looks each user up once per request (events repeat users);
// a deleted user is nil, and its row keeps the event without a name.
type userCache struct {
	ctx   context.Context
	store models.UserStore
	users map[string]*models.User
}

func newUserCache(ctx context.Context, store models.UserStore) *userCache {
	return &userCache{ctx: ctx, store: store, users: map[string]*models.User{}}
}

func (uc *userCache) get(id string) *models.User {
	u, ok := uc.users[id]
	if !ok {
		if len(uc.users) > 50_000 {
			clear(uc.users) // bounds memory on a huge export
		}
		u, _ = uc.store.GetUser(uc.ctx, id)
		uc.users[id] = u
	}
	return u
}
