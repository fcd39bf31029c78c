package localapi

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
)

// TestLoginThrottle: past the free failures, a stranger guessing the admin's
// password from another address is slowed with doubling delays, while the
// admin (on loopback) still logs in; spraying many accounts from loopback
// slows no other loopback user; an admin's unlock clears the delay at once.
func TestLoginThrottle(t *testing.T) {
	env := mustServer(t, func(c *Config, _ *Deps) { c.Addr = "0.0.0.0:0" })
	stranger := *env
	stranger.url = "http://" + net.JoinHostPort(mustNonLoopbackIP(t), itoa(env.srv.listener.Addr().(*net.TCPAddr).Port))
	login := func(e *testEnv, email, pw string) (*http.Response, []byte) {
		return e.do("POST", "/api/v1/auth/login", "", "application/json", jsonBody(LoginRequest{Email: email, Password: pw}))
	}
	cfg := DefaultConfig()
	for i := 1; i <= cfg.LoginMaxFailures; i++ {
		if resp, b := login(&stranger, adminEmail, "wrong-password-123"); resp.StatusCode != 401 {
			t.Fatalf("stranger's bad login %d: %d %s", i, resp.StatusCode, b)
		}
	}
	// The stranger now waits 1 s, then 2 s: growing delays.
	for _, want := range []int{1, 2, 4} {
		login(&stranger, adminEmail, "wrong-password-123") // the failure that sets the delay
		resp, b := login(&stranger, adminEmail, adminPW)
		if resp.StatusCode != 429 || errCode(b) != "throttled" || resp.Header.Get("Retry-After") != itoa(want) {
			t.Fatalf("stranger's next attempt: %d %s, Retry-After %q; want 429 after %d s", resp.StatusCode, b, resp.Header.Get("Retry-After"), want)
		}
		env.clock.Advance(time.Duration(want) * time.Second)
	}
	// The owner, from elsewhere, is never refused.
	env.mustLogin(adminEmail, adminPW)

	// Spraying accounts from loopback (an SSH tunnel) slows only those pairs.
	for i := 0; i < 3*cfg.LoginMaxFailuresPerAddr; i++ {
		login(env, "spray"+itoa(i%30)+"@kiosk.test", "wrong-password-123")
	}
	env.mustLogin(techEmail, techPW)

	// A technician's own pair from loopback is slowed; an admin unlocks it.
	for i := 0; i <= cfg.LoginMaxFailures; i++ {
		login(env, techEmail, "wrong-password-123")
	}
	if resp, _ := login(env, techEmail, techPW); resp.StatusCode != 429 {
		t.Fatalf("tech after %d failures: %d, want 429", cfg.LoginMaxFailures+1, resp.StatusCode)
	}
	if st := env.doJSON("POST", "/api/v1/accounts/"+techEmail+"/unlock", env.tech, nil, nil); st != 403 {
		t.Fatalf("unlock by a technician: %d, want 403", st)
	}
	if st := env.doJSON("POST", "/api/v1/accounts/"+techEmail+"/unlock", env.admin, nil, nil); st != 204 {
		t.Fatalf("unlock: %d, want 204", st)
	}
	env.mustLogin(techEmail, techPW)
}

// mustNonLoopbackIP returns one of this machine's non-loopback IPv4
// addresses, to reach a server as a client that is not on loopback.
func mustNonLoopbackIP(tb testing.TB) string {
	tb.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		tb.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	tb.Fatal("this machine has no non-loopback IPv4 address")
	return ""
}

// mustCentralAccount adds an enabled central account with a Django pbkdf2
// hash (another cost class than the device's argon2id) and returns its email.
func mustCentralAccount(tb testing.TB, env *testEnv) string {
	tb.Helper()
	dj := "pbkdf2_sha256$1000000$2ptIbcIoGAytsS5aWzwGLX$u2j4ZtpmMuJRG9GS/FulBrwgtMGLtbePFIdsSklVJeE="
	if err := env.db.PutAccount(context.Background(), &models.LocalAccount{Email: "central@kiosk.test", Role: models.AccountTechnician, PasswordHash: dj, Source: models.SourceCentral, Version: 1}); err != nil {
		tb.Fatal(err)
	}
	env.srv.classMu.Lock()
	env.srv.classes = nil // the accounts changed under the server
	env.srv.classMu.Unlock()
	return "central@kiosk.test"
}

// TestFailedLoginPaysEveryCostClass: a failed login of a device account
// (argon2id), a central one (pbkdf2) and an unknown email each does the
// work of exactly one hash of every cost class in use, so its time does not
// tell which accounts exist (BenchmarkFailedLogin measures the times).
func TestFailedLoginPaysEveryCostClass(t *testing.T) {
	env := mustServer(t, func(c *Config, _ *Deps) { c.LoginMaxFailures, c.LoginMaxFailuresPerAddr = 1000, 1000 })
	central := mustCentralAccount(t, env)
	var mu sync.Mutex
	var paid []string
	pay := func(hash string) {
		mu.Lock()
		paid = append(paid, password.PasswordCostClass(hash))
		mu.Unlock()
	}
	env.srv.hash = hashWork{
		verify: func(h, pw string) (bool, error) { pay(h); return password.VerifyPassword(h, pw) },
		spend:  func(h, pw string) { pay(h); password.SpendPasswordWork(h, pw) },
	}
	var want []string
	for c := range env.srv.costClasses(context.Background()) {
		want = append(want, c)
	}
	slices.Sort(want)
	if len(want) != 2 {
		t.Fatalf("cost classes in use: %v, want the device's and pbkdf2's", want)
	}
	for what, email := range map[string]string{"device": techEmail, "central": central, "unknown": "nobody@kiosk.test"} {
		mu.Lock()
		paid = nil
		mu.Unlock()
		if st := env.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: email, Password: "wrong-password-123"}, nil); st != 401 {
			t.Fatalf("%s: login with a wrong password: %d, want 401", what, st)
		}
		mu.Lock()
		got := slices.Sorted(slices.Values(paid))
		mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("failed login, %s email: paid for %v, want one hash of each of %v", what, got, want)
		}
	}
	// A right password returns after its own hash.
	mu.Lock()
	paid = nil
	mu.Unlock()
	env.mustLogin(techEmail, techPW)
	if len(paid) != 1 {
		t.Errorf("a successful login paid for %v, want its own hash only", paid)
	}
}

// BenchmarkFailedLogin measures a failed login of each kind of email: the
// times should be alike (TestFailedLoginPaysEveryCostClass checks the work).
func BenchmarkFailedLogin(b *testing.B) {
	env := mustServer(b, func(c *Config, _ *Deps) { c.LoginMaxFailures, c.LoginMaxFailuresPerAddr = 1<<30, 1<<30 })
	emails := map[string]string{"device": techEmail, "central": mustCentralAccount(b, env), "unknown": "nobody@kiosk.test"}
	for _, what := range []string{"device", "central", "unknown"} {
		b.Run(what, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				env.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: emails[what], Password: "wrong-password-123"}, nil)
			}
		})
	}
}

func TestLogoutAndDisabledAccount(t *testing.T) {
	env := mustServer(t, nil)
	tok := env.mustLogin(techEmail, techPW)
	if st := env.doJSON("POST", "/api/v1/auth/logout", tok, nil, nil); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	if st := env.doJSON("GET", "/api/v1/me", tok, nil, nil); st != 401 {
		t.Fatalf("after logout: %d, want 401", st)
	}
	// An admin disables the technician: their live token stops working.
	yes := true
	if st := env.doJSON("PUT", "/api/v1/accounts/"+techEmail, env.admin, AccountInput{Disabled: &yes}, nil); st != 200 {
		t.Fatalf("disable: %d", st)
	}
	if st := env.doJSON("GET", "/api/v1/me", env.tech, nil, nil); st != 401 {
		t.Fatalf("disabled account's token: %d, want 401", st)
	}
	if st := env.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: techEmail, Password: techPW}, nil); st != 401 {
		t.Fatalf("disabled login: %d, want 401", st)
	}
}

func TestAccounts(t *testing.T) {
	env := mustServer(t, nil)
	var errResp ErrorResponse
	st := env.doJSON("POST", "/api/v1/accounts", env.admin, AccountInput{Email: "new@kiosk.test", Role: models.AccountTechnician, Password: "password123"}, &errResp)
	if st != 422 || errResp.Error.Code != "invalid" {
		t.Fatalf("common password: %d %+v", st, errResp)
	}
	t.Logf("message: %s", errResp.Error.Message)
	var a models.LocalAccount
	if st := env.doJSON("POST", "/api/v1/accounts", env.admin, AccountInput{Email: "New@Kiosk.test", Role: models.AccountTechnician, Password: "copper-lantern-58-meadow"}, &a); st != 201 {
		t.Fatalf("create: %d", st)
	}
	if a.Email != "new@kiosk.test" {
		t.Fatalf("email %q not normalised", a.Email)
	}
	tok := env.mustLogin("new@kiosk.test", "copper-lantern-58-meadow")
	if st := env.doJSON("PUT", "/api/v1/me/password", tok, PasswordChange{Current: "copper-lantern-58-meadow", New: "quiet-orchard-27-violin"}, nil); st != 204 {
		t.Fatalf("change password: %d", st)
	}
	env.mustLogin("new@kiosk.test", "quiet-orchard-27-violin")
	// Central pushes Django hashes; they log in.
	dj := "pbkdf2_sha256$1000000$2ptIbcIoGAytsS5aWzwGLX$u2j4ZtpmMuJRG9GS/FulBrwgtMGLtbePFIdsSklVJeE="
	if err := env.db.PutAccount(context.Background(), &models.LocalAccount{Email: "central@kiosk.test", Role: models.AccountTechnician, PasswordHash: dj, Source: models.SourceCentral, Version: 3}); err != nil {
		t.Fatal(err)
	}
	env.mustLogin("central@kiosk.test", "correct horse battery staple")
	if st := env.doJSON("DELETE", "/api/v1/accounts/"+adminEmail, env.admin, nil, nil); st != 422 {
		t.Fatalf("delete self: %d, want 422", st)
	}
	if st := env.doJSON("DELETE", "/api/v1/accounts/new@kiosk.test", env.admin, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	var list struct{ Items []models.LocalAccount }
	env.doJSON("GET", "/api/v1/accounts", env.admin, nil, &list)
	if len(list.Items) != 3 {
		t.Fatalf("accounts: %+v", list.Items)
	}
}
