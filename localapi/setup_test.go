package localapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestSetup_FirstAdmin: while no account exists a browser on the kiosk
// creates the first admin and is logged in; from elsewhere, through a local
// proxy, from another origin, or once an account exists, it is refused.
func TestSetup_FirstAdmin(t *testing.T) {
	env := mustServer(t, nil)
	var st SetupState
	if code := env.doJSON("GET", "/api/v1/setup", "", nil, &st); code != 200 || st.Needed || st.Allowed {
		t.Fatalf("with accounts: %d %+v, want not needed", code, st)
	}
	body := SetupRequest{Email: "first@example.org", Password: "first-admin-pass-77"}
	if code := env.doJSON("POST", "/api/v1/setup", "", body, nil); code != http.StatusConflict {
		t.Fatalf("setup with accounts: %d, want 409", code)
	}
	ctx := context.Background()
	for _, e := range []string{adminEmail, techEmail} {
		if err := env.db.DeleteAccount(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if code := env.doJSON("GET", "/api/v1/setup", "", nil, &st); code != 200 || !st.Needed || !st.Allowed {
		t.Fatalf("without accounts: %d %+v, want needed and allowed", code, st)
	}

	// Not from the kiosk itself: refused before anything is written.
	post := func(mod func(r *http.Request)) int {
		r := httptest.NewRequest("POST", "/api/v1/setup", bytes.NewReader([]byte(`{"email":"x@example.org","password":"first-admin-pass-77"}`)))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = "127.0.0.1:5555"
		mod(r)
		w := httptest.NewRecorder()
		env.srv.Handler().ServeHTTP(w, r)
		return w.Code
	}
	for name, mod := range map[string]func(*http.Request){
		"remote":       func(r *http.Request) { r.RemoteAddr = "192.0.2.7:5555" },
		"proxied":      func(r *http.Request) { r.Header.Set("X-Forwarded-For", "192.0.2.7") },
		"other origin": func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") },
	} {
		if code := post(mod); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	if as, _ := env.db.ListAccounts(ctx); len(as) != 0 {
		t.Fatalf("refused setups wrote %d accounts", len(as))
	}
	if code := env.doJSON("POST", "/api/v1/setup", "", SetupRequest{Email: "first@example.org", Password: "short"}, nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("weak password: %d, want 422", code)
	}

	var out LoginResponse
	if code := env.doJSON("POST", "/api/v1/setup", "", body, &out); code != http.StatusCreated || out.Token == "" || out.Account.Role != "admin" {
		t.Fatalf("setup: %d %+v", code, out)
	}
	if code := env.doJSON("GET", "/api/v1/accounts", out.Token, nil, nil); code != 200 {
		t.Fatalf("the first admin's token: %d", code)
	}
	if code := env.doJSON("POST", "/api/v1/setup", "", SetupRequest{Email: "second@example.org", Password: "second-admin-pass-77"}, nil); code != http.StatusConflict {
		t.Fatalf("second setup: %d, want 409", code)
	}
	if code := env.doJSON("GET", "/api/v1/setup", "", nil, &st); code != 200 || st.Needed {
		t.Fatalf("after setup: %d %+v", code, st)
	}
}
