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
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kioskd/kioskd/models"
)

// multipartOverhead allows for part headers and boundaries around an image.
const multipartOverhead = 64 << 10

// maxFormValue bounds a text field of an upload (an id).
const maxFormValue = 256

// readImageForm streams the multipart body and returns the bytes of the part
// named field, refusing more than cfg.MaxImageBytes without reading on, and
// the form's short text fields (each up to maxFormValue bytes), wherever
// they sit in the body.
func (s *Server) readImageForm(c *gin.Context, field string) ([]byte, map[string]string, error) {
	ct := c.GetHeader("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "multipart/form-data" {
		return nil, nil, models.Errorf(models.EINVALID, "Send the photo as multipart/form-data in a field named %q.", field)
	}
	s.guardBody(c, s.cfg.MaxImageBytes+multipartOverhead)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return nil, nil, models.Errorf(models.EINVALID, "multipart body: %v", err)
	}
	var img []byte
	fields := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, nil, asBodyError(err)
		}
		if p.FormName() != field || img != nil {
			if p.FileName() == "" && p.FormName() != field {
				v, err := io.ReadAll(io.LimitReader(p, maxFormValue+1))
				if err != nil {
					return nil, nil, asBodyError(err)
				}
				if len(v) > maxFormValue {
					return nil, nil, models.Errorf(models.EINVALID, "%s: longer than %d bytes", p.FormName(), maxFormValue).WithDetail("field", p.FormName())
				}
				fields[p.FormName()] = strings.TrimSpace(string(v))
			}
			_, _ = io.Copy(io.Discard, p)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, s.cfg.MaxImageBytes+1))
		if err != nil {
			return nil, nil, asBodyError(err)
		}
		if int64(len(b)) > s.cfg.MaxImageBytes {
			return nil, nil, models.Errorf(models.ETOOLARGE, "%s: larger than %d MB", field, s.cfg.MaxImageBytes>>20)
		}
		if len(b) == 0 {
			return nil, fields, models.Errorf(models.EBADIMAGE, "%s: the file is empty", field)
		}
		img = b
	}
	if img == nil {
		return nil, fields, models.Errorf(models.EINVALID, "%s: required (a JPEG or PNG photo)", field).WithDetail("field", field)
	}
	return img, fields, s.checkPixels(img)
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
	// Confirmed is set when the face resembled another user and was
	// enrolled on a confirmation or an admin's force.
	Confirmed *Confirmation `json:"confirmed,omitempty"`
	// Samples are every encoding a camera capture of several samples
	// enrolled (Encoding is the first).
	Samples []*models.FaceEncoding `json:"samples,omitempty"`
}

// Confirmation records who let a face similar to another user's be enrolled.
type Confirmation struct {
	SimilarUserID string  `json:"similar_user_id"`
	Distance      float64 `json:"distance"`
	Force         bool    `json:"force"`
	By            string  `json:"by"` // the account's email, or "loopback"
}

// actor names the caller for the log: its account's email, or "loopback".
func actor(c *gin.Context) string {
	if a := account(c); a != nil {
		return a.Email
	}
	return "loopback"
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
	img, fields, err := s.readImageForm(c, "image")
	if err != nil {
		s.writeError(c, err)
		return
	}
	face, err := s.deps.Encoder.EncodeOne(ctx, img)
	if err != nil {
		s.writeError(c, err)
		return
	}
	s.enrolFace(c, u, face, force, confirmDifferent(c, fields))
}

// confirmDifferent is the technician's "different person" confirmation: the
// form field confirm_different (or the query parameter), naming the user
// the face was found similar to.
func confirmDifferent(c *gin.Context, fields map[string]string) string {
	if v := fields["confirm_different"]; v != "" {
		return v
	}
	return strings.TrimSpace(c.Query("confirm_different"))
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
	n, err := captureSamples(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	faces, _, err := s.deps.Capturer.CaptureFaces(cctx, n)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = models.Errorf(models.ENOFACE, "No usable face within %s: one person, facing the camera, close enough and well lit.", s.cfg.CaptureTimeout)
		}
		s.writeError(c, err)
		return
	}
	s.enrolFaces(c, u, faces, force, confirmDifferent(c, nil))
}

// DefaultCaptureSamples is how many samples a camera enrolment takes
// unless ?samples= says otherwise (1-5).
const DefaultCaptureSamples = 3

// captureSamples reads ?samples=.
func captureSamples(c *gin.Context) (int, error) {
	q := c.Query("samples")
	if q == "" {
		return DefaultCaptureSamples, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > 5 {
		return 0, models.Errorf(models.EINVALID, "samples: want 1-5").WithDetail("field", "samples")
	}
	return n, nil
}

// forceFlag reads ?force=true, which only admins may set.
func (s *Server) forceFlag(c *gin.Context) (bool, error) {
	switch strings.ToLower(c.Query("force")) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		if !isAdmin(c) {
			return false, models.Errorf(models.EFORBIDDEN, "Only an admin may enrol a face that matches another user (force); a technician confirms a different person with confirm_different.")
		}
		return true, nil
	}
	return false, models.Errorf(models.EINVALID, "force: want true or false").WithDetail("field", "force")
}

// Duplicate verdicts of duplicateRule.judge.
const (
	dupNone     = ""
	dupSame     = "same_photo" // the same photo: always refused
	dupOutright = "duplicate"  // the same person outright: only an admin's force enrols it
	dupPossible = "possible"   // resembles: a technician confirms "different person"
)

// duplicateRule is the enrolment duplicate rule (docs/accuracy.md): under
// same, the same photo; under outright (calibrated from the gallery's
// impostor distances), the same person; under possible, a face the
// technician must look at.
type duplicateRule struct{ same, outright, possible float64 }

func (s *Server) duplicateRule() duplicateRule {
	return duplicateRule{same: s.cfg.SameFaceDistance, outright: s.deps.Gallery.DuplicateDistance(), possible: s.cfg.DuplicateDistance}
}

// judge returns the verdict for a face at dist from another user's.
func (r duplicateRule) judge(dist float64) string {
	switch {
	case dist <= r.same:
		return dupSame
	case dist <= r.outright:
		return dupOutright
	case dist <= r.possible:
		return dupPossible
	}
	return dupNone
}

// similar is the other user a new face resembles.
type similar struct {
	user    *models.User
	dist    float64
	photos  int
	verdict string
}

// similarUser returns the user other than userID nearest to d when the
// duplicate rule has something to say about it, or nil.
func (s *Server) similarUser(ctx context.Context, userID string, d *models.Descriptor) (*similar, error) {
	id, dist := s.deps.Gallery.NearestOther(userID, d)
	verdict := s.duplicateRule().judge(dist)
	if id == "" || verdict == dupNone {
		return nil, nil
	}
	other, err := s.deps.Store.GetUser(ctx, id)
	if models.ErrorCode(err) == models.ENOTFOUND {
		return nil, nil // the gallery is ahead of the store; nothing to name
	} else if err != nil {
		return nil, err
	}
	encs, err := s.deps.Store.ListEncodings(ctx, id)
	if err != nil {
		return nil, err
	}
	return &similar{user: other, dist: dist, photos: len(encs), verdict: verdict}, nil
}

// duplicateError is the 409 for a similar user: duplicate (same photo or
// same person outright) or possible_duplicate, naming that user.
func duplicateError(sim *similar) *models.Error {
	o, d := sim.user, math.Round(sim.dist*1000)/1000
	var e *models.Error
	switch sim.verdict {
	case dupSame:
		e = models.Errorf(EDUPLICATE, "This photo is already enrolled for %s (%s); the same photo cannot be enrolled for a second person.", o.FullName, o.Email)
	case dupOutright:
		e = models.Errorf(EDUPLICATE, "This face is %s (%s): distance %.2f, closer than almost any two different people enrolled here; an admin can enrol it anyway with force.", o.FullName, o.Email, d)
	default:
		e = models.Errorf(EPOSSIBLEDUPLICATE, "This face resembles %s (%s, enrolled photos: %d) at distance %.2f. If this is a different person, send it again with confirm_different=%s.", o.FullName, o.Email, sim.photos, d, o.ID)
	}
	return e.WithDetail("user_id", o.ID).WithDetail("name", o.FullName).WithDetail("email", o.Email).
		WithDetail("photos", sim.photos).WithDetail("distance", d).WithDetail("same_photo", sim.verdict == dupSame)
}

// allowed says whether an enrolment may go on despite sim: never for the
// same photo; with an admin's force for the same person; with force or the
// technician's confirmation naming sim's user for a resemblance.
func (sim *similar) allowed(force bool, confirm string) bool {
	switch sim.verdict {
	case dupSame:
		return false
	case dupOutright:
		return force
	}
	return force || (confirm != "" && (confirm == sim.user.ID || strings.EqualFold(confirm, sim.user.Email)))
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

func (s *Server) enrolFace(c *gin.Context, u *models.User, face *models.Face, force bool, confirm string) {
	s.enrolFaces(c, u, []models.Face{*face}, force, confirm)
}

// enrolFaces enrols faces (several samples of one person from the camera,
// or one photo) for u. Every face is judged by the duplicate rule before
// any is written: one refused refuses all.
func (s *Server) enrolFaces(c *gin.Context, u *models.User, faces []models.Face, force bool, confirm string) {
	ctx := c.Request.Context()
	var confirmed *Confirmation
	for i := range faces {
		sim, err := s.similarUser(ctx, u.ID, &faces[i].Descriptor)
		if err != nil {
			s.writeError(c, err)
			return
		}
		if sim == nil {
			continue
		}
		if !sim.allowed(force, confirm) {
			s.metrics.enrolments.WithLabelValues(map[bool]string{true: "possible_duplicate", false: "duplicate"}[sim.verdict == dupPossible]).Inc()
			s.writeError(c, duplicateError(sim))
			return
		}
		if confirmed == nil {
			confirmed = &Confirmation{SimilarUserID: sim.user.ID, Distance: math.Round(sim.dist*1000) / 1000, Force: force, By: actor(c)}
		}
		s.logger.Warn("enrolment of a face similar to another user", slog.String("user", u.ID), slog.String("similar_user", sim.user.ID),
			slog.Float64("distance", sim.dist), slog.String("verdict", sim.verdict), slog.Bool("force", force), slog.String("by", actor(c)))
	}
	encs, err := s.deps.Store.ListEncodings(ctx, u.ID)
	if err != nil {
		s.writeError(c, err)
		return
	}
	for i := range faces {
		if e := s.sameFace(encs, &faces[i].Descriptor); e != nil {
			s.writeError(c, models.Errorf(models.ECONFLICT, "This photo is already enrolled for %s.", u.FullName).WithDetail("encoding_id", e.ID))
			return
		}
	}
	resp := FaceResponse{Box: faces[0].Box, Confirmed: confirmed}
	for i := range faces {
		enc := &models.FaceEncoding{UserID: u.ID, Descriptor: faces[i].Descriptor, Source: models.SourceLocal, Model: models.DefaultModelName, CreatedAt: s.now().UTC()}
		if _, err := s.deps.Enroller.Enrol(ctx, &models.Enrolment{Op: models.EnrolAddFace, Encoding: enc}); err != nil {
			s.writeError(c, err)
			return
		}
		s.metrics.enrolments.WithLabelValues("ok").Inc()
		if i == 0 {
			resp.Encoding = enc
		}
		if len(faces) > 1 {
			resp.Samples = append(resp.Samples, enc)
		}
	}
	c.JSON(http.StatusCreated, resp)
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
	if _, err := s.deps.Enroller.Enrol(ctx, &models.Enrolment{Op: models.EnrolDeleteFace, UserID: userID, EncodingID: faceID}); err != nil {
		s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// IdentifyResponse is the result of POST /api/v1/identify.
type IdentifyResponse struct {
	// Result: match, unknown, no_face, multiple_faces, bad_image; with an
	// external_id (1:1): match or no_match for that user (or the image
	// results).
	Result   string   `json:"result"`
	UserID   string   `json:"user_id,omitempty"`
	Name     string   `json:"name,omitempty"`
	Distance *float64 `json:"distance,omitempty"`
	// Threshold is the claimed user's own 1:1 threshold (external_id only).
	Threshold *float64 `json:"threshold,omitempty"`
	Faces     int      `json:"faces"`
	Message   string   `json:"message"`
}

func (s *Server) handleIdentify(c *gin.Context) {
	img, fields, err := s.readImageForm(c, "image")
	if err != nil && models.ErrorCode(err) != models.EBADIMAGE {
		s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	var claimed *models.User
	if xid := fields["external_id"]; xid != "" {
		// Look the ID up before encoding: an unknown ID is the caller's to fix.
		u, err := s.deps.Store.GetUserByExternalID(ctx, xid)
		if models.ErrorCode(err) == models.ENOTFOUND {
			s.metrics.identify.WithLabelValues("no_match").Inc()
			c.JSON(http.StatusOK, IdentifyResponse{Result: "no_match", Message: "No user has this ID."})
			return
		} else if err != nil {
			s.writeError(c, err)
			return
		}
		claimed = u
	}
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
	case claimed != nil:
		s.verifyClaim(&resp, claimed, &faces[0].Descriptor)
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

// verifyClaim fills resp with the 1:1 answer for the face d and the user u
// (ID + face): match only within u's own threshold, which is kept under u's
// nearest other user, so another enrolled person's face with u's ID fails.
func (s *Server) verifyClaim(resp *IdentifyResponse, u *models.User, d *models.Descriptor) {
	match, dist, th, enrolled := s.deps.Gallery.VerifyUser(u.ID, d)
	resp.Result, resp.UserID = "no_match", u.ID
	switch {
	case !enrolled:
		resp.Message = "This ID has no enrolled face."
		return
	case match:
		resp.Result, resp.Name, resp.Message = "match", u.FullName, "Verified "+u.FullName+"."
	default:
		resp.Message = "The face does not match this ID."
	}
	r, t := math.Round(dist*1000)/1000, math.Round(th*1000)/1000
	resp.Distance, resp.Threshold = &r, &t
}
