// Package localapitest starts the real browser the page tests drive.
package localapitest

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's chromium, installed by `make deps`.
const ChromiumPath = "/usr/bin/chromium"

// MustChromium starts headless Chromium with a fresh profile and a 7-inch
// kiosk display's window, and returns a context for chromedp actions that
// ends after timeout. Background networking is off: the machine has no
// network and Chromium would otherwise retry Google's hosts.
func MustChromium(tb testing.TB, timeout time.Duration) context.Context {
	tb.Helper()
	if _, err := exec.LookPath(ChromiumPath); err != nil {
		tb.Fatalf("%s not installed: run `make deps`", ChromiumPath)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(ChromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1024, 600),
	)
	tb.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	tb.Cleanup(cancel2)
	// The first call starts the browser and must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	ctx, cancel3 := context.WithTimeout(ctx, timeout)
	tb.Cleanup(cancel3)
	return ctx
}
