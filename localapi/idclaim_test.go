package localapi

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kioskd/kioskd/models"
)

// storeClaimer stands in for the device pipeline's ClaimID: it resolves the
// ID through the real store and says the outcome on the bus, as the
// pipeline does, and keeps the claims it took.
type storeClaimer struct {
	db interface {
		GetUserByExternalID(ctx context.Context, xid string) (*models.User, error)
	}
	bus *testBus

	mu  sync.Mutex
	got []string
}

func (c *storeClaimer) ClaimID(ctx context.Context, xid string) (*models.User, error) {
	u, err := c.db.GetUserByExternalID(ctx, xid)
	if err != nil {
		c.bus.Publish(models.Feedback{Kind: models.FeedbackUnknownID, Message: "Unknown ID. Please see an administrator.", Time: time.Now()})
		return nil, models.Errorf(models.ENOTFOUND, "Unknown ID.")
	}
	c.mu.Lock()
	c.got = append(c.got, u.ID)
	c.mu.Unlock()
	c.bus.Publish(models.Feedback{Kind: models.FeedbackIDAccepted, Message: "ID " + xid + ": now look at the camera.", Time: time.Now()})
	return u, nil
}

func (c *storeClaimer) claims() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// claimXID is the external id of mustClaimServer's user: letters of both
// cases, digits and symbols, as central may give one.
const claimXID = "KE-26/b7#"

// mustClaimServer is a server whose keypad claims go to a storeClaimer,
// with one user of external id claimXID.
func mustClaimServer(t *testing.T) (*testEnv, *storeClaimer, *testBus, string) {
	bus := newTestBus()
	claimer := &storeClaimer{bus: bus}
	env := mustServer(t, func(_ *Config, d *Deps) {
		d.Feedback, d.IDClaims = bus, claimer
		claimer.db = d.Store
	})
	var u models.User
	if st := env.doJSON("POST", "/api/v1/users", env.tech, UserInput{FullName: "Ada Obi", Email: "ada@example.org", Role: models.RoleTrainee, ExternalID: claimXID}, &u); st != 201 {
		t.Fatalf("create user: %d", st)
	}
	return env, claimer, bus, u.ID
}

// TestKioskClaim: the keypad endpoint takes a known ID, refuses an unknown
// or malformed one with a clear code, and is rate-limited for the kiosk.
func TestKioskClaim(t *testing.T) {
	env, claimer, _, userID := mustClaimServer(t)
	var ok ClaimResponse
	env.mustStatus(200, env.doJSON("POST", "/kiosk/claim", "", ClaimRequest{ID: claimXID}, &ok), "known id")
	if ok.Result != "claimed" || claimer.claims()[0] != userID {
		t.Fatalf("claim = %+v, claims %v", ok, claimer.claims())
	}
	resp, b := env.do("POST", "/kiosk/claim", "", "application/json", jsonBody(ClaimRequest{ID: "99999"}))
	env.mustStatus(404, resp.StatusCode, "unknown id", b)
	resp, b = env.do("POST", "/kiosk/claim", "", "application/json", jsonBody(map[string]any{"id": "1", "name": "x"}))
	env.mustStatus(422, resp.StatusCode, "unknown field", b)
	// Burst used up (3 so far, 5 allowed): the next ones wait.
	env.doJSON("POST", "/kiosk/claim", "", ClaimRequest{ID: claimXID}, nil)
	env.doJSON("POST", "/kiosk/claim", "", ClaimRequest{ID: claimXID}, nil)
	resp, b = env.do("POST", "/kiosk/claim", "", "application/json", jsonBody(ClaimRequest{ID: claimXID}))
	if resp.StatusCode != 429 || errCode(b) != models.ETHROTTLED {
		t.Fatalf("sixth claim: %d %s, want 429 throttled", resp.StatusCode, b)
	}
	env.clock.Advance(claimEvery)
	env.mustStatus(200, env.doJSON("POST", "/kiosk/claim", "", ClaimRequest{ID: claimXID}, nil), "after the wait")

	// Without a camera the endpoint says so.
	off := mustServer(t, nil)
	resp, b = off.do("POST", "/kiosk/claim", "", "application/json", jsonBody(ClaimRequest{ID: claimXID}))
	if resp.StatusCode != 503 {
		t.Fatalf("no camera: %d %s", resp.StatusCode, b)
	}
}

// TestBrowserKioskKeypad: in Chromium, the kiosk screen asked for an ID
// opens its keypad; the ID typed on it is posted as a claim and the screen
// shows the prompt and then the result the pipeline publishes.
func TestBrowserKioskKeypad(t *testing.T) {
	env, claimer, bus, userID := mustClaimServer(t)
	ctx := mustBrowser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(env.url+"/kiosk"),
		waitText("#feedback", "Look at the camera"),
	); err != nil {
		t.Fatalf("kiosk screen: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); bus.Subscribers() == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	bus.Publish(models.Feedback{Kind: models.FeedbackNeedID, Message: "Show your ID card or type your ID.", Time: time.Now()})
	if err := chromedp.Do(ctx,
		waitText("#feedback", "Show your ID card or type your ID."),
		chromedp.WaitVisible(chromedp.CSS("#keypad")),
	); err != nil {
		t.Fatalf("need id: %v", err)
	}
	shot, _ := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	writeArtifact(t, "kiosk-need-id.jpg", shot)
	// A wrong key, deleted, then the ID: upper-case letters, a symbol of
	// the letters layer, digits, a lower-case letter (shift), and one of the
	// symbols layer.
	var keys []chromedp.Action[chromedp.Void]
	for _, k := range []string{"9", "back", "K", "E", "-", "2", "6", "/", "shift", "b", "shift", "7", "layer", "#", "layer"} {
		keys = append(keys, chromedp.Click(chromedp.CSS(`#keypad [data-key="`+k+`"]`)))
	}
	keys = append(keys, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := chromedp.Value(chromedp.CSS("#id-input"))(ctx, tg)
		if err != nil {
			return err
		}
		if v != claimXID {
			return fmt.Errorf("typed %q, want %q", v, claimXID)
		}
		return nil
	}))
	keys = append(keys, chromedp.Click(chromedp.CSS("#id-ok")), waitText("#feedback", "now look at the camera"))
	if err := chromedp.Do(ctx, keys...); err != nil {
		val, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#id-input")))
		t.Fatalf("keypad: %v (input %q)", err, val)
	}
	if got := claimer.claims(); len(got) != 1 || got[0] != userID {
		t.Fatalf("claims = %v, want [%s]", got, userID)
	}
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("keypad").hidden`)); err != nil || !hidden {
		t.Fatalf("keypad still open after the claim (%v)", err)
	}
	// The face did not match: the screen says so and offers the keypad again.
	bus.Publish(models.Feedback{Kind: models.FeedbackNotVerified, Message: "ID and face do not match.", Time: time.Now()})
	if err := chromedp.Do(ctx, waitText("#feedback", "ID and face do not match."), chromedp.WaitVisible(chromedp.CSS("#keypad"))); err != nil {
		t.Fatalf("not verified: %v", err)
	}
	// An unknown ID typed: refused on the screen, nothing claimed.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#keypad [data-key="5"]`)),
		chromedp.Click(chromedp.CSS("#id-ok")),
		waitText("#feedback", "Unknown ID"),
	); err != nil {
		t.Fatalf("unknown id: %v", err)
	}
	if got := claimer.claims(); len(got) != 1 {
		t.Fatalf("claims = %v after an unknown ID", got)
	}
	bus.Publish(models.Feedback{Kind: models.FeedbackVerified, Message: "ID verified. Welcome, Ada Obi - 08:02", Time: time.Now()})
	if err := chromedp.Do(ctx, waitText("#feedback", "ID verified. Welcome, Ada Obi")); err != nil {
		t.Fatalf("verified: %v", err)
	}
	shot, _ = chromedp.Run(ctx, chromedp.FullScreenshot(90))
	writeArtifact(t, "kiosk-id-verified.jpg", shot)
}

func writeArtifact(t *testing.T, name string, b []byte) {
	if len(b) > 0 {
		if err := os.WriteFile(artifact(t, name), b, 0o644); err != nil {
			t.Log(err)
		}
	}
}
