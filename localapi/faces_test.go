package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

func TestUsersCRUD(t *testing.T) {
	env := mustServer(t, nil)
	ada := env.mustCreateUser("Ada Lovelace", "Ada@Example.com")
	if ada.Email != "ada@example.com" || ada.ID == "" {
		t.Fatalf("created %+v", ada)
	}
	env.mustCreateUser("Grace Hopper", "grace@example.com")
	var errResp ErrorResponse
	if st := env.doJSON("POST", "/api/v1/users", env.tech, UserInput{FullName: "X", Email: "ada@example.com", Role: "trainee"}, &errResp); st != 409 {
		t.Fatalf("duplicate email: %d", st)
	}
	if st := env.doJSON("POST", "/api/v1/users", env.tech, UserInput{FullName: "X", Email: "not an email", Role: "trainee"}, &errResp); st != 422 || errResp.Error.Details["field"] != "email" {
		t.Fatalf("bad email: %d %+v", st, errResp)
	}
	if st := env.doJSON("POST", "/api/v1/users", env.tech, map[string]any{"full_name": "X", "email": "x@example.com", "role": "trainee", "descriptor": []float32{1}}, &errResp); st != 422 {
		t.Fatalf("unknown field: %d", st)
	}
	var page Page[*models.User]
	env.doJSON("GET", "/api/v1/users?q=LOVE&limit=1", env.tech, nil, &page)
	if page.Total != 1 || len(page.Items) != 1 || page.Items[0].ID != ada.ID {
		t.Fatalf("search: %+v", page)
	}
	env.doJSON("GET", "/api/v1/users?limit=1&offset=1", env.tech, nil, &page)
	if page.Total != 2 || len(page.Items) != 1 || page.Items[0].FullName != "Grace Hopper" {
		t.Fatalf("page 2: %+v", page)
	}
	if st := env.doJSON("GET", "/api/v1/users?limit=100000", env.tech, nil, nil); st != 422 {
		t.Fatalf("limit too big: %d", st)
	}
	var u models.User
	if st := env.doJSON("PUT", "/api/v1/users/"+ada.ID, env.tech, UserInput{FullName: "Ada King", Email: "ada@example.com", Role: "trainer", ClassGroup: "C1"}, &u); st != 200 || u.FullName != "Ada King" {
		t.Fatalf("update: %d %+v", st, u)
	}
	if st := env.doJSON("DELETE", "/api/v1/users/"+ada.ID, env.tech, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st := env.doJSON("GET", "/api/v1/users/"+ada.ID, env.tech, nil, nil); st != 404 {
		t.Fatalf("get deleted: %d", st)
	}
	// Every change went to the outbox for central; deleting Ada dropped her
	// pending create and update and queued the deletion notice.
	msgs, err := env.db.PendingOutbox(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("outbox: %d messages, want 2 (Grace's create, Ada's deletion)", len(msgs))
	}
	p, err := msgs[1].EnrolmentRecord()
	if err != nil || !p.Deleted || p.User.ID != ada.ID {
		t.Fatalf("last outbox message: %s %+v %v", msgs[1].Kind, p, err)
	}
}

// TestFaces: enrol, duplicate check (with who and distance), force rules,
// same-photo refusal, list without descriptors, identify, delete.
func TestFaces(t *testing.T) {
	// A re-encoded copy must be told from the very same photo.
	env := mustServer(t, func(c *Config, _ *Deps) { c.SameFaceDistance = 0.005 })
	obama := env.mustCreateUser("Barack Obama", "obama@example.com")
	other := env.mustCreateUser("Someone Else", "else@example.com")
	biden := env.mustCreateUser("Joe Biden", "biden@example.com")

	var fr FaceResponse
	st := env.upload("/api/v1/users/"+obama.ID+"/faces", env.tech, map[string]namedFile{"image": {"1.jpg", photo(t, "people/obama/1.jpg")}}, &fr)
	env.mustStatus(201, st, "enrol obama 1")
	if fr.Encoding.ID == "" || fr.Box.Dx() < 40 {
		t.Fatalf("face response %+v", fr)
	}
	// The same photo again: already enrolled.
	var er ErrorResponse
	st = env.upload("/api/v1/users/"+obama.ID+"/faces", env.tech, map[string]namedFile{"image": {"1.jpg", photo(t, "people/obama/1.jpg")}}, &er)
	if st != 409 || er.Error.Details["encoding_id"] != fr.Encoding.ID {
		t.Fatalf("same photo again: %d %+v", st, er)
	}
	// Obama's own second photo is fine (before anyone else holds his face).
	st = env.upload("/api/v1/users/"+obama.ID+"/faces", env.tech, map[string]namedFile{"image": {"3.jpg", photo(t, "people/obama/3_small.jpg")}}, &er)
	env.mustStatus(201, st, "obama small photo", []byte(fmt.Sprint(er)))
	// Another photo of Obama for another user: a possible duplicate naming
	// Obama, which the technician confirms is a different person.
	obama2 := map[string]namedFile{"image": {"2.jpg", photo(t, "people/obama/2.jpg")}}
	st = env.upload("/api/v1/users/"+other.ID+"/faces", env.tech, obama2, &er)
	if st != 409 || er.Error.Code != EPOSSIBLEDUPLICATE || er.Error.Details["user_id"] != obama.ID || er.Error.Details["photos"] != 2.0 ||
		!strings.Contains(er.Error.Message, "Barack Obama") {
		t.Fatalf("possible duplicate: %d %+v", st, er)
	}
	if d, _ := er.Error.Details["distance"].(float64); d <= 0 || d > 0.6 {
		t.Fatalf("duplicate distance %v", er.Error.Details["distance"])
	}
	t.Logf("possible duplicate message: %s", er.Error.Message)
	obama2["confirm_different"] = namedFile{data: []byte(biden.ID)} // names somebody else: no
	st = env.upload("/api/v1/users/"+other.ID+"/faces", env.tech, obama2, &er)
	if st != 409 || er.Error.Code != EPOSSIBLEDUPLICATE {
		t.Fatalf("confirmation naming the wrong user: %d %+v", st, er)
	}
	obama2["confirm_different"] = namedFile{data: []byte(obama.ID)}
	st = env.upload("/api/v1/users/"+other.ID+"/faces", env.tech, obama2, &fr)
	env.mustStatus(201, st, "confirmed different")
	if fr.Confirmed == nil || fr.Confirmed.SimilarUserID != obama.ID || fr.Confirmed.By != techEmail || fr.Confirmed.Force {
		t.Fatalf("confirmation not recorded: %+v", fr.Confirmed)
	}
	// The same photo for a second person: refused, whoever asks.
	for _, tok := range []string{env.tech, env.admin} {
		files := map[string]namedFile{"image": {"1.jpg", photo(t, "people/obama/1.jpg")}, "confirm_different": {data: []byte(obama.ID)}}
		st = env.upload("/api/v1/users/"+biden.ID+"/faces?force="+strconv.FormatBool(tok == env.admin), tok, files, &er)
		if tok == env.tech && st == 403 {
			continue // a technician may not force
		}
		if st != 409 || er.Error.Code != EDUPLICATE || er.Error.Details["same_photo"] != true || er.Error.Details["user_id"] != obama.ID {
			t.Fatalf("same photo for a second user: %d %+v", st, er)
		}
	}
	// Re-encoded (another JPEG quality): the same person outright, under
	// the calibrated distance; no confirmation, only an admin's force.
	recoded := map[string]namedFile{"image": {"1.jpg", reencode(t, photo(t, "people/obama/1.jpg"), 40)}, "confirm_different": {data: []byte(obama.ID)}}
	st = env.upload("/api/v1/users/"+biden.ID+"/faces", env.tech, recoded, &er)
	if st != 409 || er.Error.Code != EDUPLICATE || er.Error.Details["same_photo"] != false {
		t.Fatalf("outright duplicate: %d %+v", st, er)
	}
	st = env.upload("/api/v1/users/"+biden.ID+"/faces?force=true", env.tech, recoded, &er)
	env.mustStatus(403, st, "technician force")
	st = env.upload("/api/v1/users/"+biden.ID+"/faces?force=true", env.admin, recoded, &fr)
	env.mustStatus(201, st, "admin force")
	if fr.Confirmed == nil || !fr.Confirmed.Force || fr.Confirmed.By != adminEmail {
		t.Fatalf("force not recorded: %+v", fr.Confirmed)
	}
	if st := env.doJSON("DELETE", "/api/v1/users/"+biden.ID+"/faces/"+fr.Encoding.ID, env.admin, nil, nil); st != 204 {
		t.Fatalf("delete forced face: %d", st)
	}

	// Lists never carry descriptors.
	resp, b := env.do("GET", "/api/v1/users/"+obama.ID+"/faces", env.tech, "", nil)
	env.mustStatus(200, resp.StatusCode, "list faces")
	if bytes.Contains(b, []byte("descriptor")) {
		t.Fatalf("face list leaks descriptors: %s", b)
	}
	var list struct{ Items []models.FaceEncoding }
	json.Unmarshal(b, &list)
	if len(list.Items) != 2 {
		t.Fatalf("obama has %d encodings, want 2", len(list.Items))
	}

	// Biden: PNG-free but EXIF; the one-face rule on a group photo.
	st = env.upload("/api/v1/users/"+biden.ID+"/faces", env.tech, map[string]namedFile{"image": {"two.jpg", photo(t, "multi/two_people.jpg")}}, &er)
	if st != 422 || er.Error.Code != models.EMULTIFACE {
		t.Fatalf("two people: %d %+v", st, er)
	}
	st = env.upload("/api/v1/users/"+biden.ID+"/faces", env.tech, map[string]namedFile{"image": {"x.jpg", []byte("this is not an image")}}, &er)
	if st != 422 || er.Error.Code != models.EBADIMAGE {
		t.Fatalf("non-image: %d %+v", st, er)
	}
	st = env.upload("/api/v1/users/"+biden.ID+"/faces", env.tech, map[string]namedFile{"wrong_field": {"1.jpg", photo(t, "people/biden/1.jpg")}}, &er)
	if st != 422 || er.Error.Details["field"] != "image" {
		t.Fatalf("missing field: %d %+v", st, er)
	}
	st = env.upload("/api/v1/users/"+biden.ID+"/faces", env.tech, map[string]namedFile{"image": {"1.jpg", photo(t, "people/biden/1.jpg")}}, &fr)
	env.mustStatus(201, st, "enrol biden")

	// Identify.
	cases := []struct {
		img    []byte
		result string
		user   string
	}{
		{photo(t, "people/obama/2.jpg"), "match", other.ID}, // confirmed for "Someone Else": distance 0
		{photo(t, "people/biden/2.jpg"), "match", biden.ID},
		{photo(t, "people/kit_harington/1.jpg"), "unknown", ""},
		{photo(t, "multi/two_people.jpg"), "multiple_faces", ""},
		{[]byte("GIF89a nope"), "bad_image", ""},
	}
	for _, c := range cases {
		var ir IdentifyResponse
		st := env.upload("/api/v1/identify", env.tech, map[string]namedFile{"image": {"x.jpg", c.img}}, &ir)
		if st != 200 || ir.Result != c.result || ir.UserID != c.user {
			t.Errorf("identify: %d %+v, want %s %s", st, ir, c.result, c.user)
		}
	}

	// Delete a face: the gallery follows.
	before := env.matcher.Len()
	if st := env.doJSON("DELETE", "/api/v1/users/"+obama.ID+"/faces/"+list.Items[0].ID, env.tech, nil, nil); st != 204 {
		t.Fatalf("delete face: %d", st)
	}
	if env.matcher.Len() != before-1 {
		t.Fatalf("matcher has %d descriptors, want %d", env.matcher.Len(), before-1)
	}
	if st := env.doJSON("DELETE", "/api/v1/users/"+biden.ID+"/faces/"+list.Items[1].ID, env.tech, nil, nil); st != 404 {
		t.Fatalf("delete another user's face: %d, want 404", st)
	}
	// Capture without a camera: 503 with a clear message.
	if st := env.doJSON("POST", "/api/v1/users/"+obama.ID+"/faces/capture", env.tech, nil, &er); st != 503 || !strings.Contains(er.Error.Message, "camera") {
		t.Fatalf("capture without camera: %d %+v", st, er)
	}
	// Enrolments went to the outbox with descriptors (for central only).
	msgs, _ := env.db.PendingOutbox(context.Background(), 0, 100)
	if len(msgs) < 6 {
		t.Fatalf("outbox: %d messages, want at least 6", len(msgs))
	}
	p, err := msgs[len(msgs)-1].EnrolmentRecord()
	if err != nil || p.User.ID != obama.ID || len(p.Encodings) != 1 || p.Encodings[0].Descriptor.Validate() != nil {
		t.Fatalf("outbox: last %+v %v", p, err)
	}
}

// TestPhotoFormats: PNG (RGBA), grayscale JPEG and CMYK JPEG photos enrol.
func TestPhotoFormats(t *testing.T) {
	env := mustServer(t, nil)
	// Grayscale: made here from a real photo.
	src, _, err := image.Decode(bytes.NewReader(photo(t, "people/rose_leslie/1.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(src.Bounds())
	for y := src.Bounds().Min.Y; y < src.Bounds().Max.Y; y++ {
		for x := src.Bounds().Min.X; x < src.Bounds().Max.X; x++ {
			gray.Set(x, y, src.At(x, y))
		}
	}
	var gb bytes.Buffer
	jpeg.Encode(&gb, gray, &jpeg.Options{Quality: 90})
	formats := map[string][]byte{
		"png":       photo(t, "people/lin_manuel_miranda/1.png"),
		"grayscale": gb.Bytes(),
	}
	// CMYK: Go cannot write it; Pillow from the face_recognition venv can.
	py := filepath.Join(recognizertest.RepoRoot(), "var", "venv", "bin", "python")
	if _, err := os.Stat(py); err == nil {
		out := filepath.Join(t.TempDir(), "cmyk.jpg")
		cmd := exec.Command(py, "-c", "import sys; from PIL import Image; Image.open(sys.argv[1]).convert('CMYK').save(sys.argv[2], quality=92)",
			recognizertest.Testdata(t, "people/kit_harington/1.jpg"), out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make CMYK photo: %v %s", err, b)
		}
		formats["cmyk"] = mustRead(t, out)
	} else {
		t.Log("var/venv missing (scripts/venv.sh): CMYK case not run")
	}
	for name, img := range formats {
		u := env.mustCreateUser("Format "+name, name+"@example.com")
		var fr FaceResponse
		var er ErrorResponse
		st := env.upload("/api/v1/users/"+u.ID+"/faces", env.tech, map[string]namedFile{"image": {name, img}}, &fr)
		if st != 201 {
			json.Unmarshal(nil, &er)
			t.Errorf("%s: status %d", name, st)
		}
	}
}

// reencode returns the photo at half size as a JPEG of the given quality:
// another file of the same face.
func reencode(tb testing.TB, b []byte, quality int) []byte {
	tb.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	r := img.Bounds()
	half := image.NewRGBA(image.Rect(0, 0, r.Dx()/2, r.Dy()/2))
	for y := range half.Rect.Dy() {
		for x := range half.Rect.Dx() {
			half.Set(x, y, img.At(r.Min.X+2*x, r.Min.Y+2*y))
		}
	}
	var out bytes.Buffer
	if err := jpeg.Encode(&out, half, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}
