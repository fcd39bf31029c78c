package localapi

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kioskd/kioskd/localapi/localapitest"
	"github.com/kioskd/kioskd/models"
)

// sheetHeader is the template's header row.
var sheetHeader = localapitest.SheetHeader

// makeXLSX builds a workbook with excelize's streaming writer.
func makeXLSX(tb testing.TB, rows [][]any) []byte {
	tb.Helper()
	x := excelize.NewFile()
	defer x.Close()
	sw, err := x.NewStreamWriter("Sheet1")
	if err != nil {
		tb.Fatal(err)
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, r); err != nil {
			tb.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := x.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

type zipEntry struct {
	name string
	data []byte
}

func makeZip(tb testing.TB, entries []zipEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(e.data)
	}
	zw.Close()
	return buf.Bytes()
}

// importRun posts an import and waits for the job to finish.
func (e *testEnv) importRun(sheet, photos []byte) (ImportJob, []*ImportRow) {
	e.t.Helper()
	files := map[string]namedFile{"sheet": {"class.xlsx", sheet}}
	if photos != nil {
		files["photos"] = namedFile{"photos.zip", photos}
	}
	var job ImportJob
	if st := e.upload("/api/v1/import", e.tech, files, &job); st != 202 {
		e.t.Fatalf("import: status %d %+v", st, job)
	}
	deadline := time.Now().Add(4 * time.Minute)
	for job.State != JobDone && job.State != JobFailed {
		if time.Now().After(deadline) {
			e.t.Fatalf("import %s still %s", job.ID, job.State)
		}
		time.Sleep(100 * time.Millisecond)
		e.doJSON("GET", "/api/v1/import/"+job.ID, e.tech, nil, &job)
	}
	if job.State != JobDone {
		e.t.Fatalf("import failed: %+v", job)
	}
	resp, b := e.do("GET", job.ResultURL, e.tech, "", nil)
	e.mustStatus(200, resp.StatusCode, "result.xlsx")
	x, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	defer x.Close()
	all, _ := x.GetRows("Sheet1")
	var rows []*ImportRow
	for _, r := range all[1:] {
		for len(r) < 11 {
			r = append(r, "")
		}
		var n int
		fmt.Sscan(r[0], &n)
		rows = append(rows, &ImportRow{Row: n, Email: r[2], FullName: r[3], Photo: r[7], Status: r[8], Message: r[9], UserID: r[10]})
	}
	return job, rows
}

// TestBulkImport200 imports 200 rows built from the shared photos: each row
// is its own person, photos are reused, so the first row showing a person's
// face creates that person and every later row with the same face (same or
// another photo of them) is a duplicate of that first row's person. Group
// photos, non-images, missing photos and bad emails get their own status.
// Importing again changes nothing.
func TestBulkImport200(t *testing.T) {
	env := mustServer(t, nil)
	type ph struct{ rel, who string } // who: the identity, or "" when no single face
	photos := []ph{
		{"people/obama/1.jpg", "obama"}, {"people/biden/1.jpg", "biden"}, {"people/kit_harington/1.jpg", "kit"},
		{"people/rose_leslie/1.jpg", "rose"}, {"people/alex_lacamoire/1.jpg", "alex"}, {"people/lin_manuel_miranda/1.png", "lin"},
		{"people/obama/2.jpg", "obama"}, {"people/biden/2.jpg", "biden"}, {"people/kit_harington/2.jpg", "kit"},
		{"people/rose_leslie/2.jpg", "rose"}, {"people/alex_lacamoire/2.png", "alex"}, {"people/obama/3_small.jpg", "obama"},
		{"multi/two_people.jpg", ""},
	}
	var entries []zipEntry
	names := map[string]string{} // zip name -> identity
	for _, p := range photos {
		name := strings.ReplaceAll(p.rel, "/", "_")
		entries = append(entries, zipEntry{"class/" + name, photo(t, p.rel)})
		names[name] = p.who
	}
	entries = append(entries, zipEntry{"class/notes.jpg", []byte("not a photo at all")})
	zipBytes := makeZip(t, entries)

	rows := [][]any{sheetHeader}
	want := map[int]string{} // sheet row -> status
	firstOf := map[string]int{}
	firstPhoto := map[string]string{} // the photo that created the person
	// Another photo of a person already created: the same person outright
	// or, further than the calibrated distance, a possible duplicate.
	const anyDuplicate = "duplicate or possible_duplicate"
	for i := 0; i < 200; i++ {
		rowNum := i + 2
		email := fmt.Sprintf("person%03d@example.com", i)
		var name string
		switch {
		case i%50 == 49:
			email = fmt.Sprintf("person%03d-at-example.com", i)
			want[rowNum] = RowInvalid
		case i%40 == 17:
			name = "notes.jpg"
			want[rowNum] = RowBadImage
		case i%40 == 23:
			name = "missing.jpg"
			want[rowNum] = RowPhotoMissing
		}
		if name == "" {
			p := photos[i%len(photos)]
			name = strings.ReplaceAll(p.rel, "/", "_")
			if _, set := want[rowNum]; !set {
				switch who := p.who; {
				case who == "":
					want[rowNum] = RowMultipleFaces
				case firstOf[who] == 0:
					firstOf[who], firstPhoto[who] = rowNum, name
					want[rowNum] = RowCreated
				case firstPhoto[who] == name:
					want[rowNum] = RowDuplicate
				default:
					want[rowNum] = anyDuplicate
				}
			}
		}
		rows = append(rows, []any{fmt.Sprintf("S%04d", i), email, fmt.Sprintf("Person %03d", i), "Trainee", "Engineering", "ENG-1A", name})
	}
	sheet := makeXLSX(t, rows)

	start := time.Now()
	job, got := env.importRun(sheet, zipBytes)
	t.Logf("first import: %v, counts %v", time.Since(start), job.Counts)
	if len(got) != 200 || job.Rows != 200 {
		t.Fatalf("result has %d rows, job %d", len(got), job.Rows)
	}
	isDup := func(status string) bool { return status == RowDuplicate || status == RowPossibleDuplicate }
	for _, r := range got {
		if r.Status != want[r.Row] && !(want[r.Row] == anyDuplicate && isDup(r.Status)) {
			t.Errorf("row %d (%s): %s %q, want %s", r.Row, r.Photo, r.Status, r.Message, want[r.Row])
		}
		if isDup(r.Status) && !strings.Contains(r.Message, " of Person") && !strings.Contains(r.Message, "resembles Person") {
			t.Errorf("row %d: duplicate message %q does not name the person", r.Row, r.Message)
		}
	}
	ctx := context.Background()
	users, _ := env.db.CountUsers(ctx)
	encs, _ := env.db.CountEncodings(ctx)
	outbox, _ := env.db.OutboxLen(ctx)
	if users != len(firstOf) || encs != len(firstOf) || env.matcher.Len() != len(firstOf) || outbox != len(firstOf) {
		t.Fatalf("after import: %d users, %d encodings, %d in gallery, %d in outbox; want %d each", users, encs, env.matcher.Len(), outbox, len(firstOf))
	}

	// Again: idempotent.
	job2, got2 := env.importRun(sheet, zipBytes)
	t.Logf("second import counts %v", job2.Counts)
	for _, r := range got2 {
		w := want[r.Row]
		if w == RowCreated {
			w = RowUnchanged
		}
		if r.Status != w && !(w == anyDuplicate && isDup(r.Status)) {
			t.Errorf("re-import row %d: %s %q, want %s", r.Row, r.Status, r.Message, w)
		}
	}
	users2, _ := env.db.CountUsers(ctx)
	encs2, _ := env.db.CountEncodings(ctx)
	outbox2, _ := env.db.OutboxLen(ctx)
	if users2 != users || encs2 != encs || outbox2 != outbox {
		t.Fatalf("re-import changed the store: users %d->%d, encodings %d->%d, outbox %d->%d", users, users2, encs, encs2, outbox, outbox2)
	}

	// A changed row updates the person; nothing else moves.
	rows[firstOf["obama"]-1][5] = "ENG-2B"
	_, got3 := env.importRun(makeXLSX(t, rows), zipBytes)
	for _, r := range got3 {
		if r.Row == firstOf["obama"] && r.Status != RowUpdated {
			t.Errorf("changed row: %s %q, want updated", r.Status, r.Message)
		}
	}
	u, err := env.db.GetUserByEmail(ctx, got3[firstOf["obama"]-2].Email)
	if err != nil || u.ClassGroup != "ENG-2B" {
		t.Fatalf("updated user: %+v %v", u, err)
	}
}

// bombEntry is a deflated entry of n zero bytes, written raw; lie sets a
// small declared size (archive/zip must then refuse to inflate past it).
func bombEntry(tb testing.TB, zw *zip.Writer, name string, n int64, lie bool) {
	tb.Helper()
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	crc := crc32.NewIEEE()
	zero := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(zero)) {
		k := min(left, int64(len(zero)))
		fw.Write(zero[:k])
		crc.Write(zero[:k])
	}
	fw.Close()
	size := uint64(n)
	if lie {
		size = 1000
	}
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc.Sum32(),
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: size})
	if err != nil {
		tb.Fatal(err)
	}
	w.Write(comp.Bytes())
}

// TestImportBadInput: every structural attack is a clear 4xx before any
// work, per-row problems are per-row results, and the daemon stays healthy.
func TestImportBadInput(t *testing.T) {
	env := mustServer(t, func(c *Config, _ *Deps) {
		c.MaxUnzipBytes = 64 << 20
		c.MaxZipEntries = 100
		c.MaxImportRows = 1000
	})
	goodSheet := makeXLSX(t, [][]any{sheetHeader, {"S1", "ada@example.com", "Ada", "trainee", "", "", "ada.jpg"}})
	goodZip := makeZip(t, []zipEntry{{"ada.jpg", photo(t, "people/rose_leslie/1.jpg")}})

	// A sheet whose XML inflates past the limit (honest sizes): excelize and
	// our own directory check refuse it.
	sheetBomb := func(lying bool) *bytes.Buffer {
		var out bytes.Buffer
		zw := zip.NewWriter(&out)
		for _, e := range zipEntriesOf(t, goodSheet) {
			if e.name == "xl/worksheets/sheet1.xml" {
				bombEntry(t, zw, e.name, 100<<20, lying)
				continue
			}
			w, _ := zw.Create(e.name)
			w.Write(e.data)
		}
		zw.Close()
		return &out
	}
	bomb := sheetBomb(false)
	// The same with a lying declared size.
	liar := sheetBomb(true)
	// Photos: an honest bomb, too many entries, a traversal name.
	var photoBomb bytes.Buffer
	zw := zip.NewWriter(&photoBomb)
	bombEntry(t, zw, "ada.jpg", 100<<20, false)
	zw.Close()
	var many []zipEntry
	for i := 0; i < 101; i++ {
		many = append(many, zipEntry{fmt.Sprintf("p%d.jpg", i), []byte{1}})
	}
	cases := []struct {
		name          string
		sheet, photos []byte
		status        int
		code          string
	}{
		{"xlsx bomb", bomb.Bytes(), goodZip, 413, models.ETOOLARGE},
		{"xlsx lying bomb", liar.Bytes(), goodZip, 422, models.EINVALID},
		{"photos bomb", goodSheet, photoBomb.Bytes(), 413, models.ETOOLARGE},
		{"too many entries", goodSheet, makeZip(t, many), 413, models.ETOOLARGE},
		{"traversal", goodSheet, makeZip(t, []zipEntry{{"../../etc/cron.d/x", []byte("x")}, {"ada.jpg", []byte("x")}}), 422, models.EINVALID},
		{"absolute", goodSheet, makeZip(t, []zipEntry{{"/etc/passwd", []byte("x")}}), 422, models.EINVALID},
		{"backslash", goodSheet, makeZip(t, []zipEntry{{"..\\..\\win.ini", []byte("x")}}), 422, models.EINVALID},
		{"sheet not xlsx", []byte("hello"), goodZip, 422, models.EINVALID},
		{"photos not zip", goodSheet, []byte("hello"), 422, models.EINVALID},
		{"no header", makeXLSX(t, [][]any{{"a", "b"}, {"c", "d"}}), goodZip, 422, models.EINVALID},
		{"too many rows", makeXLSX(t, append([][]any{sheetHeader}, repeatRow(1001)...)), goodZip, 413, models.ETOOLARGE},
	}
	for _, c := range cases {
		var er ErrorResponse
		st := env.upload("/api/v1/import", env.tech, map[string]namedFile{"sheet": {"s.xlsx", c.sheet}, "photos": {"p.zip", c.photos}}, &er)
		if st != c.status || er.Error.Code != c.code {
			t.Errorf("%s: %d %+v, want %d %s", c.name, st, er, c.status, c.code)
		} else {
			t.Logf("%s: %d %s", c.name, st, er.Error.Message)
		}
	}
	// A lying photo entry fails only its row.
	var lyingPhotos bytes.Buffer
	zw = zip.NewWriter(&lyingPhotos)
	bombEntry(t, zw, "ada.jpg", 50<<20, true)
	zw.Close()
	_, rows := env.importRun(goodSheet, lyingPhotos.Bytes())
	if len(rows) != 1 || rows[0].Status != RowBadImage {
		t.Fatalf("lying photo entry: %+v", rows[0])
	}
	// Nothing was written for the refused rows; the daemon is healthy.
	if n, _ := env.db.CountUsers(context.Background()); n != 0 {
		t.Fatalf("%d users written", n)
	}
	if st := env.doJSON("GET", "/healthz", "", nil, nil); st != 200 {
		t.Fatalf("healthz: %d", st)
	}
	// Temp files of refused uploads are gone.
	if left := tempEntries(t, env.srv.cfg.TempDir); left > 1 { // the finished job's folder stays for an hour
		t.Fatalf("%d temp entries left", left)
	}
}

func repeatRow(n int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{fmt.Sprintf("S%d", i), fmt.Sprintf("p%d@example.com", i), "P", "trainee", "", "", "x.jpg"}
	}
	return rows
}

func zipEntriesOf(tb testing.TB, b []byte) []zipEntry {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		tb.Fatal(err)
	}
	var out []zipEntry
	for _, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		out = append(out, zipEntry{f.Name, data})
	}
	return out
}

// TestImportMaxSheet: a sheet at Excel's 1,048,576-row maximum is refused
// after reading just past the row limit.
func TestImportMaxSheet(t *testing.T) {
	env := mustServer(t, nil)
	x := excelize.NewFile()
	sw, _ := x.NewStreamWriter("Sheet1")
	sw.SetRow("A1", sheetHeader)
	row := []any{"S", "p@example.com", "P", "trainee", "", "", "x.jpg"}
	for i := 2; i <= 1_048_576; i++ {
		cell, _ := excelize.CoordinatesToCellName(1, i)
		if err := sw.SetRow(cell, row); err != nil {
			t.Fatal(err)
		}
	}
	sw.Flush()
	var buf bytes.Buffer
	x.WriteTo(&buf)
	x.Close()
	t.Logf("sheet: %d MB compressed", buf.Len()>>20)
	start := time.Now()
	var er ErrorResponse
	st := env.upload("/api/v1/import", env.tech, map[string]namedFile{"sheet": {"big.xlsx", buf.Bytes()}}, &er)
	if st != 413 || er.Error.Code != models.ETOOLARGE {
		t.Fatalf("1M rows: %d %+v", st, er)
	}
	t.Logf("refused in %v: %s", time.Since(start), er.Error.Message)
}

func tempEntries(tb testing.TB, dir string) int {
	ents, _ := readDirNames(dir)
	return len(ents)
}

var _ = path.Base
