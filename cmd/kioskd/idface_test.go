package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kioskd/kioskd/device"
	"github.com/kioskd/kioskd/localapi"
	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// mustDoJSON sends in (nil: no body) as JSON with token and decodes the
// reply into out (nil: not decoded); it returns the status.
func mustDoJSON(tb testing.TB, method, url, token string, in, out any) int {
	tb.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// mustLiveKiosk runs kioskd replaying a real person's live clip at its own
// pace, in mode, with a technician account; it returns kioskd and the
// technician's token.
func mustLiveKiosk(t *testing.T, clip string, mode device.Mode) (*Main, string) {
	t.Helper()
	var out bytes.Buffer
	m := MustMain(t, &out)
	m.Config.Device.Source = recognizertest.Testdata(t, clip)
	m.Config.Device.Pace = true
	m.Config.Recognizer.Mode = string(mode)
	if err := m.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	hash, err := password.HashPassword("idface-tech-pass-42")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DB.PutAccount(context.Background(), &models.LocalAccount{Email: "tech@example.org", Role: models.AccountTechnician, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	return m, MustLogin(t, m.API.URL(), "tech@example.org", "idface-tech-pass-42")
}

// TestDaemon_CaptureSamples enrols a real person from the live camera (a
// paced replay of their clip) through the API: the capture takes several
// samples of distinct poses and the user ends with that many templates.
func TestDaemon_CaptureSamples(t *testing.T) {
	m, tok := mustLiveKiosk(t, "video/live/tvl-real.mp4", device.ModeFace)
	base := m.API.URL()
	var u models.User
	if st := mustDoJSON(t, "POST", base+"/api/v1/users", tok, localapi.UserInput{FullName: "Tvl Real", Email: "tvl@example.org", Role: models.RoleTrainee}, &u); st != 201 {
		t.Fatalf("create user: %d", st)
	}
	var fr localapi.FaceResponse
	if st := mustDoJSON(t, "POST", base+"/api/v1/users/"+u.ID+"/faces/capture?samples=4", tok, nil, &fr); st != 201 {
		t.Fatalf("capture: %d", st)
	}
	encs, err := m.DB.ListEncodings(context.Background(), u.ID)
	if err != nil || len(fr.Samples) < 2 || len(encs) != len(fr.Samples) {
		t.Fatalf("samples %d, templates %d (%v): want several, all enrolled", len(fr.Samples), len(encs), err)
	}
	for _, e := range fr.Samples {
		if e.Descriptor != (models.Descriptor{}) {
			t.Fatal("the API returned a descriptor")
		}
	}
	t.Logf("%d samples enrolled", len(encs))
}

// TestBrowserKioskIDFace: kioskd in mode id_face replays a real person's
// live clip; the kiosk screen in Chromium asks for the ID, the person's ID
// typed on its keypad is verified against their face and recorded once,
// and the screen says so.
func TestBrowserKioskIDFace(t *testing.T) {
	browser := mustKioskScreen(t)
	m, tok := mustLiveKiosk(t, "video/live/tvl-real.mp4", device.ModeIDFace)
	base := m.API.URL()
	var u models.User
	if st := mustDoJSON(t, "POST", base+"/api/v1/users", tok, localapi.UserInput{FullName: "Tvl Real", Email: "tvl@example.org", ExternalID: "31337", Role: models.RoleTrainee}, &u); st != 201 {
		t.Fatalf("create user: %d", st)
	}
	if st := mustDoJSON(t, "POST", base+"/api/v1/users/"+u.ID+"/faces/capture?samples=1", tok, nil, nil); st != 201 {
		t.Fatalf("capture: %d", st)
	}
	watchKioskScreen(t, browser, base)
	waitKioskText(t, browser, "Show your ID card or type your ID", 30*time.Second)
	var keys []chromedp.Action[chromedp.Void]
	for _, k := range strings.Split("31337", "") {
		keys = append(keys, chromedp.Click(chromedp.CSS(`#keypad [data-key="`+k+`"]`)))
	}
	keys = append(keys, chromedp.Click(chromedp.CSS("#id-ok")))
	if err := chromedp.Do(browser, keys...); err != nil {
		t.Fatalf("keypad: %v", err)
	}
	seen := waitKioskText(t, browser, "ID verified. Welcome, Tvl Real", 30*time.Second)
	t.Logf("kiosk screen showed: %q", seen)
	evs, _, err := m.DB.ListAttendance(context.Background(), models.AttendanceFilter{Unlimited: true})
	if err != nil || len(evs) != 1 || evs[0].UserID != u.ID {
		t.Fatalf("events = %d (%v), want one for the user", len(evs), err)
	}
}
