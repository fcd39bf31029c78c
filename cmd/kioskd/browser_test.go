package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kioskd/kioskd/localapi/localapitest"
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
