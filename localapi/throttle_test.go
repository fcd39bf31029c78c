package localapi

import (
	"testing"
	"time"
)

// TestThrottleKeys: pairs from different addresses are independent, an IPv6
// client counts by its /64, loopback has no address-wide key, delays double
// up to the maximum, and a quiet key is forgotten.
func TestThrottleKeys(t *testing.T) {
	clock := &testClock{t: time.Unix(1_800_000_000, 0)}
	cfg := DefaultConfig()
	th := newLoginThrottle(cfg, clock.Now)
	fail := func(email, addr string, n int) {
		for i := 0; i < n; i++ {
			th.fail(email, addr)
		}
	}
	fail("owner@x", "203.0.113.9", 40)
	if th.check("owner@x", "198.51.100.7") != nil || th.check("owner@x", "127.0.0.1") != nil {
		t.Fatal("a stranger's failures refused the owner from another address")
	}
	if th.check("owner@x", "203.0.113.9") == nil {
		t.Fatal("the stranger's own pair is not slowed")
	}
	if d := th.entries[throttleKey{"owner@x", "203.0.113.9"}].next.Sub(clock.Now()); d != cfg.LoginMaxDelay {
		t.Fatalf("delay after 40 failures %v, want the maximum %v", d, cfg.LoginMaxDelay)
	}
	fail("a@x", "2001:db8::1", cfg.LoginMaxFailures+1)
	if th.check("a@x", "2001:db8::ffff") == nil {
		t.Fatal("another address of the same IPv6 /64 is not the same client")
	}
	fail("b@x", "::1", 100)
	if _, ok := th.entries[throttleKey{"", ""}]; ok || th.check("c@x", "127.0.0.1") != nil {
		t.Fatal("loopback clients are pooled into one address")
	}
	clock.Advance(cfg.LoginWindow)
	th.sweep()
	if th.check("owner@x", "203.0.113.9") != nil || len(th.entries) != 0 {
		t.Fatalf("keys not forgotten after login_window: %d left", len(th.entries))
	}
}
