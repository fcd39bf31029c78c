package localapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// zeroReader yields n zero bytes without holding them.
type zeroReader struct{ left int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), z.left)
	clear(p[:n])
	z.left -= n
	return int(n), nil
}

// TestHugeUpload streams 1 GB at the photo and the import endpoints: both
// answer 413 having read no more than their limit, with heap and temp disk
// bounded.
func TestHugeUpload(t *testing.T) {
	env := mustServer(t, func(c *Config, _ *Deps) { c.MaxUploadBytes = 32 << 20 })
	u := env.mustCreateUser("Huge Upload", "huge@example.com")
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	for _, c := range []struct{ path, field string }{
		{"/api/v1/users/" + u.ID + "/faces", "image"},
		{"/api/v1/identify", "image"},
		{"/api/v1/import", "sheet"},
	} {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			w, _ := mw.CreateFormFile(c.field, "huge.bin")
			_, err := io.Copy(w, &zeroReader{left: 1 << 30})
			if err == nil {
				err = mw.Close()
			}
			pw.CloseWithError(err)
		}()
		req, _ := http.NewRequest("POST", env.url+c.path, pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+env.tech)
		start := time.Now()
		resp, err := env.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pr.CloseWithError(io.ErrClosedPipe)
		if resp.StatusCode != 413 || errCode(b) != models.ETOOLARGE {
			t.Fatalf("%s: %d %s, want 413", c.path, resp.StatusCode, b)
		}
		t.Logf("%s: 413 in %v: %s", c.path, time.Since(start), strings.TrimSpace(string(b)))
	}
	close(stop)
	t.Logf("peak heap in use: %d MB", peak.Load()>>20)
	if peak.Load() > 200<<20 {
		t.Fatalf("peak heap %d MB: the upload was buffered", peak.Load()>>20)
	}
	if n := tempEntries(t, env.srv.cfg.TempDir); n != 0 {
		t.Fatalf("%d temp entries left after refused uploads", n)
	}
	if st := env.doJSON("GET", "/healthz", "", nil, nil); st != 200 {
		t.Fatalf("healthz: %d", st)
	}
}

// TestPixelBomb: a PNG whose header claims 50000x50000 is refused from the
// header, without decoding.
func TestPixelBomb(t *testing.T) {
	env := mustServer(t, nil)
	u := env.mustCreateUser("Pixel Bomb", "pixels@example.com")
	png := recognizertest.PNGHeader(50000, 50000, 8, 2)
	var er ErrorResponse
	st := env.upload("/api/v1/users/"+u.ID+"/faces", env.tech, map[string]namedFile{"image": {"bomb.png", png}}, &er)
	if st != 413 || er.Error.Code != models.ETOOLARGE {
		t.Fatalf("pixel bomb: %d %+v", st, er)
	}
}

// TestExportFormulaInjection: attendance export escapes formula-like text.
func TestExportFormulaInjection(t *testing.T) {
	env := mustServer(t, nil)
	ctx := context.Background()
	evil := []string{"=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "plain"}
	for i, name := range evil {
		u := &models.User{FullName: name, Email: fmt.Sprintf("evil%d@example.com", i), Role: models.RoleTrainee}
		if err := env.db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		ev := &models.AttendanceEvent{UserID: u.ID, Time: time.Now().UTC(), KioskID: "=cmd|' /C calc'!A0", Distance: 0.3, SessionID: "-session"}
		if err := env.db.RecordAttendance(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var page Page[*models.AttendanceEvent]
	if st := env.doJSON("GET", "/api/v1/attendance?limit=3", env.tech, nil, &page); st != 200 || page.Total != len(evil) || len(page.Items) != 3 {
		t.Fatalf("list: %d %+v", st, page)
	}
	resp, b := env.do("GET", "/api/v1/attendance/export.xlsx", env.tech, "", nil)
	env.mustStatus(200, resp.StatusCode, "export")
	x, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := x.GetRows("Sheet1")
	if len(rows) != len(evil)+1 {
		t.Fatalf("%d rows", len(rows))
	}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		for _, cell := range r {
			if cell != "" && strings.ContainsAny(cell[:1], "=+-@\t\r") {
				t.Errorf("unescaped cell %q", cell)
			}
		}
		seen[r[4]] = true
		if f, _ := x.GetCellFormula("Sheet1", "E2"); f != "" {
			t.Errorf("a formula was written: %q", f)
		}
	}
	for _, name := range evil {
		name = strings.TrimSpace(name) // User.Normalize trims
		if name != "plain" && !seen["'"+name] {
			t.Errorf("name %q not exported as '%s", name, name)
		}
	}
	if st := env.doJSON("GET", "/api/v1/attendance?from=yesterday", env.tech, nil, nil); st != 422 {
		t.Fatalf("bad from: %d", st)
	}
}

// TestCloseEndsStreams: Close returns promptly with a feedback stream open.
func TestCloseEndsStreams(t *testing.T) {
	env := mustServer(t, func(_ *Config, d *Deps) { d.Feedback = newTestBus() })
	req, _ := http.NewRequest("GET", env.url+"/kiosk/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	if err := env.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// TestStatusAndMetrics checks /api/v1/status and /metrics.
func TestStatusAndMetrics(t *testing.T) {
	env := mustServer(t, nil)
	var st Status
	if code := env.doJSON("GET", "/api/v1/status", env.tech, nil, &st); code != 200 || st.DeviceID != "kiosk-test" {
		t.Fatalf("status: %d %+v", code, st)
	}
	resp, b := env.do("GET", "/metrics", env.tech, "", nil)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("kioskd_api_requests_total")) || !bytes.Contains(b, []byte("kioskd_api_logins_total")) {
		t.Fatalf("metrics: %d %.300s", resp.StatusCode, b)
	}
	for _, p := range []string{"/healthz", "/readyz", "/kiosk", "/technician", "/static/kiosk.js", "/api/v1/openapi.yaml"} {
		if resp, _ := env.do("GET", p, "", "", nil); resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := env.do("GET", "/static/../kiosk.go", "", "", nil); resp.StatusCode != 404 {
		t.Errorf("static traversal: %d", resp.StatusCode)
	}
}
