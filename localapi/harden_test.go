package localapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
)

// restarted opens a second server on env's store, as kioskd after a restart
// (no in-memory state survives), and returns an env pointing at it.
func (e *testEnv) restarted() *testEnv {
	e.t.Helper()
	srv := NewServer(e.srv.cfg, e.srv.deps, nil)
	if err := srv.Open(); err != nil {
		e.t.Fatalf("reopen: %v", err)
	}
	e.t.Cleanup(func() { srv.Close() })
	r := *e
	r.srv, r.url = srv, srv.URL()
	return &r
}

// TestSessionsEnd: a logged-out token stays refused after a restart; a
// password change, an admin's reset and a deleted then re-created account
// each end the tokens issued before.
func TestSessionsEnd(t *testing.T) {
	env := mustServer(t, nil)
	out := env.mustLogin(techEmail, techPW)
	if st := env.doJSON("POST", "/api/v1/auth/logout", out, nil, nil); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	if st := env.restarted().doJSON("GET", "/api/v1/me", out, nil, nil); st != 401 {
		t.Fatalf("logged-out token after a restart: %d, want 401", st)
	}

	// Own password change: every earlier token ends.
	other := env.mustLogin(techEmail, techPW)
	const newPW = "saffron-meadow-44-lantern"
	if st := env.doJSON("PUT", "/api/v1/me/password", env.tech, PasswordChange{Current: techPW, New: newPW}, nil); st != 204 {
		t.Fatalf("change password: %d", st)
	}
	for _, tok := range []string{env.tech, other} {
		if st := env.doJSON("GET", "/api/v1/me", tok, nil, nil); st != 401 {
			t.Fatalf("token after a password change: %d, want 401", st)
		}
	}
	// An admin's reset.
	tok := env.mustLogin(techEmail, newPW)
	if st := env.doJSON("PUT", "/api/v1/accounts/"+techEmail, env.admin, AccountInput{Password: techPW}, nil); st != 200 {
		t.Fatalf("admin reset: %d", st)
	}
	if st := env.doJSON("GET", "/api/v1/me", tok, nil, nil); st != 401 {
		t.Fatalf("token after an admin's reset: %d, want 401", st)
	}
	// Deleted, then re-created with the same email (and password), as an admin.
	tok = env.mustLogin(techEmail, techPW)
	if st := env.doJSON("DELETE", "/api/v1/accounts/"+techEmail, env.admin, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st := env.doJSON("POST", "/api/v1/accounts", env.admin, AccountInput{Email: techEmail, Role: models.AccountAdmin, Password: techPW}, nil); st != 201 {
		t.Fatalf("re-create: %d", st)
	}
	if st := env.doJSON("GET", "/api/v1/accounts", tok, nil, nil); st != 401 {
		t.Fatalf("old token of a re-created account: %d, want 401", st)
	}
	env.mustLogin(techEmail, techPW)
}

// TestUnknownMethodsBounded: method names are a client's choice; unknown
// ones are refused and counted under one label, so /metrics stays small
// however many distinct names arrive (raw paths are never labels either).
func TestUnknownMethodsBounded(t *testing.T) {
	env := mustServer(t, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 300
	go func() {
		w := bufio.NewWriter(conn)
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "M%08dX%s /x/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", i, strings.Repeat("Q", 2000), i)
		}
		w.Flush()
	}()
	br := bufio.NewReader(conn)
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented {
			t.Fatalf("unknown method: %d, want 501", resp.StatusCode)
		}
	}
	for i := 0; i < 50; i++ {
		env.do("GET", fmt.Sprintf("/no/such/path/%d", i), "", "", nil)
	}
	_, body := env.do("GET", "/metrics", "", "", nil)
	if len(body) > 200<<10 || strings.Contains(string(body), "QQQQ") || strings.Contains(string(body), "/no/such/path/1") {
		t.Fatalf("/metrics is %d bytes and names a client's method or path", len(body))
	}
	if !strings.Contains(string(body), `kioskd_api_requests_total{method="other",route="unmatched",status="501"} 300`) {
		t.Fatal("unknown methods are not counted under method=\"other\"")
	}
}

// TestLoopbackTrustNeedsLocalHost: a DNS-rebinding page reaches loopback
// under its own name; with that Host the loopback views need a token, while
// the kiosk's own names are trusted.
func TestLoopbackTrustNeedsLocalHost(t *testing.T) {
	env := mustServer(t, func(c *Config, _ *Deps) { c.AllowedHosts = []string{"kiosk-7.local"} })
	get := func(path, host string) int {
		req, _ := http.NewRequest("GET", env.url+path, nil)
		req.Host = host
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := env.client.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, h := range []string{"rebind.attacker.example", "rebind.attacker.example:8080", "127.0.0.1.nip.io"} {
		for _, p := range []string{"/metrics", "/kiosk/events"} {
			if st := get(p, h); st != 401 {
				t.Fatalf("%s with Host %s: %d, want 401", p, h, st)
			}
		}
	}
	for _, h := range []string{"127.0.0.1:8080", "localhost", "[::1]:8080", "kiosk-7.local:8080", "LOCALHOST."} {
		if st := get("/metrics", h); st != 200 {
			t.Fatalf("/metrics with Host %s: %d, want 200", h, st)
		}
	}
}

// TestStreamsEndWithSession: with trust_loopback off, a preview and a
// feedback stream opened with a token end after a logout and after the
// account's deletion; streams past max_streams are refused.
func TestStreamsEndWithSession(t *testing.T) {
	env := mustServer(t, func(c *Config, d *Deps) {
		c.TrustLoopback = false
		c.StreamRecheck = 200 * time.Millisecond
		c.MaxStreams = 4
		d.Preview = staticPreview{photo(t, "people/obama/1.jpg")}
		d.Feedback = newTestBus()
	})
	open := func(path, tok string) *http.Response {
		req, _ := http.NewRequest("GET", env.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return resp
	}
	// ended reads the stream until it ends (nil) or 10 s pass.
	ended := func(resp *http.Response) error {
		done := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			resp.Body.Close()
			return fmt.Errorf("still streaming 10 s later")
		}
	}
	for _, path := range []string{"/kiosk/preview.mjpeg", "/kiosk/events"} {
		tok := env.mustLogin(techEmail, techPW)
		resp := open(path, tok)
		env.doJSON("POST", "/api/v1/auth/logout", tok, nil, nil)
		if err := ended(resp); err != nil {
			t.Fatalf("%s after logout: %v", path, err)
		}
	}
	// Deleting the account ends the preview it opened.
	tok := env.mustLogin(techEmail, techPW)
	resp := open("/kiosk/preview.mjpeg", tok)
	if st := env.doJSON("DELETE", "/api/v1/accounts/"+techEmail, env.admin, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if err := ended(resp); err != nil {
		t.Fatalf("preview after the account's deletion: %v", err)
	}
	// The cap: four streams open, the fifth is refused.
	var open4 []*http.Response
	for i := 0; i < 4; i++ {
		open4 = append(open4, open("/kiosk/events", env.admin))
	}
	req, _ := http.NewRequest("GET", env.url+"/kiosk/events", nil)
	req.Header.Set("Authorization", "Bearer "+env.admin)
	r5, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r5.Body.Close()
	if r5.StatusCode != 503 || r5.Header.Get("Retry-After") == "" {
		t.Fatalf("stream past max_streams: %d, want 503 with Retry-After", r5.StatusCode)
	}
	for _, r := range open4 {
		r.Body.Close()
	}
}

// TestBadTextRefused: passwords of only spaces or NULs, and names with NUL,
// ESC or a right-to-left override, are refused by the API before anything
// is stored (the store refuses such names too, so central's pushes do).
func TestBadTextRefused(t *testing.T) {
	env := mustServer(t, nil)
	for _, pw := range []string{strings.Repeat(" ", 10), strings.Repeat("\x00", 10)} {
		var r ErrorResponse
		if st := env.doJSON("POST", "/api/v1/accounts", env.admin, AccountInput{Email: "x@kiosk.test", Role: models.AccountTechnician, Password: pw}, &r); st != 422 {
			t.Fatalf("password %q: %d, want 422", pw, st)
		}
	}
	for _, name := range []string{"Ada\x00Lovelace", "Ada \x1b[31mLovelace", "Ada \u202egpj.exe"} {
		var r ErrorResponse
		st := env.doJSON("POST", "/api/v1/users", env.tech, UserInput{FullName: name, Email: "ada@kiosk.test", Role: models.RoleTrainee}, &r)
		if st != 422 || r.Error.Details["field"] != "full_name" {
			t.Fatalf("name %q: %d %+v, want 422 on full_name", name, st, r)
		}
	}
	u := models.User{Email: "ada@kiosk.test", FullName: "Ada \u202egpj.exe", Role: models.RoleTrainee}
	u.Normalize()
	if err := env.db.CreateUser(context.Background(), &u); models.ErrorCode(err) != models.EINVALID {
		t.Fatalf("store: %v, want EINVALID", err)
	}
	var list Page[models.User]
	env.doJSON("GET", "/api/v1/users", env.tech, nil, &list)
	if list.Total != 0 {
		t.Fatalf("%d users stored", list.Total)
	}
}

// TestSlowBodiesCut: a login or upload body that stops arriving is cut off
// after body_idle_timeout with an answer, so slow clients cannot hold
// connections; a header that never ends is bounded by ReadHeaderTimeout.
func TestSlowBodiesCut(t *testing.T) {
	env := mustServer(t, func(c *Config, _ *Deps) { c.BodyIdleTimeout = 500 * time.Millisecond })
	for _, req := range []string{
		"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
		"POST /api/v1/import HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + env.tech +
			"\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n\r\n--XX\r\nContent-Disposition: form-data; name=\"sheet\"; filename=\"s.xlsx\"\r\n\r\nPK",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(env.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		io.WriteString(conn, req)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%.30q: no answer to a stalled body: %v", req, err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != 422 || time.Since(start) > 5*time.Second {
			t.Fatalf("%.30q: %d after %v, want 422 within seconds", req, resp.StatusCode, time.Since(start))
		}
	}
}
