package localapi

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/kioskd/kioskd/models"
)

// Import row statuses, as the result sheet and the job's counts show them.
const (
	RowCreated   = "created"
	RowUpdated   = "updated"
	RowUnchanged = "unchanged"
	RowDuplicate = "duplicate"
	// RowPossibleDuplicate: the face resembles another user; the sheet's
	// Confirm different column naming that user (id or email) enrols it.
	RowPossibleDuplicate = "possible_duplicate"
	RowNoFace            = "no_face"
	RowMultipleFaces     = "multiple_faces"
	RowFaceTooSmall      = "face_too_small"
	RowBadImage          = "bad_image"
	RowTooLarge          = "too_large"
	RowPhotoMissing      = "photo_missing"
	RowInvalid           = "invalid"
	RowConflict          = "conflict"
	RowError             = "error"
)

// Job states.
const (
	JobEncoding = "encoding"
	JobWriting  = "writing"
	JobDone     = "done"
	JobFailed   = "failed"
)

// importColumns are the sheet's columns: the template's headers and the
// names (lowercased, spaces and dashes as underscores) a sheet may use.
var importColumns = []struct {
	key, header string
	required    bool
}{
	{"external_id", "External ID", false},
	{"email", "Email", true},
	{"full_name", "Full name", true},
	{"role", "Role", true},
	{"department", "Department", false},
	{"class_group", "Class group", false},
	{"photo", "Photo file name", true},
	{"programme", "Programme", false},
	{"confirm_different", "Confirm different", false},
}

var headerAliases = map[string]string{
	"external_id": "external_id", "externalid": "external_id", "student_number": "external_id", "staff_number": "external_id", "id": "external_id",
	"email": "email", "e_mail": "email", "email_address": "email",
	"full_name": "full_name", "fullname": "full_name", "name": "full_name",
	"role": "role", "department": "department", "class_group": "class_group", "class": "class_group", "group": "class_group",
	"photo": "photo", "photo_file_name": "photo", "photo_file": "photo", "photo_filename": "photo", "file_name": "photo", "image": "photo",
	"programme": "programme", "program": "programme",
	"confirm_different": "confirm_different",
}

// ImportRow is one data row of an import and what became of it.
type ImportRow struct {
	Row        int    `json:"row"` // the sheet's row number
	ExternalID string `json:"external_id,omitempty"`
	Email      string `json:"email"`
	FullName   string `json:"full_name"`
	Role       string `json:"role"`
	Department string `json:"department,omitempty"`
	ClassGroup string `json:"class_group,omitempty"`
	Programme  string `json:"programme,omitempty"`
	Photo      string `json:"photo"`
	// ConfirmDifferent names the user (id or email) the technician
	// confirmed this face is not.
	ConfirmDifferent string `json:"confirm_different,omitempty"`
	Status           string `json:"status"`
	Message          string `json:"message"`
	UserID           string `json:"user_id,omitempty"`

	user  models.User
	entry *zip.File
	face  *models.Descriptor
}

func (r *ImportRow) set(status, msg string) { r.Status, r.Message = status, msg }

// setDuplicate reports a duplicate verdict on the row, naming the similar
// person and what confirms a different one (confirm: an id or email).
func (r *ImportRow) setDuplicate(verdict, name, email, confirm, where string, dist float64) {
	switch verdict {
	case dupSame:
		r.set(RowDuplicate, fmt.Sprintf("duplicate of %s (%s%s): the same photo", name, email, where))
	case dupOutright:
		r.set(RowDuplicate, fmt.Sprintf("duplicate of %s (%s%s) at distance %.2f", name, email, where, dist))
	default:
		r.set(RowPossibleDuplicate, fmt.Sprintf("resembles %s (%s%s) at distance %.2f; if a different person, put %s in Confirm different and import again",
			name, email, where, dist, confirm))
	}
}

// ImportJob is the progress of an import, as GET /api/v1/import/{job} shows it.
type ImportJob struct {
	ID         string         `json:"id"`
	State      string         `json:"state"`
	Rows       int            `json:"rows"`
	Valid      int            `json:"valid"`
	Encoded    int64          `json:"encoded"`
	Written    int64          `json:"written"`
	Counts     map[string]int `json:"counts"`
	Error      string         `json:"error,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
	FinishedAt *time.Time     `json:"finished_at,omitempty"`
	ResultURL  string         `json:"result_url,omitempty"`
}

type importJob struct {
	ID      string
	dir     string
	created time.Time
	rows    []*ImportRow
	valid   int
	photos  *zip.ReadCloser

	encoded, written atomic.Int64

	mu       sync.Mutex
	state    string
	errMsg   string
	finishAt time.Time
	counts   map[string]int
}

func (j *importJob) finished() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state == JobDone || j.state == JobFailed
}

func (j *importJob) setState(s string) {
	j.mu.Lock()
	j.state = s
	j.mu.Unlock()
}

func (j *importJob) snapshot() ImportJob {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := ImportJob{ID: j.ID, State: j.state, Rows: len(j.rows), Valid: j.valid, Encoded: j.encoded.Load(),
		Written: j.written.Load(), Counts: map[string]int{}, Error: j.errMsg, CreatedAt: j.created}
	for k, n := range j.counts {
		v.Counts[k] = n
	}
	if !j.finishAt.IsZero() {
		t := j.finishAt
		v.FinishedAt = &t
	}
	if j.state == JobDone {
		v.ResultURL = "/api/v1/import/" + j.ID + "/result.xlsx"
	}
	return v
}

func (s *Server) handleImport(c *gin.Context) {
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "multipart/form-data" {
		s.writeError(c, models.Errorf(models.EINVALID, "Send multipart/form-data with a %q (.xlsx) and a %q (.zip of photos) field.", "sheet", "photos"))
		return
	}
	if err := s.jobs.claim(); err != nil {
		s.writeError(c, err)
		return
	}
	dir, err := os.MkdirTemp(s.cfg.TempDir, importDirPrefix())
	if err != nil {
		s.jobs.unclaim()
		s.writeError(c, err)
		return
	}
	job, err := s.receiveImport(c, dir)
	if err != nil {
		s.jobs.unclaim()
		os.RemoveAll(dir)
		s.writeError(c, err)
		return
	}
	s.jobs.add(job) // ends the claim: the running job now holds the slot
	s.jobs.wg.Add(1)
	go func() {
		defer s.jobs.wg.Done()
		s.runImport(s.ctx, job)
	}()
	c.Header("Location", "/api/v1/import/"+job.ID)
	c.JSON(http.StatusAccepted, job.snapshot())
}

// receiveImport stores the uploaded files in dir and validates them and every
// row; only then is a job returned.
func (s *Server) receiveImport(c *gin.Context, dir string) (*importJob, error) {
	s.guardBody(c, s.cfg.MaxUploadBytes)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return nil, models.Errorf(models.EINVALID, "multipart body: %v", err)
	}
	files := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, asBodyError(err)
		}
		name := p.FormName()
		if name != "sheet" && name != "photos" {
			_, _ = io.Copy(io.Discard, p)
			continue
		}
		dst := filepath.Join(dir, name)
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err // a second part with the same name lands here too
		}
		_, err = io.Copy(f, p)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, asBodyError(err)
		}
		files[name] = dst
	}
	if files["sheet"] == "" {
		return nil, models.Errorf(models.EINVALID, "sheet: required (the .xlsx; download the template from /api/v1/import/template.xlsx)").WithDetail("field", "sheet")
	}
	job := &importJob{ID: uuid.NewString(), dir: dir, created: s.now().UTC(), state: JobEncoding, counts: map[string]int{}}
	photos := map[string]*zip.File{}
	if files["photos"] != "" {
		zr, err := s.openPhotosZip(files["photos"])
		if err != nil {
			return nil, err
		}
		job.photos = zr
		if photos, err = indexPhotos(zr); err != nil {
			zr.Close()
			return nil, err
		}
	}
	rows, err := s.readImportSheet(files["sheet"], dir)
	if err != nil {
		if job.photos != nil {
			job.photos.Close()
		}
		return nil, err
	}
	job.rows = rows
	job.valid = s.validateRows(c.Request.Context(), rows, photos, files["photos"] != "")
	return job, nil
}

// checkZipDirectory applies the entry-count and uncompressed-size limits to
// a zip's central directory, before anything is decompressed. (archive/zip
// then refuses an entry that inflates past its declared size.)
func (s *Server) checkZipDirectory(what string, files []*zip.File, limit int64) error {
	if len(files) > s.cfg.MaxZipEntries {
		return models.Errorf(models.ETOOLARGE, "%s: %d entries is more than the limit of %d", what, len(files), s.cfg.MaxZipEntries)
	}
	var total uint64
	for _, f := range files {
		total += f.UncompressedSize64
		if total > uint64(limit) || f.UncompressedSize64 > uint64(limit) {
			return models.Errorf(models.ETOOLARGE, "%s: unpacks to more than %d MB (a zip bomb?)", what, limit>>20)
		}
	}
	return nil
}

func (s *Server) openPhotosZip(p string) (*zip.ReadCloser, error) {
	zr, err := zip.OpenReader(p)
	if errors.Is(err, zip.ErrInsecurePath) && zr != nil {
		err = nil // indexPhotos names the entry
	}
	if err != nil {
		return nil, models.Errorf(models.EINVALID, "photos: not a readable .zip (%v)", trimErr(err)).WithDetail("field", "photos")
	}
	if err := s.checkZipDirectory("photos", zr.File, s.cfg.MaxUnzipBytes); err != nil {
		zr.Close()
		return nil, err
	}
	return zr, nil
}

// indexPhotos maps each entry's cleaned path and, when unique, its base name
// (lowercased) to the entry. An unsafe name refuses the whole zip: nothing
// is ever extracted to disk, but such a name means the archive was made to
// attack.
func indexPhotos(zr *zip.ReadCloser) (map[string]*zip.File, error) {
	idx := map[string]*zip.File{}
	dupBase := map[string]bool{}
	for _, f := range zr.File {
		if !safeZipName(f.Name) {
			return nil, models.Errorf(models.EINVALID, "photos: entry %q has an unsafe path; use plain file names", truncate(f.Name, 80)).WithDetail("entry", truncate(f.Name, 200))
		}
		if f.FileInfo().IsDir() {
			continue
		}
		full := strings.ToLower(path.Clean(f.Name))
		idx[full] = f
		base := strings.ToLower(path.Base(f.Name))
		if base == full {
			continue
		}
		if _, ok := idx[base]; ok || dupBase[base] {
			dupBase[base] = true
			if idx[base] != nil && strings.ToLower(path.Clean(idx[base].Name)) != base {
				delete(idx, base)
			}
			continue
		}
		idx[base] = f
	}
	return idx, nil
}

// safeZipName refuses absolute paths, "..", backslashes, drive letters and
// control characters.
func safeZipName(n string) bool {
	if n == "" || len(n) > 512 || !utf8.ValidString(n) || strings.HasPrefix(n, "/") || strings.Contains(n, "\\") {
		return false
	}
	if len(n) >= 2 && n[1] == ':' {
		return false
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return false
		}
	}
	return true
}

// verifySheetParts inflates every part of the .xlsx once, checking sizes
// and CRCs (excelize would read a corrupt part as an empty sheet), and reads
// each XML part through checkSheetXML. The directory check has bounded the
// total already.
func verifySheetParts(files []*zip.File, limit int64) error {
	for _, f := range files {
		rc, err := f.Open()
		if err == nil {
			r := io.LimitReader(rc, limit+1)
			if ext := strings.ToLower(path.Ext(f.Name)); ext == ".xml" || ext == ".rels" {
				err = checkSheetXML(r)
			}
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			rc.Close()
		}
		var big *xmlTokenError
		if errors.As(err, &big) {
			return models.Errorf(models.ETOOLARGE, "sheet: a cell or tag in %s is larger than %d KB (a spreadsheet cell holds at most 32,767 characters)",
				truncate(f.Name, 80), maxXMLToken>>10).WithDetail("field", "sheet")
		}
		if err != nil {
			return models.Errorf(models.EINVALID, "sheet: the file is corrupt (part %s: %v); re-save it from the spreadsheet program", truncate(f.Name, 80), trimErr(err)).
				WithDetail("field", "sheet")
		}
	}
	return nil
}

// readImportSheet opens the .xlsx with excelize's unzip limits and reads
// every data row of its first sheet, refusing more than cfg.MaxImportRows.
func (s *Server) readImportSheet(p, tmp string) ([]*ImportRow, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil, models.Errorf(models.EINVALID, "sheet: not a readable .xlsx (%v)", trimErr(err)).WithDetail("field", "sheet")
	}
	err = s.checkZipDirectory("sheet", zr.File, s.cfg.MaxSheetBytes)
	if err == nil {
		err = verifySheetParts(zr.File, s.cfg.MaxSheetBytes)
	}
	zr.Close()
	if err != nil {
		return nil, err
	}
	x, err := excelize.OpenFile(p, excelize.Options{UnzipSizeLimit: s.cfg.MaxSheetBytes, UnzipXMLSizeLimit: min(16<<20, s.cfg.MaxSheetBytes), TmpDir: tmp})
	if err != nil {
		if strings.Contains(err.Error(), "unzip size") {
			return nil, models.Errorf(models.ETOOLARGE, "sheet: unpacks to more than %d MB", s.cfg.MaxSheetBytes>>20)
		}
		return nil, models.Errorf(models.EINVALID, "sheet: not a readable .xlsx (%v)", trimErr(err)).WithDetail("field", "sheet")
	}
	defer x.Close()
	sheets := x.GetSheetList()
	if len(sheets) == 0 {
		return nil, models.Errorf(models.EINVALID, "sheet: the workbook has no sheet")
	}
	it, err := x.Rows(sheets[0])
	if err != nil {
		return nil, models.Errorf(models.EINVALID, "sheet: %v", trimErr(err))
	}
	defer it.Close()
	var cols map[string]int
	var rows []*ImportRow
	n := 0
	for it.Next() {
		n++
		vals, err := it.Columns()
		if err != nil {
			return nil, models.Errorf(models.EINVALID, "sheet: row %d: %v", n, trimErr(err))
		}
		if blank(vals) {
			continue
		}
		if cols == nil {
			if cols, err = headerColumns(vals, n); err != nil {
				return nil, err
			}
			continue
		}
		if len(rows) >= s.cfg.MaxImportRows {
			return nil, models.Errorf(models.ETOOLARGE, "sheet: more than %d rows; split it into several imports", s.cfg.MaxImportRows)
		}
		get := func(k string) string {
			if i, ok := cols[k]; ok && i < len(vals) {
				return strings.TrimSpace(vals[i])
			}
			return ""
		}
		rows = append(rows, &ImportRow{Row: n, ExternalID: get("external_id"), Email: get("email"), FullName: get("full_name"),
			Role: get("role"), Department: get("department"), ClassGroup: get("class_group"), Programme: get("programme"), Photo: get("photo"), ConfirmDifferent: get("confirm_different")})
	}
	if err := it.Error(); err != nil {
		return nil, models.Errorf(models.EINVALID, "sheet: %v", trimErr(err))
	}
	if cols == nil {
		return nil, models.Errorf(models.EINVALID, "sheet: empty; download the template from /api/v1/import/template.xlsx")
	}
	if len(rows) == 0 {
		return nil, models.Errorf(models.EINVALID, "sheet: no data rows below the header")
	}
	return rows, nil
}

func blank(vals []string) bool {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

func headerColumns(vals []string, n int) (map[string]int, error) {
	cols := map[string]int{}
	for i, v := range vals {
		k := strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(strings.TrimSpace(v)))
		if key, ok := headerAliases[k]; ok {
			if _, dup := cols[key]; !dup {
				cols[key] = i
			}
		}
	}
	var missing []string
	for _, c := range importColumns {
		if _, ok := cols[c.key]; c.required && !ok {
			missing = append(missing, c.header)
		}
	}
	if len(missing) > 0 {
		return nil, models.Errorf(models.EINVALID, "sheet: header row %d lacks the column(s) %s; download the template from /api/v1/import/template.xlsx", n, strings.Join(missing, ", "))
	}
	return cols, nil
}

// validateRows checks every row before any work: fields, duplicates within
// the sheet, and that the photo is in the zip. It returns how many rows are
// valid; the others have their status set.
func (s *Server) validateRows(ctx context.Context, rows []*ImportRow, photos map[string]*zip.File, haveZip bool) int {
	seenEmail, seenExt := map[string]int{}, map[string]int{}
	valid := 0
	for _, r := range rows {
		u := models.User{ExternalID: r.ExternalID, Email: r.Email, FullName: r.FullName, Role: parseRole(r.Role),
			Department: r.Department, ClassGroup: r.ClassGroup, Programme: r.Programme}
		u.Normalize()
		if err := u.Validate(); err != nil {
			r.set(RowInvalid, models.ErrorMessage(err))
			continue
		}
		if prev, ok := seenEmail[u.Email]; ok {
			r.set(RowInvalid, fmt.Sprintf("email: %s is also on row %d", u.Email, prev))
			continue
		}
		if prev, ok := seenExt[u.ExternalID]; ok && u.ExternalID != "" {
			r.set(RowInvalid, fmt.Sprintf("external_id: %s is also on row %d", u.ExternalID, prev))
			continue
		}
		seenEmail[u.Email] = r.Row
		if u.ExternalID != "" {
			seenExt[u.ExternalID] = r.Row
		}
		switch {
		case r.Photo == "":
			r.set(RowPhotoMissing, "photo: required (the file name of the person's photo in the zip)")
			continue
		case !haveZip:
			r.set(RowPhotoMissing, "photo: no .zip of photos was uploaded")
			continue
		case !safeZipName(r.Photo):
			r.set(RowInvalid, "photo: unsafe file name; use a plain name such as ada.jpg")
			continue
		}
		f := photos[strings.ToLower(path.Clean(r.Photo))]
		if f == nil {
			f = photos[strings.ToLower(path.Base(r.Photo))]
		}
		if f == nil {
			r.set(RowPhotoMissing, fmt.Sprintf("photo: %s is not in the zip", r.Photo))
			continue
		}
		if f.UncompressedSize64 > uint64(s.cfg.MaxImageBytes) {
			r.set(RowTooLarge, fmt.Sprintf("photo: %s is larger than %d MB", r.Photo, s.cfg.MaxImageBytes>>20))
			continue
		}
		r.user, r.entry = u, f
		valid++
	}
	return valid
}

// parseRole accepts "Trainee", "DP Academics", "dp-academics", ...
func parseRole(s string) models.Role {
	return models.Role(strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(strings.TrimSpace(s))))
}

// runImport encodes the valid rows with a worker pool, decides each row in
// sheet order, writes accepted rows in batches and produces the result sheet.
func (s *Server) runImport(ctx context.Context, j *importJob) {
	defer func() {
		if j.photos != nil {
			j.photos.Close()
		}
		j.mu.Lock()
		j.finishAt = s.now().UTC()
		j.mu.Unlock()
	}()
	start := time.Now()
	err := s.encodeRows(ctx, j)
	if err == nil {
		j.setState(JobWriting)
		err = s.applyRows(ctx, j)
	}
	if err == nil {
		err = writeImportResult(filepath.Join(j.dir, "result.xlsx"), j.rows, s.cfg.TempDir)
	}
	j.mu.Lock()
	for _, r := range j.rows {
		j.counts[r.Status]++
		s.metrics.importRows.WithLabelValues(r.Status).Inc()
	}
	if err != nil {
		j.state = JobFailed
		j.errMsg = models.ErrorMessage(err)
		if ctx.Err() != nil {
			j.errMsg = "kioskd shut down during the import; run it again (it is idempotent)."
		}
		j.mu.Unlock()
		s.logger.Error("import failed", slog.String("job", j.ID), slog.Any("err", err))
		return
	}
	j.state = JobDone
	j.mu.Unlock()
	s.logger.Info("import done", slog.String("job", j.ID), slog.Int("rows", len(j.rows)), slog.Duration("took", time.Since(start)))
}

func (s *Server) encodeRows(ctx context.Context, j *importJob) error {
	workers := s.cfg.ImportWorkers
	if workers == 0 {
		workers = runtime.NumCPU()
	}
	// Rows naming the same photo share one encoding: a class sheet often
	// reuses a placeholder, and the duplicate check then decides per row.
	groups := map[*zip.File][]*ImportRow{}
	var order []*zip.File
	for _, r := range j.rows {
		if r.entry == nil || r.Status != "" {
			continue
		}
		if groups[r.entry] == nil {
			order = append(order, r.entry)
		}
		groups[r.entry] = append(groups[r.entry], r)
	}
	work := make(chan []*ImportRow)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rows := range work {
				first := rows[0]
				s.encodeRow(ctx, first)
				for _, r := range rows[1:] {
					r.Status, r.Message, r.face = first.Status, first.Message, first.face
				}
				j.encoded.Add(int64(len(rows)))
			}
		}()
	}
	for _, f := range order {
		select {
		case work <- groups[f]:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	return ctx.Err()
}

func (s *Server) encodeRow(ctx context.Context, r *ImportRow) {
	rc, err := r.entry.Open()
	if err != nil {
		r.set(RowBadImage, fmt.Sprintf("photo: %s cannot be read from the zip (%v)", r.Photo, trimErr(err)))
		return
	}
	b, err := io.ReadAll(io.LimitReader(rc, s.cfg.MaxImageBytes+1))
	rc.Close()
	switch {
	case err != nil:
		r.set(RowBadImage, fmt.Sprintf("photo: %s cannot be read from the zip (%v)", r.Photo, trimErr(err)))
		return
	case int64(len(b)) > s.cfg.MaxImageBytes:
		r.set(RowTooLarge, fmt.Sprintf("photo: %s is larger than %d MB", r.Photo, s.cfg.MaxImageBytes>>20))
		return
	}
	if err := s.checkPixels(b); err != nil {
		r.set(RowTooLarge, models.ErrorMessage(err))
		return
	}
	face, err := s.deps.Encoder.EncodeOne(ctx, b)
	if err != nil {
		status := map[string]string{models.ENOFACE: RowNoFace, models.EMULTIFACE: RowMultipleFaces, models.EFACESMALL: RowFaceTooSmall,
			models.EBADIMAGE: RowBadImage, models.ETOOLARGE: RowTooLarge}[models.ErrorCode(err)]
		if status == "" {
			status = RowError
		}
		r.set(status, models.ErrorMessage(err))
		return
	}
	d := face.Descriptor
	r.face = &d
}

// accepted is a row already accepted in this import, for duplicates within
// the sheet (two rows with one face).
type accepted struct {
	row  *ImportRow
	face *models.Descriptor
	key  string // the user it belongs to: stored id, or "new:"+email
}

// applyRows decides each encoded row in sheet order and writes the accepted
// ones in batches.
func (s *Server) applyRows(ctx context.Context, j *importJob) error {
	var batch []*ImportRow
	var recs []models.UserRecord
	var seen []accepted
	for _, r := range j.rows {
		if r.Status != "" || r.face == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := s.decideRow(ctx, r, seen)
		if err != nil {
			return err
		}
		if rec == nil {
			continue
		}
		key := r.UserID
		if key == "" {
			key = "new:" + rec.User.Email
		}
		seen = append(seen, accepted{row: r, face: r.face, key: key})
		batch, recs = append(batch, r), append(recs, *rec)
		if len(recs) >= s.cfg.ImportBatch {
			if err := s.writeBatch(ctx, j, batch, recs); err != nil {
				return err
			}
			batch, recs = batch[:0], recs[:0]
		}
	}
	return s.writeBatch(ctx, j, batch, recs)
}

// decideRow returns the record to write for r, or nil with r's status set.
func (s *Server) decideRow(ctx context.Context, r *ImportRow, seen []accepted) (*models.UserRecord, error) {
	st := s.deps.Store
	lookup := func(get func(context.Context, string) (*models.User, error)) func(string) (*models.User, error) {
		return func(key string) (*models.User, error) {
			u, err := get(ctx, key)
			if models.ErrorCode(err) == models.ENOTFOUND {
				return nil, nil
			}
			return u, err
		}
	}
	existing, byEmail, err := models.MatchUser(&r.user, lookup(st.GetUserByExternalID), lookup(st.GetUserByEmail))
	if err != nil {
		return nil, err
	} else if byEmail != nil {
		r.set(RowConflict, fmt.Sprintf("email: %s belongs to %s, not to external id %s", r.user.Email, byEmail.FullName, r.user.ExternalID))
		return nil, nil
	}
	if existing != nil {
		r.UserID = existing.ID
	}
	// A face of somebody else, stored or earlier in this sheet: the
	// enrolment duplicate rule (docs/accuracy.md), confirmed per row.
	sim, err := s.similarUser(ctx, r.UserID, r.face)
	if err != nil {
		return nil, err
	}
	if sim != nil && !sim.allowed(false, r.ConfirmDifferent) {
		r.setDuplicate(sim.verdict, sim.user.FullName, sim.user.Email, sim.user.ID, "", sim.dist)
		return nil, nil
	}
	rule := s.duplicateRule()
	for _, a := range seen {
		if (r.UserID != "" && a.key == r.UserID) || a.key == "new:"+r.user.Email {
			continue
		}
		d := models.Distance(a.face, r.face)
		v := rule.judge(d)
		if v == dupNone || (v == dupPossible && strings.EqualFold(r.ConfirmDifferent, a.row.Email)) {
			continue
		}
		r.setDuplicate(v, a.row.FullName, a.row.Email, a.row.Email, fmt.Sprintf(", row %d", a.row.Row), d)
		return nil, nil
	}
	u := r.user
	rec := &models.UserRecord{User: u}
	addFace := true
	if existing != nil {
		encs, err := st.ListEncodings(ctx, existing.ID)
		if err != nil {
			return nil, err
		}
		addFace = s.sameFace(encs, r.face) == nil
		merged := *existing
		merged.ExternalID, merged.Email, merged.FullName, merged.Role = u.ExternalID, u.Email, u.FullName, u.Role
		merged.Department, merged.ClassGroup = u.Department, u.ClassGroup
		if u.Programme != "" {
			merged.Programme = u.Programme
		}
		if !addFace && merged == *existing {
			r.set(RowUnchanged, "already enrolled with this photo; nothing changed")
			return nil, nil
		}
		if addFace && len(encs) >= models.MaxEncodingsPerUser {
			r.set(RowTooLarge, fmt.Sprintf("the user already has %d face encodings, the most allowed", len(encs)))
			return nil, nil
		}
		rec.User = merged
	}
	if addFace {
		rec.Encodings = []models.FaceEncoding{{UserID: rec.User.ID, Descriptor: *r.face, Source: models.SourceLocal,
			Model: models.DefaultModelName, CreatedAt: s.now().UTC()}}
	}
	return rec, nil
}

// writeBatch writes one batch through the enroller: each user with its
// enrolment message for central in UpsertLocalUsers' transactions, then the
// matcher.
func (s *Server) writeBatch(ctx context.Context, j *importJob, rows []*ImportRow, recs []models.UserRecord) error {
	if len(recs) == 0 {
		return nil
	}
	res, err := s.deps.Enroller.UpsertLocalUsers(ctx, recs)
	s.cache.clear()
	if err != nil {
		return err
	}
	for i, r := range rows {
		if i >= len(res) {
			r.set(RowError, "not written")
			continue
		}
		if res[i].Err != nil {
			status := RowInvalid
			switch models.ErrorCode(res[i].Err) {
			case models.ECONFLICT:
				status = RowConflict
			case models.ETOOLARGE:
				status = RowTooLarge
			case models.EINTERNAL:
				status = RowError
			}
			r.set(status, models.ErrorMessage(res[i].Err))
			continue
		}
		r.UserID = res[i].UserID
		switch {
		case res[i].Created:
			r.set(RowCreated, "created and enrolled")
		case len(recs[i].Encodings) > 0:
			r.set(RowUpdated, "updated; photo enrolled")
		default:
			r.set(RowUpdated, "updated; photo already enrolled")
		}
	}
	j.written.Add(int64(len(rows)))
	return nil
}

var resultHeader = []any{"Row", "External ID", "Email", "Full name", "Role", "Department", "Class group", "Photo file name", "Status", "Message", "User ID"}

// writeImportResult writes the per-row result sheet with excelize's streaming
// writer, escaping every text cell against formula injection.
func writeImportResult(p string, rows []*ImportRow, tmp string) error {
	x := excelize.NewFile(excelize.Options{TmpDir: tmp})
	defer x.Close()
	sw, err := x.NewStreamWriter("Sheet1")
	if err != nil {
		return err
	}
	_ = sw.SetColWidth(3, 4, 28)
	_ = sw.SetColWidth(10, 10, 60)
	if err := sw.SetRow("A1", resultHeader); err != nil {
		return err
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := sw.SetRow(cell, []any{r.Row, safeCell(r.ExternalID), safeCell(r.Email), safeCell(r.FullName), safeCell(r.Role),
			safeCell(r.Department), safeCell(r.ClassGroup), safeCell(r.Photo), r.Status, safeCell(r.Message), r.UserID}); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return x.SaveAs(p)
}

func (s *Server) handleImportStatus(c *gin.Context) {
	j := s.jobs.get(c.Param("job"))
	if j == nil {
		s.writeError(c, models.Errorf(models.ENOTFOUND, "No import job %q (jobs are kept for an hour).", truncate(c.Param("job"), 40)))
		return
	}
	c.JSON(http.StatusOK, j.snapshot())
}

func (s *Server) handleImportResult(c *gin.Context) {
	j := s.jobs.get(c.Param("job"))
	if j == nil {
		s.writeError(c, models.Errorf(models.ENOTFOUND, "No import job %q (jobs are kept for an hour).", truncate(c.Param("job"), 40)))
		return
	}
	if v := j.snapshot(); v.State != JobDone {
		s.writeError(c, models.Errorf(models.ECONFLICT, "Import %s is %s; its result is not ready.", j.ID, v.State))
		return
	}
	c.Header("Content-Disposition", `attachment; filename="import-`+j.ID+`-result.xlsx"`)
	c.Header("Content-Type", xlsxContentType)
	c.File(filepath.Join(j.dir, "result.xlsx"))
}

func (s *Server) handleImportTemplate(c *gin.Context) {
	x := excelize.NewFile()
	defer x.Close()
	var header, example []any
	for _, col := range importColumns {
		header = append(header, col.header)
	}
	example = []any{"S1234", "ada.lovelace@example.com", "Ada Lovelace", "trainee", "Engineering", "ENG-1A", "ada.jpg", "Diploma in Engineering"}
	_ = x.SetSheetRow("Sheet1", "A1", &header)
	_ = x.SetSheetRow("Sheet1", "A2", &example)
	_ = x.SetColWidth("Sheet1", "A", "H", 24)
	style, _ := x.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	_ = x.SetRowStyle("Sheet1", 1, 1, style)
	_ = x.AddComment("Sheet1", excelize.Comment{Cell: "D1", Author: "kioskd", Paragraph: []excelize.RichTextRun{{Text: "One of: trainee, trainer, hod, dp_academics, admin"}}})
	_ = x.AddComment("Sheet1", excelize.Comment{Cell: "G1", Author: "kioskd", Paragraph: []excelize.RichTextRun{{Text: "The photo's file name inside the .zip you upload with this sheet (JPEG or PNG, one face)"}}})
	c.Header("Content-Disposition", `attachment; filename="kioskd-import-template.xlsx"`)
	c.Header("Content-Type", xlsxContentType)
	c.Status(http.StatusOK)
	if _, err := x.WriteTo(c.Writer); err != nil {
		s.logger.Warn("template write", "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// trimErr shortens a library error for a user-facing message.
func trimErr(err error) string {
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		err = u
	}
	return truncate(err.Error(), 120)
}
