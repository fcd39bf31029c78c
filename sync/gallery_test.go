package sync_test

import (
	"context"
	"testing"
	"time"

	"github.com/kioskd/kioskd/recognizer/recognizertest"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

// The idols gallery pushed by the registry ends up, exactly, in the store and
// the matcher: 552 users and 1,286 encodings, and each pushed descriptor is
// identified as its own person.
func TestPushIdolsGallery(t *testing.T) {
	recs, err := registrysim.LoadIdols(recognizertest.Testdata(t, "gallery/idols.json"))
	if err != nil {
		t.Fatal(err)
	}
	encs, withFaces := 0, 0
	for _, r := range recs {
		encs += len(r.Encodings)
		if len(r.Encodings) > 0 {
			withFaces++
		}
	}
	if len(recs) != 552 || encs != 1286 {
		t.Fatalf("gallery holds %d people and %d descriptors, want 552 and 1286", len(recs), encs)
	}
	b := synctest.MustMosquitto(t)
	for _, dtype := range []string{"json", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			reg := mustRegistry(t, b.URL, func(c *registrysim.Config) {
				c.Dtype = dtype
				c.ClientID = "central-" + dtype
				c.Site = testSite + dtype
			})
			cfg := testConfig(b.URL, "kiosk-"+dtype)
			cfg.SiteID = testSite + dtype
			k := mustKiosk(t, cfg, nil)
			waitConnected(t, k)
			ctx := context.Background()
			if err := reg.Push(ctx, recs, 50); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 60*time.Second, "1286 encodings in the matcher", func() bool { return k.matcher.Len() == 1286 })
			waitFor(t, 10*time.Second, "site sequence caught up", func() bool { return k.client.Status().SiteSeq == reg.Seq() })
			if n, _ := k.db.CountUsers(ctx); n != 552 {
				t.Fatalf("store holds %d users, want 552", n)
			}
			if n, _ := k.db.CountEncodings(ctx); n != 1286 {
				t.Fatalf("store holds %d encodings, want 1286", n)
			}
			// Only people with descriptors can be in the matcher.
			if got := k.matcher.Users(); got != withFaces {
				t.Fatalf("matcher holds %d users, want the %d with descriptors", got, withFaces)
			}
			for _, r := range recs[:50] {
				for _, e := range r.Encodings {
					m := k.matcher.Identify(&e.Descriptor)
					if m.BestUserID != r.User.ID || m.Distance > 1e-6 {
						t.Fatalf("descriptor of %s identified as %s at %.4f", r.User.ID, m.BestUserID, m.Distance)
					}
				}
			}
			if d := diffStates(storeState(t, k.db), registryState(reg)); d != "[]" {
				t.Fatalf("store differs from the registry: %s", d)
			}
		})
	}
}
