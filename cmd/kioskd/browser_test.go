package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// mustKioskScreen starts headless Debian Chromium (fresh profile, no
// background networking: the machine has no network) and returns its context.
func mustKioskScreen(t *testing.T) context.Context {
	t.Helper()
	const chromium = "/usr/bin/chromium"
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("%s not installed: run `make deps`", chromium)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 600), // a 7-inch kiosk display
	)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // starts the browser; no timeout on this call
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return ctx
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
