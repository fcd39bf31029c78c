package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kioskd/kioskd/localapi/localapitest"
	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
)

// mustKioskScreen starts headless Debian Chromium for the kiosk screen.
func mustKioskScreen(t *testing.T) context.Context {
	t.Helper()
	return localapitest.MustChromium(t, 3*time.Minute)
}

// watchKioskScreen opens the kiosk screen and records every text the
// feedback line shows, so a message that is replaced quickly is not missed.
func watchKioskScreen(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/kiosk"),
		chromedp.WaitVisible(chromedp.CSS("#feedback")),
	); err != nil {
		t.Fatalf("open kiosk screen: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const el = document.getElementById("feedback");
		window.seenFeedback = [el.textContent];
		new MutationObserver(() => window.seenFeedback.push(el.textContent)).observe(el, {childList: true, characterData: true, subtree: true});
		return true;
	})()`)); err != nil {
		t.Fatalf("watch feedback: %v", err)
	}
}

// waitKioskText waits until the feedback line has shown a text containing
// want, saves a screenshot under testdata/artifacts and returns every text seen.
func waitKioskText(t *testing.T, ctx context.Context, want string, timeout time.Duration) []string {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.seenFeedback.some(s => s.includes(`+"`"+want+"`"+`))`,
		chromedp.WithPollingTimeout(timeout)))
	seen, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.seenFeedback`))
	if shot, serr := chromedp.Run(ctx, chromedp.FullScreenshot(90)); serr == nil {
		dir := filepath.Join("testdata", "artifacts")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "kiosk-screen.jpg"), shot, 0o644)
	}
	if err != nil {
		t.Fatalf("kiosk screen never showed %q: %v; it showed %q", want, err, seen)
	}
	return seen
}

// TestTechnicianFirstRun: on a new kiosk the technician page, opened on the
// kiosk itself, offers to create the first admin instead of a login nobody
// can pass; the new admin lands logged in, and the offer is gone after.
func TestTechnicianFirstRun(t *testing.T) {
	var out bytes.Buffer
	m := MustMain(t, &out)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := mustKioskScreen(t)
	base := m.API.URL()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/technician"),
		chromedp.WaitVisible(chromedp.CSS("#setup-form")),
		chromedp.SendKeys(chromedp.CSS("#setup-email"), "first@example.org"),
		chromedp.SendKeys(chromedp.CSS("#setup-password"), "first-admin-pass-77"),
		chromedp.SendKeys(chromedp.CSS("#setup-password2"), "first-admin-pass-77"),
		chromedp.Click(chromedp.CSS("#setup-button")),
		chromedp.WaitVisible(chromedp.CSS("#app")),
	); err != nil {
		t.Fatalf("first run: %v", err)
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#who")))
	if err != nil || who != "first@example.org (admin)" {
		t.Fatalf("logged in as %q (%v)", who, err)
	}
	// A second visit (another browser, no token) gets the login form only.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.clear() || true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/technician"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
	); err != nil {
		t.Fatalf("second visit: %v", err)
	}
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("setup-section").hidden`))
	if err != nil || !hidden {
		t.Fatalf("setup still offered after the first admin exists (%v)", err)
	}
}

// pollText waits until the element's text contains want.
func pollText(id, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](`document.getElementById("`+id+`").textContent.includes(`+"`"+want+"`"+`)`,
			chromedp.WithPollingTimeout(15*time.Second))(ctx, t)
		if err != nil {
			return fmt.Errorf("#%s never showed %q: %w", id, want, err)
		}
		return nil
	})
}

// checkTechnicianPages logs an admin in to the running kiosk's technician
// page and checks that the status, attendance and accounts pages show it:
// the camera in state camera, sync online, name's acknowledged event.
func checkTechnicianPages(t *testing.T, ctx context.Context, m *Main, camera, name string) {
	t.Helper()
	hash, err := password.HashPassword("pages-admin-pass-42")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DB.PutAccount(context.Background(), &models.LocalAccount{Email: "pages@example.org", Role: models.AccountAdmin, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(m.API.URL()+"/technician#status"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#login-email"), "pages@example.org"),
		chromedp.SendKeys(chromedp.CSS("#login-password"), "pages-admin-pass-42"),
		chromedp.Click(chromedp.CSS("#login-button")),
		pollText("st-table", camera+" since"),
		pollText("st-table", "online"),
		pollText("st-table", "0 message(s) waiting"),
		pollText("st-events", name),
		pollText("st-events", "yes"), // acknowledged by central
		chromedp.Click(chromedp.CSS(`a[data-tab="attendance"]`)),
		pollText("att-table", name),
		chromedp.Click(chromedp.CSS(`a[data-tab="accounts"]`)),
		pollText("acc-table", "pages@example.org"),
	)
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#app")))
		t.Fatalf("technician pages: %v; the page shows %q", err, text)
	}
}
