package localapi

import (
	"bytes"
	"context"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// mustIdolUsers writes the shared idols gallery (552 users, 1,286 real
// descriptors) to the store, each user with external id "ID-" + the first
// 8 characters of its id, and returns the records.
func (e *testEnv) mustIdolUsers() []models.UserRecord {
	e.t.Helper()
	recs := recognizertest.Idols(e.t)
	for i := range recs {
		recs[i].User.ExternalID = "ID-" + recs[i].User.ID[:8]
	}
	if _, err := e.db.ApplyUserRecords(context.Background(), recs); err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// descriptorsOf returns a record's descriptors.
func descriptorsOf(r models.UserRecord) []models.Descriptor {
	ds := make([]models.Descriptor, len(r.Encodings))
	for i, e := range r.Encodings {
		ds[i] = e.Descriptor
	}
	return ds
}

// idolByName returns the record of the idol named name/band.
func idolByName(tb testing.TB, recs []models.UserRecord, name, band string) *models.UserRecord {
	for i := range recs {
		if recs[i].User.FullName == name && recs[i].User.ClassGroup == band {
			return &recs[i]
		}
	}
	tb.Fatalf("no idol %s of %s", name, band)
	return nil
}

// TestDenseClassEnrolment enrols a dense class, the idols gallery one
// person at a time and then the shared photos/ of five of them through the
// API: no two distinct people are refused as duplicates (a resemblance is
// confirmed by the technician), while a photo filed under two names in the
// gallery, and the same file for a second person, are refused.
func TestDenseClassEnrolment(t *testing.T) {
	env := mustServer(t, nil)
	recs := env.mustIdolUsers()
	ctx := context.Background()
	m := env.matcher
	var outright, sameBetweenNames, possible, none int
	for _, r := range recs {
		for i := range r.Encodings {
			sim, err := env.srv.similarUser(ctx, r.User.ID, &r.Encodings[i].Descriptor)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case sim == nil:
				none++
			case sim.dist < 0.1: // the gallery's mislabelled photos
				sameBetweenNames++
				if sim.verdict == dupPossible {
					t.Errorf("%s: one photo under two names (%.3f) only needs a confirmation", r.User.FullName, sim.dist)
				}
			case sim.verdict == dupPossible:
				possible++
			default:
				outright++
				t.Errorf("%s refused as %s at %.3f (%s)", r.User.FullName, sim.user.FullName, sim.dist, sim.verdict)
			}
		}
		m.SetUser(r.User.ID, descriptorsOf(r))
	}
	cal := env.srv.deps.Gallery.Report().(recognizer.Calibration)
	t.Logf("idols, one person at a time: %d descriptors with no similar user, %d possible (confirmed), %d refused outright, %d photos under two names; outright distance at the end %.3f",
		none, possible, outright, sameBetweenNames, cal.DuplicateDistance)
	if sameBetweenNames == 0 || possible == 0 {
		t.Fatalf("the gallery's mislabelled photos and resemblances were not found")
	}

	// photos/ through the API, each into the gallery's own user.
	type up struct{ file, name, band string }
	// One photo per person (encoding the large photos twice is slow).
	ups := []up{
		{"bona.jpg", "Bona", "WJSN"}, {"eunseo2.jpg", "Eunseo", "WJSN"}, {"jimin5.jpg", "Jimin", "AOA"},
		{"luda.jpg", "Luda", "WJSN"}, {"tzuyu.jpg", "Tzuyu", "Twice"},
	}
	confirmed := 0
	for _, u := range ups {
		rec := idolByName(t, recs, u.name, u.band)
		files := map[string]namedFile{"image": {u.file, photo(t, "photos/"+u.file)}}
		var er, er2 ErrorResponse
		st := env.upload("/api/v1/users/"+rec.User.ID+"/faces", env.tech, files, &er)
		if st == 409 && er.Error.Code == EPOSSIBLEDUPLICATE {
			confirmed++
			files["confirm_different"] = namedFile{data: []byte(er.Error.Details["user_id"].(string))}
			st = env.upload("/api/v1/users/"+rec.User.ID+"/faces", env.tech, files, &er2)
		}
		if st != 201 {
			t.Errorf("%s for %s: %d %+v then %+v", u.file, u.name, st, er, er2)
		}
	}
	t.Logf("photos/: %d enrolled, %d after the technician's confirmation", len(ups), confirmed)
	// The same file for a second person is refused, confirmation or not.
	bona, tzuyu := idolByName(t, recs, "Bona", "WJSN"), idolByName(t, recs, "Tzuyu", "Twice")
	var er ErrorResponse
	files := map[string]namedFile{"image": {"bona.jpg", photo(t, "photos/bona.jpg")}, "confirm_different": {data: []byte(bona.User.ID)}}
	if st := env.upload("/api/v1/users/"+tzuyu.User.ID+"/faces", env.tech, files, &er); st != 409 || er.Error.Code != EDUPLICATE || er.Error.Details["user_id"] != bona.User.ID {
		t.Fatalf("same file for a second person: %d %+v", st, er)
	}
}

// TestIdentifyExternalID: ID + face through the API. A person verifies with
// their own ID; another enrolled person's face with that ID, and an unknown
// ID, do not; on the dense idols gallery nobody passes with another's ID.
func TestIdentifyExternalID(t *testing.T) {
	env := mustServer(t, nil)
	ctx := context.Background()
	obama := env.mustCreateUser("Barack Obama", "obama@example.com")
	biden := env.mustCreateUser("Joe Biden", "biden@example.com")
	for _, u := range []struct {
		u   *models.User
		xid string
		img string
	}{{obama, "S-OBAMA", "people/obama/1.jpg"}, {biden, "S-BIDEN", "people/biden/1.jpg"}} {
		u.u.ExternalID = u.xid
		if err := env.db.UpdateUser(ctx, u.u); err != nil {
			t.Fatal(err)
		}
		var fr FaceResponse
		env.mustStatus(201, env.upload("/api/v1/users/"+u.u.ID+"/faces", env.tech, map[string]namedFile{"image": {"1.jpg", photo(t, u.img)}}, &fr), "enrol")
	}
	identify := func(img []byte, xid string) IdentifyResponse {
		t.Helper()
		var ir IdentifyResponse
		st := env.upload("/api/v1/identify", env.tech, map[string]namedFile{"image": {"x.jpg", img}, "external_id": {data: []byte(xid)}}, &ir)
		env.mustStatus(200, st, "identify "+xid)
		return ir
	}
	if ir := identify(photo(t, "people/obama/2.jpg"), "S-OBAMA"); ir.Result != "match" || ir.UserID != obama.ID || ir.Threshold == nil {
		t.Fatalf("obama with his ID: %+v", ir)
	}
	if ir := identify(photo(t, "people/obama/2.jpg"), "S-BIDEN"); ir.Result != "no_match" || ir.UserID != biden.ID {
		t.Fatalf("obama with biden's ID: %+v", ir)
	}
	if ir := identify(photo(t, "people/kit_harington/1.jpg"), "S-BIDEN"); ir.Result != "no_match" {
		t.Fatalf("a stranger with biden's ID: %+v", ir)
	}
	if ir := identify(photo(t, "people/obama/2.jpg"), "S-NOBODY"); ir.Result != "no_match" || ir.UserID != "" {
		t.Fatalf("unknown ID: %+v", ir)
	}
	if ir := identify(photo(t, "multi/two_people.jpg"), "S-OBAMA"); ir.Result != "multiple_faces" {
		t.Fatalf("two faces with an ID: %+v", ir)
	}
	var er ErrorResponse
	long := namedFile{data: bytes.Repeat([]byte("9"), maxFormValue+1)}
	if st := env.upload("/api/v1/identify", env.tech, map[string]namedFile{"image": {"x.jpg", photo(t, "people/obama/2.jpg")}, "external_id": long}, &er); st != 422 || er.Error.Details["field"] != "external_id" {
		t.Fatalf("an overlong external_id: %d %+v", st, er)
	}

	// The dense idols gallery: photos/ of five idols claiming their own
	// and every other of the five's IDs.
	recs := env.mustIdolUsers()
	for _, r := range recs {
		env.matcher.SetUser(r.User.ID, descriptorsOf(r))
	}
	// The status reports the gallery's calibration and its warning.
	var st struct {
		Calibration struct {
			Users   int     `json:"users"`
			Dense   bool    `json:"dense"`
			Warning string  `json:"warning"`
			Verify  float64 `json:"verify_threshold"`
		} `json:"calibration"`
	}
	env.mustStatus(200, env.doJSON("GET", "/api/v1/status", env.tech, nil, &st), "status")
	if c := st.Calibration; c.Users != 136 || !c.Dense || c.Warning == "" || !(c.Verify > 0 && c.Verify < 0.3) {
		t.Fatalf("status calibration: %+v", c)
	}
	// Each photo claims its own ID and the next two people's.
	files := []string{"bona2.jpg", "eunseo2.jpg", "jimin5.jpg", "luda.jpg", "tzuyu.jpg"}
	names := []string{"Bona", "Eunseo", "Jimin", "Luda", "Tzuyu"}
	band := map[string]string{"Bona": "WJSN", "Eunseo": "WJSN", "Jimin": "AOA", "Luda": "WJSN", "Tzuyu": "Twice"}
	own, wrong := 0, 0
	for i, file := range files {
		img, name := photo(t, "photos/"+file), names[i]
		for k := range 3 {
			claim := names[(i+k)%len(names)]
			rec := idolByName(t, recs, claim, band[claim])
			ir := identify(img, rec.User.ExternalID)
			if claim == name && ir.Result == "match" {
				own++
			}
			if claim != name && ir.Result != "no_match" {
				wrong++
				t.Errorf("%s verified as %s: %+v", file, claim, ir)
			}
			if ir.Distance == nil || math.IsNaN(*ir.Distance) || !strings.Contains(ir.Message, ".") {
				t.Errorf("%s as %s: %+v", file, claim, ir)
			}
		}
	}
	t.Logf("idols: %d of %d photos verified with their own ID, %d accepted with another's", own, len(files), wrong)
}

// TestBrowserEnrolConfirm: on the technician page, a photo resembling
// another user shows that person and a confirm button; confirming enrols.
func TestBrowserEnrolConfirm(t *testing.T) {
	env := mustServer(t, nil)
	obama := env.mustCreateUser("Barack Obama", "obama@example.com")
	var fr FaceResponse
	env.mustStatus(201, env.upload("/api/v1/users/"+obama.ID+"/faces", env.tech, map[string]namedFile{"image": {"1.jpg", photo(t, "people/obama/1.jpg")}}, &fr), "enrol obama")
	ctx := mustBrowser(t)
	err := chromedp.Do(ctx, append(technicianNewUser(env, "Barry Lookalike", "barry@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#enrol-file"), []string{recognizertest.Testdata(t, "people/obama/2.jpg")}),
		chromedp.Click(chromedp.CSS("#enrol-upload")),
		waitText("#similar-text", "resembles Barack Obama (obama@example.com, 1 photo)"),
	)...)
	if err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#enrol-msg")))
		t.Fatalf("possible duplicate on the page: %v (message %q)", err, msg)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(artifact(t, "technician-similar.png"), shot, 0o644)
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#similar-confirm")),
		waitText("#enrol-msg", "Enrolled Barry Lookalike."),
	); err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#enrol-msg")))
		t.Fatalf("confirm: %v (%q)", err, msg)
	}
	u, err := env.db.GetUserByEmail(context.Background(), "barry@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if encs, _ := env.db.ListEncodings(context.Background(), u.ID); len(encs) != 1 {
		t.Fatalf("%d encodings stored after the confirmation", len(encs))
	}
	// ID + face from the page: Obama's photo with Obama's ID verifies.
	obama.ExternalID = "S-OBAMA"
	if err := env.db.UpdateUser(context.Background(), obama); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.CSS("#identify-file"), []string{recognizertest.Testdata(t, "people/obama/3_small.jpg")}),
		chromedp.SendKeys(chromedp.CSS("#identify-id"), "S-OBAMA"),
		chromedp.Click(chromedp.CSS("#identify-form button")),
		waitText("#identify-msg", "Match: Barack Obama"),
	); err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#identify-msg")))
		t.Fatalf("ID + face on the page: %v (%q)", err, msg)
	}
}

// TestImportConfirmDifferent: in a bulk import a face resembling an
// earlier row's person is reported per row as possible_duplicate naming
// that person; the same sheet with that person's email in Confirm
// different enrols it, and the same file under two names stays refused.
func TestImportConfirmDifferent(t *testing.T) {
	env := mustServer(t, nil)
	zipBytes := makeZip(t, []zipEntry{{"a.jpg", photo(t, "people/obama/1.jpg")}, {"b.jpg", photo(t, "people/obama/2.jpg")}})
	header := append(append([]any{}, sheetHeader...), "Confirm different")
	rows := [][]any{header,
		{"S1", "ann@example.com", "Ann A", "Trainee", "Eng", "ENG-1", "a.jpg", ""},
		{"S2", "ben@example.com", "Ben B", "Trainee", "Eng", "ENG-1", "b.jpg", ""},
		{"S3", "cal@example.com", "Cal C", "Trainee", "Eng", "ENG-1", "a.jpg", "ann@example.com"},
	}
	_, got := env.importRun(makeXLSX(t, rows), zipBytes)
	status := func(rs []*ImportRow) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Status)
		}
		return out
	}
	if s := status(got); s[0] != RowCreated || s[1] != RowPossibleDuplicate || s[2] != RowDuplicate ||
		!strings.Contains(got[1].Message, "resembles Ann A") || !strings.Contains(got[1].Message, "ann@example.com") {
		t.Fatalf("first import: %v; %q, %q", s, got[1].Message, got[2].Message)
	}
	_, got = env.importRun(makeXLSX(t, rows), zipBytes) // unconfirmed: still a question
	if s := status(got); s[0] != RowUnchanged || s[1] != RowPossibleDuplicate || s[2] != RowDuplicate {
		t.Fatalf("import again: %v; %q %q", s, got[1].Message, got[2].Message)
	}
	rows[2][7] = "ann@example.com" // Ben
	_, got = env.importRun(makeXLSX(t, rows), zipBytes)
	if s := status(got); s[0] != RowUnchanged || s[1] != RowCreated || s[2] != RowDuplicate {
		t.Fatalf("confirmed import: %v; %q %q", s, got[1].Message, got[2].Message)
	}
}

// TestDuplicateRule: the verdicts by distance and what lets an enrolment
// through each.
func TestDuplicateRule(t *testing.T) {
	r := duplicateRule{same: 0.05, outright: 0.22, possible: 0.6}
	for _, c := range []struct {
		dist float64
		want string
	}{{0, dupSame}, {0.05, dupSame}, {0.051, dupOutright}, {0.22, dupOutright}, {0.3, dupPossible}, {0.6, dupPossible}, {0.61, dupNone}, {math.Inf(1), dupNone}} {
		if got := r.judge(c.dist); got != c.want {
			t.Errorf("judge(%v) = %q, want %q", c.dist, got, c.want)
		}
	}
	other := &models.User{ID: "u1", Email: "Ann@example.com"}
	for _, c := range []struct {
		verdict, confirm string
		force, want      bool
	}{
		{dupSame, "u1", true, false},
		{dupOutright, "u1", false, false}, {dupOutright, "", true, true},
		{dupPossible, "", false, false}, {dupPossible, "u2", false, false}, {dupPossible, "u1", false, true},
		{dupPossible, "ann@example.com", false, true}, {dupPossible, "", true, true},
	} {
		sim := &similar{user: other, verdict: c.verdict}
		if got := sim.allowed(c.force, c.confirm); got != c.want {
			t.Errorf("%s, confirm %q, force %v: allowed %v, want %v", c.verdict, c.confirm, c.force, got, c.want)
		}
	}
}

// TestBrowserDenseWarning: with the dense idols gallery enrolled, the
// technician page says loudly that face-only identification cannot reach
// the target here.
func TestBrowserDenseWarning(t *testing.T) {
	env := mustServer(t, nil)
	for _, r := range env.mustIdolUsers() {
		env.matcher.SetUser(r.User.ID, descriptorsOf(r))
	}
	ctx := mustBrowser(t)
	if err := chromedp.Do(ctx, append(technicianLogin(env),
		waitText("#gallery-warning", "too dense for face-only identification"),
	)...); err != nil {
		t.Fatalf("dense warning on the technician page: %v", err)
	}
}
