package registrysim

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/kioskd/kioskd/models"
	ksync "github.com/kioskd/kioskd/sync"
)

// Idols is the shape of the shared test gallery (gallery/idols.json).
type Idols struct {
	Idols []struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		BandName string `json:"band_name"`
	} `json:"idols"`
	Faces []struct {
		Descriptor string `json:"descriptor"` // base64 of 128 little-endian float32
		IdolID     string `json:"idol_id"`
	} `json:"faces"`
}

// LoadIdols reads the idols gallery as user records: one trainee per idol
// (class group = band), one central encoding per face, version 1.
func LoadIdols(path string) ([]models.UserRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var g Idols
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	idx := map[string]int{}
	recs := make([]models.UserRecord, 0, len(g.Idols))
	for _, id := range g.Idols {
		idx[id.ID] = len(recs)
		email := fmt.Sprintf("%s.%s@idols.example.org", strings.ToLower(strings.Join(strings.Fields(id.Name), ".")), id.ID[:8])
		recs = append(recs, models.UserRecord{User: models.User{ID: id.ID, Email: email, FullName: id.Name,
			Role: models.RoleTrainee, Status: models.UserActive, ClassGroup: id.BandName, Version: 1}})
	}
	for i, f := range g.Faces {
		raw, err := base64.StdEncoding.DecodeString(f.Descriptor)
		if err != nil || len(raw) != 4*models.DescriptorSize {
			return nil, fmt.Errorf("%s: face %d: bad descriptor", path, i)
		}
		var d models.Descriptor
		for j := range d {
			d[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		k, ok := idx[f.IdolID]
		if !ok {
			return nil, fmt.Errorf("%s: face %d: unknown idol %s", path, i, f.IdolID)
		}
		recs[k].Encodings = append(recs[k].Encodings, models.FaceEncoding{ID: fmt.Sprintf("%s-%d", f.IdolID[:8], i),
			UserID: f.IdolID, Descriptor: d, Source: models.SourceCentral, Model: models.DefaultModelName})
	}
	return recs, nil
}

// UserRow is one user of a users file (JSON array of these, or an .xlsx
// sheet whose header row names the same fields). Encodings are given as
// descriptors (JSON arrays) or computed from photos by the encoder.
type UserRow struct {
	ID          string            `json:"id"`
	ExternalID  string            `json:"external_id"`
	Email       string            `json:"email"`
	FullName    string            `json:"full_name"`
	Role        string            `json:"role"`
	Status      string            `json:"status"`
	Department  string            `json:"department"`
	Programme   string            `json:"programme"`
	ClassGroup  string            `json:"class_group"`
	Version     int64             `json:"version"`
	Descriptors []json.RawMessage `json:"descriptors"`
	Photos      []string          `json:"photos"` // paths, relative to the file
}

// LoadUsers reads a .json or .xlsx users file. enc computes descriptors
// from photos; nil refuses rows with photos.
func LoadUsers(ctx context.Context, path string, enc models.Encoder) ([]models.UserRecord, error) {
	var rows []UserRow
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &rows); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case ".xlsx":
		var err error
		if rows, err = readXLSX(path); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: want a .json or .xlsx file", path)
	}
	dir := filepath.Dir(path)
	recs := make([]models.UserRecord, 0, len(rows))
	for i, r := range rows {
		id := r.ID
		if id == "" {
			id = fmt.Sprintf("u%05d", i+1)
		}
		rec := models.UserRecord{User: models.User{ID: id, ExternalID: r.ExternalID, Email: r.Email, FullName: r.FullName,
			Role: models.Role(r.Role), Status: models.UserStatus(r.Status), Department: r.Department,
			Programme: r.Programme, ClassGroup: r.ClassGroup, Version: r.Version}}
		if rec.User.Role == "" {
			rec.User.Role = models.RoleTrainee
		}
		rec.User.Normalize()
		if err := rec.User.Validate(); err != nil {
			return nil, fmt.Errorf("%s: row %d: %s", path, i+1, models.ErrorMessage(err))
		}
		for j, raw := range r.Descriptors {
			d, err := ksync.DecodeDescriptor(raw, ksync.DtypeFloat32)
			if err != nil {
				return nil, fmt.Errorf("%s: row %d: descriptor %d: %s", path, i+1, j+1, models.ErrorMessage(err))
			}
			rec.Encodings = append(rec.Encodings, models.FaceEncoding{UserID: id, Descriptor: d, Source: models.SourceCentral, Model: models.DefaultModelName})
		}
		for _, p := range r.Photos {
			if enc == nil {
				return nil, fmt.Errorf("%s: row %d: photos need the face encoder: run `kioskd registry-sim`", path, i+1)
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			img, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("%s: row %d: %w", path, i+1, err)
			}
			f, err := enc.EncodeOne(ctx, img)
			if err != nil {
				return nil, fmt.Errorf("%s: row %d: %s: %s", path, i+1, p, models.ErrorMessage(err))
			}
			rec.Encodings = append(rec.Encodings, models.FaceEncoding{UserID: id, Descriptor: f.Descriptor, Source: models.SourceCentral, Model: models.DefaultModelName})
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// readXLSX reads the first sheet: a header row naming UserRow's JSON
// fields, "photos" and "descriptors" separated by ';' (descriptors as JSON
// arrays).
func readXLSX(path string) ([]UserRow, error) {
	f, err := excelize.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, fmt.Errorf("%s: no sheet", path)
	}
	rows, err := f.GetRows(sheets[0])
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	get := func(r []string, name string) string {
		if i, ok := col[name]; ok && i < len(r) {
			return strings.TrimSpace(r[i])
		}
		return ""
	}
	var out []UserRow
	for _, r := range rows[1:] {
		u := UserRow{ID: get(r, "id"), ExternalID: get(r, "external_id"), Email: get(r, "email"), FullName: get(r, "full_name"),
			Role: get(r, "role"), Status: get(r, "status"), Department: get(r, "department"), Programme: get(r, "programme"),
			ClassGroup: get(r, "class_group")}
		if u.Email == "" && u.FullName == "" {
			continue
		}
		for _, p := range strings.Split(get(r, "photos"), ";") {
			if p = strings.TrimSpace(p); p != "" {
				u.Photos = append(u.Photos, p)
			}
		}
		for _, d := range strings.Split(get(r, "descriptors"), ";") {
			if d = strings.TrimSpace(d); d != "" {
				u.Descriptors = append(u.Descriptors, json.RawMessage(d))
			}
		}
		out = append(out, u)
	}
	return out, nil
}
