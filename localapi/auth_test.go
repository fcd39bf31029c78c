package localapi

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
)

// TestLoginThrottle: the account locks within 5 bad logins (even the right
// password is then refused), unknown emails lock too, and the address locks
// after LoginMaxFailuresPerAddr whatever the emails.
func TestLoginThrottle(t *testing.T) {
	env := mustServer(t, nil)
	for i := 1; i <= 5; i++ {
		var r ErrorResponse
		st := env.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: techEmail, Password: "wrong-password-123"}, &r)
		if st != 401 {
			t.Fatalf("bad login %d: status %d", i, st)
		}
	}
	resp, b := env.do("POST", "/api/v1/auth/login", "", "application/json",
		jsonBody(LoginRequest{Email: techEmail, Password: techPW}))
	if resp.StatusCode != 429 || errCode(b) != "throttled" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("6th login (right password): status %d %s, Retry-After %q; want 429", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	// Other accounts from this address still work (address limit is 20).
	env.mustLogin(adminEmail, adminPW)
	// The lock expires.
	env.clock.Advance(DefaultConfig().LoginLockout + time.Second)
	env.mustLogin(techEmail, techPW)

	// Unknown emails lock the same way (an attacker learns nothing).
	for i := 0; i < 5; i++ {
		env.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: "nobody@kiosk.test", Password: "wrong-password-123"}, nil)
	}
	if st := env.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: "nobody@kiosk.test", Password: "x"}, nil); st != 429 {
		t.Fatalf("unknown email after 5 failures: %d, want 429", st)
	}

	// Per address: 20 failures across many emails lock the address.
	env.clock.Advance(DefaultConfig().LoginWindow + time.Second)
	for i := 0; i < 20; i++ {
		env.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: "spray" + itoa(i) + "@kiosk.test", Password: "wrong-password-123"}, nil)
	}
	if st := env.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: adminEmail, Password: adminPW}, nil); st != 429 {
		t.Fatalf("admin login from a locked address: %d, want 429", st)
	}
}

// TestLoginUnknownEmailTakesAsLong: an unknown email runs a password hash
// too, so its time is of the same order as a known one's (not a timing
// benchmark: a missing hash would make it ~100x faster).
func TestLoginUnknownEmailTakesAsLong(t *testing.T) {
	env := mustServer(t, func(c *Config, _ *Deps) { c.LoginMaxFailures, c.LoginMaxFailuresPerAddr = 1000, 1000 })
	median := func(email string) time.Duration {
		var ds []time.Duration
		for i := 0; i < 7; i++ {
			start := time.Now()
			env.doJSON("POST", "/api/v1/auth/login", "", LoginRequest{Email: email, Password: "wrong-password-123"}, nil)
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	known, unknown := median(techEmail), median("nobody@kiosk.test")
	t.Logf("median bad login: known %v, unknown %v", known, unknown)
	if unknown < known/3 {
		t.Fatalf("unknown email answered in %v, known in %v: the dummy hash is not verified", unknown, known)
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
