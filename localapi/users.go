package localapi

import (
	"context"
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
	ctx := c.Request.Context()
	if err := s.deps.Store.CreateUser(ctx, &u); err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.enqueueEnrolment(ctx, u.ID); err != nil {
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
	if err := s.deps.Store.UpdateUser(ctx, u); err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.refreshGallery(ctx, u.ID); err != nil { // status may have changed
		s.writeError(c, err)
		return
	}
	if err := s.enqueueEnrolment(ctx, u.ID); err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (s *Server) handleDeleteUser(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("id")
	u, err := s.deps.Store.GetUser(ctx, id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.deps.Store.DeleteUser(ctx, id); err != nil {
		s.writeError(c, err)
		return
	}
	s.deps.Matcher.RemoveUser(id)
	if err := s.enqueue(ctx, &models.UserRecord{User: *u, Deleted: true}); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// refreshGallery makes the matcher hold exactly the user's stored
// descriptors when the user is active, none otherwise.
func (s *Server) refreshGallery(ctx context.Context, userID string) error {
	u, err := s.deps.Store.GetUser(ctx, userID)
	if models.ErrorCode(err) == models.ENOTFOUND {
		s.deps.Matcher.RemoveUser(userID)
		return nil
	} else if err != nil {
		return err
	}
	if u.Status != models.UserActive {
		s.deps.Matcher.RemoveUser(userID)
		return nil
	}
	encs, err := s.deps.Store.ListEncodings(ctx, userID)
	if err != nil {
		return err
	}
	ds := make([]models.Descriptor, len(encs))
	for i, e := range encs {
		ds[i] = e.Descriptor
	}
	s.deps.Matcher.SetUser(userID, ds)
	return nil
}

// enrolmentRecord returns the stored user with the encodings enrolled on
// the device: what central hears of a local enrolment.
func (s *Server) enrolmentRecord(ctx context.Context, userID string) (*models.UserRecord, error) {
	u, err := s.deps.Store.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	encs, err := s.deps.Store.ListEncodings(ctx, userID)
	if err != nil {
		return nil, err
	}
	rec := &models.UserRecord{User: *u}
	for _, e := range encs {
		if e.Source == models.SourceLocal {
			rec.Encodings = append(rec.Encodings, *e)
		}
	}
	return rec, nil
}

func (s *Server) enqueueEnrolment(ctx context.Context, userID string) error {
	rec, err := s.enrolmentRecord(ctx, userID)
	if err != nil {
		return err
	}
	return s.enqueue(ctx, rec)
}

// enqueue queues the records for central in one transaction; sync renders
// the wire format when it publishes them.
func (s *Server) enqueue(ctx context.Context, recs ...*models.UserRecord) error {
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]*models.OutboxMessage, len(recs))
	for i, rec := range recs {
		m, err := models.NewEnrolmentMessage(rec)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	return s.deps.Store.Enqueue(ctx, msgs...)
}
