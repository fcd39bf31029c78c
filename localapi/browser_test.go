package localapi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kioskd/kioskd/localapi/localapitest"
	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// mustBrowser starts headless Chromium with a fresh profile.
func mustBrowser(t *testing.T) context.Context {
	t.Helper()
	return localapitest.MustChromium(t, 2*time.Minute)
}

// artifact returns a path under testdata/artifacts (gitignored) for a
// screenshot.
func artifact(t *testing.T, name string) string {
	dir := filepath.Join("testdata", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// staticPreview serves one real JPEG as the camera's latest frame.
type staticPreview struct{ jpeg []byte }

func (p staticPreview) LatestJPEG() ([]byte, uint64) { return p.jpeg, 1 }

// TestBrowserKioskScreen opens the kiosk screen in Chromium and sees the
// feedback text follow what is published on the feedback bus. The bus here
// is testBus publishing real models.Feedback values through FeedbackSource
// (the device pipeline's bus has the same interface).
func TestBrowserKioskScreen(t *testing.T) {
	bus := newTestBus()
	env := mustServer(t, func(_ *Config, d *Deps) {
		d.Feedback = bus
		d.Preview = staticPreview{photo(t, "people/obama/1.jpg")}
	})
	ctx := mustBrowser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(env.url+"/kiosk"),
		chromedp.WaitVisible(chromedp.CSS("#feedback")),
		waitText("#feedback", "Look at the camera"),
	); err != nil {
		t.Fatalf("kiosk screen: %v", err)
	}
	// Wait until the page's EventSource is subscribed, then publish.
	deadline := time.Now().Add(10 * time.Second)
	for bus.Subscribers() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	steps := []models.Feedback{
		{Kind: models.FeedbackOnePerson, Message: "One person at a time"},
		{Kind: models.FeedbackMoveCloser, Message: "Move closer"},
		{Kind: models.FeedbackRecognised, Message: "Welcome, Ada - 08:02", UserID: "u1", Name: "Ada"},
	}
	for i, fb := range steps {
		fb.Time = time.Now()
		bus.Publish(fb)
		if err := chromedp.Do(ctx, waitText("#feedback", fb.Message)); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#feedback")))
			t.Fatalf("step %d (%s): %v (text %q)", i, fb.Kind, err, text)
		}
	}
	// The MJPEG preview shows a frame and the offline notice is hidden.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("preview").naturalWidth > 0 && getComputedStyle(document.getElementById("nocam")).display === "none"`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("preview").src + " w=" + document.getElementById("preview").naturalWidth + " nocam.hidden=" + document.getElementById("nocam").hidden`))
		t.Fatalf("preview not shown: %v (%s)", err, st)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(artifact(t, "kiosk-welcome.png"), shot, 0o644)
	bus.Publish(models.Feedback{Kind: models.FeedbackCameraLost, Message: "Camera offline", Time: time.Now()})
	if err := chromedp.Do(ctx, waitText("#feedback", "Camera offline")); err != nil {
		t.Fatal(err)
	}
	if shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(artifact(t, "kiosk-camera-offline.png"), shot, 0o644)
}

// TestBrowserTechnicianEnrol logs in on the technician page, creates a user,
// enrols them from a real photo and tries identify with another photo.
func TestBrowserTechnicianEnrol(t *testing.T) {
	env := mustServer(t, func(_ *Config, d *Deps) { d.Preview = staticPreview{photo(t, "people/biden/2.jpg")} })
	ctx := mustBrowser(t)
	err := chromedp.Do(ctx, append(technicianNewUser(env, "Joe Biden", "joe@example.com"),
		chromedp.SetUploadFiles(chromedp.CSS("#enrol-file"), []string{recognizertest.Testdata(t, "people/biden/1.jpg")}),
		chromedp.Click(chromedp.CSS("#enrol-upload")),
		waitText("#enrol-msg", "Enrolled Joe Biden."),
		chromedp.WaitVisible(chromedp.CSS("#faces li")),
		chromedp.Sleep(500*time.Millisecond), // let the preview frame paint
	)...)
	if err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#enrol-msg")))
		t.Fatalf("enrol on the technician page: %v (message %q)", err, msg)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(artifact(t, "technician-enrolled.png"), shot, 0o644)
	err = chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.CSS("#identify-file"), []string{recognizertest.Testdata(t, "people/biden/2.jpg")}),
		chromedp.Click(chromedp.CSS("#identify-form button")),
		waitText("#identify-msg", "Match: Joe Biden"),
	)
	msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#identify-msg")))
	if err != nil {
		t.Fatalf("identify: %v (%q)", err, msg)
	}
	if shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(artifact(t, "technician-identify.png"), shot, 0o644)
	t.Logf("identify says %q", msg)
	u, err := env.db.GetUserByEmail(context.Background(), "joe@example.com")
	if err != nil {
		t.Fatal(err)
	}
	encs, _ := env.db.ListEncodings(context.Background(), u.ID)
	if len(encs) != 1 {
		t.Fatalf("%d encodings stored", len(encs))
	}
}

// technicianLogin opens the technician page and logs in as the technician.
func technicianLogin(env *testEnv) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(env.url + "/technician"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-email"), techEmail),
		chromedp.SendKeys(chromedp.CSS("#login-password"), techPW),
		chromedp.Click(chromedp.CSS("#login-button")),
		chromedp.WaitVisible(chromedp.CSS("#app")),
	}
}

// technicianNewUser logs in on the technician page as the technician and
// creates a user, ending on that user's enrol section.
func technicianNewUser(env *testEnv, name, email string) []chromedp.Action[chromedp.Void] {
	return append(technicianLogin(env),
		chromedp.Click(chromedp.CSS("details summary")),
		chromedp.SendKeys(chromedp.CSS("#nu-name"), name),
		chromedp.SendKeys(chromedp.CSS("#nu-email"), email),
		chromedp.Click(chromedp.CSS("#nu-create")),
		chromedp.WaitVisible(chromedp.CSS("#enrol-section")),
	)
}

// waitText polls until the element's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			got, err := chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)(ctx, t)
			if err != nil {
				return err
			}
			if strings.Contains(got, want) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %q in %s (last %q): %w", want, sel, got, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}
