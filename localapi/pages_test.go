package localapi

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	"github.com/kioskd/kioskd/device"
	"github.com/kioskd/kioskd/models"
)

// mustAttendance records one event per person at at, in the real store.
func mustAttendance(t *testing.T, env *testEnv, at time.Time, people ...*models.User) {
	t.Helper()
	for _, u := range people {
		if err := env.db.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		ev := &models.AttendanceEvent{UserID: u.ID, Time: at.UTC(), KioskID: "kiosk-test", Distance: 0.41, Liveness: "blink"}
		if err := env.db.RecordAttendance(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttendanceRows: the technician's attendance list names each person
// and filters by class group; the export takes the same filter.
func TestAttendanceRows(t *testing.T) {
	env := mustServer(t, nil)
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	mustAttendance(t, env, day.Add(8*time.Hour),
		&models.User{FullName: "Ada Lovelace", Email: "ada@example.org", Role: models.RoleTrainee, ClassGroup: "CS-1"},
		&models.User{FullName: "Alan Turing", Email: "alan@example.org", Role: models.RoleTrainee, ClassGroup: "CS-2"})
	mustAttendance(t, env, day.Add(-time.Hour), &models.User{FullName: "Grace Hopper", Email: "grace@example.org", Role: models.RoleTrainee, ClassGroup: "CS-1"})
	q := "from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z"
	var page Page[AttendanceRow]
	if st := env.doJSON("GET", "/api/v1/attendance/rows?"+q, env.tech, nil, &page); st != 200 || page.Total != 2 {
		t.Fatalf("day: %d, %d rows", st, page.Total)
	}
	if st := env.doJSON("GET", "/api/v1/attendance/rows?class_group=cs-1&"+q, env.tech, nil, &page); st != 200 || page.Total != 1 ||
		page.Items[0].Name != "Ada Lovelace" || page.Items[0].ClassGroup != "CS-1" || page.Items[0].UserID == "" {
		t.Fatalf("class group: %d %+v", st, page)
	}
	if st := env.doJSON("GET", "/api/v1/attendance/rows?limit=1&offset=1&"+q, env.tech, nil, &page); st != 200 || page.Total != 2 || len(page.Items) != 1 {
		t.Fatalf("paging: %d %+v", st, page)
	}
	if st := env.doJSON("GET", "/api/v1/attendance/rows", env.tech, nil, nil); st != 422 {
		t.Fatalf("without a period: %d, want 422", st)
	}
	if st := env.doJSON("GET", "/api/v1/attendance/rows?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", env.tech, nil, nil); st != 422 {
		t.Fatalf("two months: %d, want 422", st)
	}
	resp, body := env.do("GET", "/api/v1/attendance/export.xlsx?class_group=CS-2&"+q, env.tech, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d", resp.StatusCode)
	}
	rows := mustSheetRows(t, body)
	if len(rows) != 2 || rows[1][4] != "Alan Turing" {
		t.Fatalf("export of CS-2: %v", rows)
	}
}

// TestBrowserTechnicianPages logs an admin in with Chromium and opens the
// attendance, status and accounts pages over a real store.
func TestBrowserTechnicianPages(t *testing.T) {
	now := time.Now()
	env := mustServer(t, func(_ *Config, d *Deps) {
		d.Camera = StatusFunc(func() any {
			return device.CameraStatus{State: device.CameraRunning, Source: "/dev/video0", Since: now.Add(-time.Hour), LastFrameAt: now, Frames: 1200, Processed: 900, Encodings: 12, Events: 1}
		})
	})
	mustAttendance(t, env, now, &models.User{FullName: "Ada Lovelace", Email: "ada@example.org", Role: models.RoleTrainee, ClassGroup: "CS-1"})
	ctx := mustBrowser(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.url+"/technician#attendance"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-email"), adminEmail),
		chromedp.SendKeys(chromedp.CSS("#login-password"), adminPW),
		chromedp.Click(chromedp.CSS("#login-button")),
		waitText("#att-table tbody", "Ada Lovelace"),
		waitText("#att-msg", "1 event(s)"),
		chromedp.SetValue(chromedp.CSS("#att-class"), "CS-9"),
		chromedp.Click(chromedp.CSS("#att-show")),
		waitText("#att-msg", "0 event(s)"),
	)
	if err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#att-msg")))
		t.Fatalf("attendance page: %v (message %q)", err, msg)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[data-tab="status"]`)),
		waitText("#st-table", "running"),
		waitText("#st-table", "1 message(s) waiting"),
		waitText("#st-events", "Ada Lovelace"),
	)
	if err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#page-status")))
		t.Fatalf("status page: %v (%q)", err, st)
	}
	shot, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	os.WriteFile(artifact(t, "technician-status.png"), shot, 0o644)
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[data-tab="accounts"]`)),
		waitText("#acc-table", techEmail),
		chromedp.Click(chromedp.CSS("#page-accounts details summary")),
		chromedp.SendKeys(chromedp.CSS("#acc-email"), "new-tech@example.org"),
		chromedp.SendKeys(chromedp.CSS("#acc-password"), "a-long-new-pass-phrase-42"),
		chromedp.Click(chromedp.CSS("#acc-create")),
		waitText("#acc-msg", "Created new-tech@example.org."),
		chromedp.Click(chromedp.CSS(`button[data-email="new-tech@example.org"]:nth-of-type(2)`)),
		waitText("#acc-msg", "new-tech@example.org disabled."),
		chromedp.Click(chromedp.CSS(`button[data-email="new-tech@example.org"]:nth-of-type(1)`)),
		waitText("#acc-msg", "new-tech@example.org is now admin."),
		chromedp.Click(chromedp.CSS(`button[data-email="new-tech@example.org"]:nth-of-type(4)`)),
		waitText("#acc-msg", "new-tech@example.org can log in again at once."),
	)
	if err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#page-accounts")))
		t.Fatalf("accounts page: %v (%q)", err, msg)
	}
	a, err := env.db.GetAccount(context.Background(), "new-tech@example.org")
	if err != nil || a.Role != models.AccountAdmin || !a.Disabled {
		t.Fatalf("account after create, disable and make admin: %+v, %v", a, err)
	}
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#acc-table")))
	if !strings.Contains(text, "disabled") {
		t.Fatalf("accounts table does not show the disabled account: %q", text)
	}
}

// mustSheetRows reads the first sheet of an .xlsx body.
func mustSheetRows(t *testing.T, body []byte) [][]string {
	t.Helper()
	x, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
