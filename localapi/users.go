package localapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// UserInput is the body of POST /api/v1/users and PUT /api/v1/users/{id}.
// Version and UpdatedAt belong to the store and central.
type UserInput struct {
	ExternalID string            `json:"external_id"`
	Email      string            `json:"email"`
	FullName   string            `json:"full_name"`
	Role       models.Role       `json:"role"`
	Status     models.UserStatus `json:"status"`
	Department string            `json:"department"`
	Programme  string            `json:"programme"`
	ClassGroup string            `json:"class_group"`
}

func (in *UserInput) apply(u *models.User) {
	u.ExternalID, u.Email, u.FullName, u.Role, u.Status = in.ExternalID, in.Email, in.FullName, in.Role, in.Status
	u.Department, u.Programme, u.ClassGroup = in.Department, in.Programme, in.ClassGroup
	u.Normalize()
}

func (s *Server) handleListUsers(c *gin.Context) {
	offset, limit, err := paging(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	f := models.UserFilter{Query: c.Query("q"), Role: models.Role(c.Query("role")), ClassGroup: c.Query("class_group"), Offset: offset, Limit: limit}
	if len(f.Query) > models.MaxNameLen {
		s.writeError(c, models.Errorf(models.EINVALID, "q: longer than %d characters", models.MaxNameLen))
		return
	}
	if f.Role != "" && !f.Role.Valid() {
		s.writeError(c, models.Errorf(models.EINVALID, "role: %q is not one of trainee, trainer, hod, dp_academics, admin", f.Role))
		return
	}
	key := fmt.Sprintf("users\x00%s\x00%s\x00%s\x00%d\x00%d", f.Query, f.Role, f.ClassGroup, f.Offset, f.Limit)
	body, err := s.cache.get(key, func() ([]byte, error) {
		users, total, err := s.deps.Store.ListUsers(c.Request.Context(), f)
		if err != nil {
			return nil, err
		}
		if users == nil {
			users = []*models.User{}
		}
		return json.Marshal(Page[*models.User]{Items: users, Total: total, Offset: offset, Limit: limit})
	})
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

func (s *Server) handleGetUser(c *gin.Context) {
	u, err := s.deps.Store.GetUser(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (s *Server) handleCreateUser(c *gin.Context) {
	var in UserInput
	if err := s.bindJSON(c, &in); err != nil {
		s.writeError(c, err)
		return
	}
	var u models.User
	in.apply(&u)
	if err := u.Validate(); err != nil {
		s.writeError(c, err)
		return
	}
	if _, err := s.deps.Enroller.Enrol(c.Request.Context(), &models.Enrolment{Op: models.EnrolCreateUser, User: &u}); err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, u)
}

func (s *Server) handleUpdateUser(c *gin.Context) {
	var in UserInput
	if err := s.bindJSON(c, &in); err != nil {
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	u, err := s.deps.Store.GetUser(ctx, c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	in.apply(u)
	if err := u.Validate(); err != nil {
		s.writeError(c, err)
		return
	}
	if _, err := s.deps.Enroller.Enrol(ctx, &models.Enrolment{Op: models.EnrolUpdateUser, User: u}); err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (s *Server) handleDeleteUser(c *gin.Context) {
	if _, err := s.deps.Enroller.Enrol(c.Request.Context(), &models.Enrolment{Op: models.EnrolDeleteUser, UserID: c.Param("id")}); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
