package localapi

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
)

// streamEntry writes a deflated zip entry of prefix, n copies of fill and
// suffix, with honest sizes and CRC: a few hundred KB on the wire for
// hundreds of MB unpacked.
func streamEntry(tb testing.TB, zw *zip.Writer, name, prefix string, fill byte, n int64, suffix string) {
	tb.Helper()
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	crc := crc32.NewIEEE()
	w := io.MultiWriter(fw, crc)
	io.WriteString(w, prefix)
	chunk := bytes.Repeat([]byte{fill}, 1<<20)
	for left := n; left > 0; left -= int64(len(chunk)) {
		w.Write(chunk[:min(left, int64(len(chunk)))])
	}
	io.WriteString(w, suffix)
	fw.Close()
	zw2, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc.Sum32(),
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: uint64(len(prefix)) + uint64(n) + uint64(len(suffix))})
	if err != nil {
		tb.Fatal(err)
	}
	zw2.Write(comp.Bytes())
}

// xlsxWithPart returns the good sheet with one part replaced by a streamed
// entry (see streamEntry), or added when the sheet has no such part.
func xlsxWithPart(tb testing.TB, good []byte, name, prefix string, fill byte, n int64, suffix string) []byte {
	tb.Helper()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, e := range zipEntriesOf(tb, good) {
		if e.name != name {
			w, _ := zw.Create(e.name)
			w.Write(e.data)
		}
	}
	streamEntry(tb, zw, name, prefix, fill, n, suffix)
	zw.Close()
	return out.Bytes()
}

const (
	sheetXMLHead = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
		`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` +
		`<row r="1"><c r="A1" t="inlineStr"><is><t>Email</t></is></c><c r="B1" t="inlineStr"><is><t>Full name</t></is></c>` +
		`<c r="C1" t="inlineStr"><is><t>Role</t></is></c><c r="D1" t="inlineStr"><is><t>Photo</t></is></c></row>` +
		`<row r="2"><c r="A2" t="inlineStr"><is><t>ada@example.com</t></is></c><c r="B2" t="inlineStr"><is><t>`
	sheetXMLTail = `</t></is></c><c r="C2" t="inlineStr"><is><t>trainee</t></is></c><c r="D2" t="inlineStr"><is><t>ada.jpg</t></is></c></row>` +
		`</sheetData></worksheet>`
)

// cellBomb is an .xlsx whose one name cell holds n bytes.
func cellBomb(tb testing.TB, n int64) []byte {
	good := makeXLSX(tb, [][]any{sheetHeader, {"S1", "ada@example.com", "Ada", "trainee", "", "", "ada.jpg"}})
	return xlsxWithPart(tb, good, "xl/worksheets/sheet1.xml", sheetXMLHead, 'A', n, sheetXMLTail)
}

// sharedStringsBomb is an .xlsx with a shared-strings part of one n-byte
// string.
func sharedStringsBomb(tb testing.TB, n int64) []byte {
	good := makeXLSX(tb, [][]any{sheetHeader, {"S1", "ada@example.com", "Ada", "trainee", "", "", "ada.jpg"}})
	return xlsxWithPart(tb, good, "xl/sharedStrings.xml",
		`<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>`,
		'B', n, `</t></si></sst>`)
}

// TestImportSheetBombs: a small .xlsx that unpacks to a huge cell or
// shared-strings part is refused before excelize parses it, by the sheet's
// own size limit or, under it, by the bound on one cell.
func TestImportSheetBombs(t *testing.T) {
	env := mustServer(t, nil)
	zipOK := makeZip(t, []zipEntry{{"ada.jpg", photo(t, "people/rose_leslie/1.jpg")}})
	cases := []struct {
		name  string
		sheet []byte
	}{
		{"100 MB cell", cellBomb(t, 100<<20)},
		{"150 MB shared strings", sharedStringsBomb(t, 150<<20)},
		{"20 MB cell (under the sheet limit)", cellBomb(t, 20<<20)},
		{"20 MB shared string", sharedStringsBomb(t, 20<<20)},
	}
	for _, c := range cases {
		var er ErrorResponse
		start := time.Now()
		st := env.upload("/api/v1/import", env.tech, map[string]namedFile{"sheet": {"s.xlsx", c.sheet}, "photos": {"p.zip", zipOK}}, &er)
		if st != 413 || er.Error.Code != models.ETOOLARGE {
			t.Fatalf("%s (%d KB): %d %+v, want 413", c.name, len(c.sheet)>>10, st, er)
		}
		t.Logf("%s (%d KB): refused in %v: %s", c.name, len(c.sheet)>>10, time.Since(start), er.Error.Message)
	}
}

// TestImportInvalidXMLCharRefused: an illegal XML character in a cell used
// to stop excelize's row reader silently, so the rows after it vanished and
// the job said "done"; now the sheet is refused, naming the part and line.
func TestImportInvalidXMLCharRefused(t *testing.T) {
	env := mustServer(t, nil)
	good := makeXLSX(t, [][]any{sheetHeader,
		{"S1", "ada@example.com", "Ada", "trainee", "", "", "ada.jpg"},
		{"S2", "bob@example.com", "Bob", "trainee", "", "", "bob.jpg"},
		{"S3", "cy@example.com", "Cy", "trainee", "", "", "cy.jpg"}})
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	patched := false
	for _, e := range zipEntriesOf(t, good) {
		if strings.HasPrefix(e.name, "xl/worksheets/") && bytes.Contains(e.data, []byte("Bob")) {
			e.data, patched = bytes.Replace(e.data, []byte("Bob"), []byte("B\x01ob"), 1), true
		}
		w, _ := zw.Create(e.name)
		w.Write(e.data)
	}
	zw.Close()
	if !patched {
		t.Fatal("the sheet has no inline Bob to patch")
	}
	var er ErrorResponse
	st := env.upload("/api/v1/import", env.tech, map[string]namedFile{"sheet": {"s.xlsx", out.Bytes()}}, &er)
	if st != 422 || !strings.Contains(er.Error.Message, "xl/worksheets/sheet1.xml") || !strings.Contains(er.Error.Message, "U+0001") {
		t.Fatalf("illegal character: %d %+v, want 422 naming the part and the character", st, er)
	}
	t.Log(er.Error.Message)
}

// TestImportOneAtATime: a second import is refused while the first is still
// being uploaded (the check and the claim are one step), and accepted once
// the first has finished.
func TestImportOneAtATime(t *testing.T) {
	env := mustServer(t, nil)
	sheet := makeXLSX(t, [][]any{sheetHeader, {"S1", "ada@example.com", "Ada", "trainee", "", "", "ada.jpg"}})
	photos := makeZip(t, []zipEntry{{"ada.jpg", photo(t, "people/rose_leslie/1.jpg")}})
	body := func() (*bytes.Buffer, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		w, _ := mw.CreateFormFile("sheet", "s.xlsx")
		w.Write(sheet)
		w, _ = mw.CreateFormFile("photos", "p.zip")
		w.Write(photos)
		mw.Close()
		return &buf, mw.FormDataContentType()
	}
	// The first upload sends half its body and waits.
	full, ct := body()
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", env.url+"/api/v1/import", pr)
		req.Header.Set("Authorization", "Bearer "+env.tech)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	half := full.Len() / 2
	pw.Write(full.Next(half))
	time.Sleep(300 * time.Millisecond) // the server is now receiving the first upload
	b2, ct2 := body()
	resp, b := env.do("POST", "/api/v1/import", env.tech, ct2, b2)
	if resp.StatusCode != 409 || errCode(b) != models.ECONFLICT {
		t.Fatalf("second import during the first's upload: %d %s, want 409", resp.StatusCode, b)
	}
	pw.Write(full.Bytes())
	pw.Close()
	if st := <-first; st != 202 {
		t.Fatalf("first import: %d, want 202", st)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b3, ct3 := body()
		resp, b = env.do("POST", "/api/v1/import", env.tech, ct3, b3)
		if resp.StatusCode == 202 {
			break
		}
		if resp.StatusCode != 409 || time.Now().After(deadline) {
			t.Fatalf("import after the first: %d %s", resp.StatusCode, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestImportTempCleanedAtStart: the temp folder of an import whose kioskd
// was killed (its process is gone) holds uploaded photos; the next start
// removes it, and keeps a live process's.
func TestImportTempCleanedAtStart(t *testing.T) {
	tmp := filepath.Join(t.TempDir(), "tmp")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(tmp, "kioskd-import-"+itoa(dead.Process.Pid)+"-123")
	live := filepath.Join(tmp, importDirPrefix()+"456")
	for _, d := range []string{stale, live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "photos"), photo(t, "people/rose_leslie/1.jpg"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustServer(t, func(c *Config, _ *Deps) { c.TempDir = tmp })
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("a killed import's photos are still in %s (%v)", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("a live process's import folder was removed: %v", err)
	}
}
