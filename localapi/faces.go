package localapi

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	_ "image/jpeg" // DecodeConfig for the pixel bound
	_ "image/png"
	"io"
	"math"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// multipartOverhead allows for part headers and boundaries around an image.
const multipartOverhead = 64 << 10

// readImagePart streams the multipart body and returns the bytes of the part
// named field, refusing more than cfg.MaxImageBytes without reading on.
func (s *Server) readImagePart(c *gin.Context, field string) ([]byte, error) {
	ct := c.GetHeader("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "multipart/form-data" {
		return nil, models.Errorf(models.EINVALID, "Send the photo as multipart/form-data in a field named %q.", field)
	}
	s.guardBody(c, s.cfg.MaxImageBytes+multipartOverhead)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return nil, models.Errorf(models.EINVALID, "multipart body: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, models.Errorf(models.EINVALID, "%s: required (a JPEG or PNG photo)", field).WithDetail("field", field)
		} else if err != nil {
			return nil, asBodyError(err)
		}
		if p.FormName() != field {
			_, _ = io.Copy(io.Discard, p)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, s.cfg.MaxImageBytes+1))
		if err != nil {
			return nil, asBodyError(err)
		}
		if int64(len(b)) > s.cfg.MaxImageBytes {
			return nil, models.Errorf(models.ETOOLARGE, "%s: larger than %d MB", field, s.cfg.MaxImageBytes>>20)
		}
		if len(b) == 0 {
			return nil, models.Errorf(models.EBADIMAGE, "%s: the file is empty", field)
		}
		return b, s.checkPixels(b)
	}
}

// checkPixels refuses an image whose header claims more than
// cfg.MaxImagePixels, without decoding it; a PNG at 16 bits per channel
// counts each pixel twice (it decodes to twice the bytes). Headers it cannot
// read are left to the encoder, which says what is wrong.
func (s *Server) checkPixels(b []byte) error {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	px := int64(cfg.Width) * int64(cfg.Height)
	if cfg.ColorModel == color.RGBA64Model || cfg.ColorModel == color.NRGBA64Model {
		px *= 2
	}
	if px > int64(s.cfg.MaxImagePixels) {
		return models.Errorf(models.ETOOLARGE, "image: %dx%d is more than %d megapixels; resize it", cfg.Width, cfg.Height, s.cfg.MaxImagePixels/1_000_000).
			WithDetail("width", cfg.Width).WithDetail("height", cfg.Height)
	}
	return nil
}

// FaceResponse is an enrolled encoding (without its descriptor) and where the
// face was in the photo.
type FaceResponse struct {
	Encoding *models.FaceEncoding `json:"encoding"`
	Box      image.Rectangle      `json:"box"`
}

func (s *Server) handleUploadFace(c *gin.Context) {
	force, err := s.forceFlag(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	u, err := s.deps.Store.GetUser(ctx, c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	img, err := s.readImagePart(c, "image")
	if err != nil {
		s.writeError(c, err)
		return
	}
	face, err := s.deps.Encoder.EncodeOne(ctx, img)
	if err != nil {
		s.writeError(c, err)
		return
	}
	s.enrolFace(c, u, face, force)
}

func (s *Server) handleCaptureFace(c *gin.Context) {
	force, err := s.forceFlag(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if s.deps.Capturer == nil {
		s.writeError(c, models.Errorf(models.EUNAVAILABLE, "This kiosk has no camera running; enrol from a photo instead."))
		return
	}
	ctx := c.Request.Context()
	u, err := s.deps.Store.GetUser(ctx, c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CaptureTimeout)
	defer cancel()
	face, _, err := s.deps.Capturer.CaptureFace(cctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = models.Errorf(models.ENOFACE, "No usable face within %s: one person, facing the camera, close enough and well lit.", s.cfg.CaptureTimeout)
		}
		s.writeError(c, err)
		return
	}
	s.enrolFace(c, u, face, force)
}

// forceFlag reads ?force=true, which only admins may set.
func (s *Server) forceFlag(c *gin.Context) (bool, error) {
	switch strings.ToLower(c.Query("force")) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		if !isAdmin(c) {
			return false, models.Errorf(models.EFORBIDDEN, "Only an admin may enrol a face that matches another user (force).")
		}
		return true, nil
	}
	return false, models.Errorf(models.EINVALID, "force: want true or false").WithDetail("field", "force")
}

// duplicateError says who a face already belongs to, or nil.
func (s *Server) duplicateError(ctx context.Context, userID string, d *models.Descriptor) error {
	m := s.deps.Matcher.Identify(d)
	if m.BestUserID == "" || m.BestUserID == userID || !(m.Distance <= s.cfg.DuplicateDistance) {
		return nil
	}
	other, err := s.deps.Store.GetUser(ctx, m.BestUserID)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return nil // the gallery is ahead of the store; nothing to name
	} else if err != nil {
		return err
	}
	return duplicateOf(other, m.Distance)
}

func duplicateOf(other *models.User, dist float64) *models.Error {
	return models.Errorf(models.ECONFLICT, "This face matches %s (%s) at distance %.2f; an admin can enrol it anyway with force.",
		other.FullName, other.Email, dist).
		WithDetail("user_id", other.ID).WithDetail("name", other.FullName).WithDetail("email", other.Email).
		WithDetail("distance", math.Round(dist*1000)/1000)
}

// sameFace returns the user's encoding within cfg.SameFaceDistance of d, if
// any: the same photo enrolled again.
func (s *Server) sameFace(encs []*models.FaceEncoding, d *models.Descriptor) *models.FaceEncoding {
	for _, e := range encs {
		if models.Distance(&e.Descriptor, d) <= s.cfg.SameFaceDistance {
			return e
		}
	}
	return nil
}

func (s *Server) enrolFace(c *gin.Context, u *models.User, face *models.Face, force bool) {
	ctx := c.Request.Context()
	if !force {
		if err := s.duplicateError(ctx, u.ID, &face.Descriptor); err != nil {
			s.metrics.enrolments.WithLabelValues("duplicate").Inc()
			s.writeError(c, err)
			return
		}
	}
	encs, err := s.deps.Store.ListEncodings(ctx, u.ID)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if e := s.sameFace(encs, &face.Descriptor); e != nil {
		s.writeError(c, models.Errorf(models.ECONFLICT, "This photo is already enrolled for %s.", u.FullName).WithDetail("encoding_id", e.ID))
		return
	}
	enc := &models.FaceEncoding{UserID: u.ID, Descriptor: face.Descriptor, Source: models.SourceLocal, Model: models.DefaultModelName, CreatedAt: s.now().UTC()}
	if err := s.deps.Store.AddEncoding(ctx, enc); err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.refreshGallery(ctx, u.ID); err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.enqueueEnrolment(ctx, u.ID); err != nil {
		s.writeError(c, err)
		return
	}
	s.metrics.enrolments.WithLabelValues("ok").Inc()
	c.JSON(http.StatusCreated, FaceResponse{Encoding: enc, Box: face.Box})
}

func (s *Server) handleListFaces(c *gin.Context) {
	encs, err := s.deps.Store.ListEncodings(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	if encs == nil {
		encs = []*models.FaceEncoding{}
	}
	c.JSON(http.StatusOK, gin.H{"items": encs})
}

func (s *Server) handleDeleteFace(c *gin.Context) {
	ctx := c.Request.Context()
	userID, faceID := c.Param("id"), c.Param("face")
	encs, err := s.deps.Store.ListEncodings(ctx, userID)
	if err != nil {
		s.writeError(c, err)
		return
	}
	found := false
	for _, e := range encs {
		found = found || e.ID == faceID
	}
	if !found {
		s.writeError(c, models.Errorf(models.ENOTFOUND, "This user has no face encoding %q.", faceID))
		return
	}
	if err := s.deps.Store.DeleteEncoding(ctx, faceID); err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.refreshGallery(ctx, userID); err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.enqueueEnrolment(ctx, userID); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// IdentifyResponse is the result of POST /api/v1/identify.
type IdentifyResponse struct {
	Result   string   `json:"result"` // match, unknown, no_face, multiple_faces, bad_image
	UserID   string   `json:"user_id,omitempty"`
	Name     string   `json:"name,omitempty"`
	Distance *float64 `json:"distance,omitempty"`
	Faces    int      `json:"faces"`
	Message  string   `json:"message"`
}

func (s *Server) handleIdentify(c *gin.Context) {
	img, err := s.readImagePart(c, "image")
	if err != nil && models.ErrorCode(err) != models.EBADIMAGE {
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	var faces []models.Face
	if err == nil {
		faces, err = s.deps.Encoder.Encode(ctx, img)
	}
	resp := IdentifyResponse{Faces: len(faces)}
	switch {
	case models.ErrorCode(err) == models.EBADIMAGE:
		resp.Result, resp.Message = "bad_image", models.ErrorMessage(err)
	case err != nil:
		s.writeError(c, err)
		return
	case len(faces) == 0:
		resp.Result, resp.Message = "no_face", "No face found in the photo."
	case len(faces) > 1:
		resp.Result, resp.Message = "multiple_faces", "More than one face: use a photo of one person."
	default:
		m := s.deps.Matcher.Identify(&faces[0].Descriptor)
		if !math.IsInf(m.Distance, 0) {
			d := math.Round(m.Distance*1000) / 1000
			resp.Distance = &d
		}
		resp.Result, resp.Message = "unknown", "Not recognised."
		if m.Known {
			resp.Result, resp.UserID = "match", m.UserID
			if u, err := s.deps.Store.GetUser(ctx, m.UserID); err == nil {
				resp.Name = u.FullName
			}
			resp.Message = "Recognised " + resp.Name + "."
		}
	}
	s.metrics.identify.WithLabelValues(resp.Result).Inc()
	c.JSON(http.StatusOK, resp)
}
