package localapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// The abuse campaign: the requests of the hardening review and their kin,
// sent to a running kioskd, which must keep answering with bounded memory.
// `make abuse` runs it in full against the kioskd binary (KIOSK_ABUSE_URL,
// KIOSK_ABUSE_PID, KIOSK_ABUSE_EMAIL, KIOSK_ABUSE_PASSWORD; scripts/abuse.sh
// sets them) and asserts the process's peak RSS; without them a short
// version runs against an in-process server, as part of the normal suite.

// abuseTarget is the kioskd under attack.
type abuseTarget struct {
	t     *testing.T
	url   string
	host  string // host:port
	pid   int    // 0: in process (RSS not asserted)
	email string // the admin's, and their token
	token string
	full  bool
}

// n scales a count to the campaign's size.
func (a *abuseTarget) n(full, short int) int {
	if a.full {
		return full
	}
	return short
}

// maxAbuseRSS is the peak RSS the full campaign must stay under, with the
// default configuration.
const maxAbuseRSS = 600 << 20

func TestAbuse(t *testing.T) {
	a := &abuseTarget{t: t, url: os.Getenv("KIOSK_ABUSE_URL")}
	if a.url != "" {
		a.full = true
		a.pid, _ = strconv.Atoi(os.Getenv("KIOSK_ABUSE_PID"))
		a.email = os.Getenv("KIOSK_ABUSE_EMAIL")
		a.token = mustLoginURL(t, a.url, a.email, os.Getenv("KIOSK_ABUSE_PASSWORD"))
	} else {
		env := mustServer(t, func(c *Config, _ *Deps) { c.BodyIdleTimeout = time.Second })
		a.url, a.email, a.token = env.url, adminEmail, env.admin
	}
	a.host = strings.TrimPrefix(a.url, "http://")
	peak := a.rssSampler()
	phases := []struct {
		name string
		run  func()
	}{
		{"methods", a.methods},
		{"paths", a.paths},
		{"headers", a.headers},
		{"bodies", a.bodies},
		{"slow bodies", a.slowBodies},
		{"streams", a.streams},
		{"logins", a.logins},
		{"sheet bombs", a.sheetBombs},
		{"image bombs", a.imageBombs},
	}
	for _, p := range phases {
		start := time.Now()
		p.run()
		a.mustAnswer(p.name)
		t.Logf("abuse %-12s %8v  rss %4d MB  peak %4d MB", p.name, time.Since(start).Round(time.Millisecond), a.rss("VmRSS")>>20, peak()>>20)
	}
	if a.pid != 0 {
		hwm := a.rss("VmHWM")
		t.Logf("abuse: peak RSS (VmHWM) %d MB, limit %d MB", hwm>>20, maxAbuseRSS>>20)
		if hwm > maxAbuseRSS {
			t.Fatalf("kioskd peaked at %d MB RSS, over %d MB", hwm>>20, maxAbuseRSS>>20)
		}
	}
}

func mustLoginURL(tb testing.TB, url, email, pw string) string {
	tb.Helper()
	resp, err := http.Post(url+"/api/v1/auth/login", "application/json", jsonBody(LoginRequest{Email: email, Password: pw}))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var r LoginResponse
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil {
		tb.Fatalf("login %s: %d %s", email, resp.StatusCode, b)
	}
	return r.Token
}

// rss reads a /proc/<pid>/status field (VmRSS, VmHWM) in bytes; 0 in
// process.
func (a *abuseTarget) rss(field string) int64 {
	if a.pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.pid))
	if err != nil {
		a.t.Fatalf("kioskd (pid %d) is gone: %v", a.pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rssSampler samples VmRSS every 50 ms until the test ends and returns the
// highest seen so far.
func (a *abuseTarget) rssSampler() func() int64 {
	var mu sync.Mutex
	var peak int64
	done := make(chan struct{})
	a.t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if a.pid == 0 {
				continue
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.pid))
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					mu.Lock()
					peak = max(peak, kb<<10)
					mu.Unlock()
				}
			}
		}
	}()
	return func() int64 { mu.Lock(); defer mu.Unlock(); return peak }
}

// mustAnswer checks kioskd still answers a public and an authenticated
// request promptly.
func (a *abuseTarget) mustAnswer(after string) {
	a.t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/healthz", "/api/v1/users?limit=1"} {
		req, _ := http.NewRequest("GET", a.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			a.t.Fatalf("after %s: %s: %v", after, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || time.Since(start) > 5*time.Second {
			a.t.Fatalf("after %s: %s answered %d in %v", after, path, resp.StatusCode, time.Since(start))
		}
	}
}

// pipeline writes raw requests on one connection and reads every answer.
func (a *abuseTarget) pipeline(reqs func(w io.Writer), n int) map[int]int {
	a.t.Helper()
	conn, err := net.Dial("tcp", a.host)
	if err != nil {
		a.t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		w := bufio.NewWriterSize(conn, 64<<10)
		reqs(w)
		w.Flush()
	}()
	statuses := map[int]int{}
	br := bufio.NewReader(conn)
	for i := 0; i < n; i++ {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			a.t.Fatalf("pipelined answer %d of %d: %v", i, n, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	return statuses
}

// methods: tens of thousands of distinct method names, and long ones; the
// metrics must not grow with them.
func (a *abuseTarget) methods() {
	n := a.n(60_000, 2_000)
	st := a.pipeline(func(w io.Writer) {
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "M%08dX /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", i)
		}
	}, n)
	long := a.n(3_000, 100)
	method := strings.Repeat("Q", 20<<10)
	for i := 0; i < long; i += 100 {
		a.pipeline(func(w io.Writer) {
			for j := 0; j < 100; j++ {
				fmt.Fprintf(w, "%s%d /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", method, i+j)
			}
		}, 100)
	}
	if st[http.StatusNotImplemented] != n {
		a.t.Fatalf("unknown methods: %v, want %d x 501", st, n)
	}
	a.metricsBounded()
}

// metricsBounded checks /metrics stays small.
func (a *abuseTarget) metricsBounded() {
	a.t.Helper()
	resp, err := http.Get(a.url + "/metrics")
	if err != nil {
		a.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) > 256<<10 {
		a.t.Fatalf("/metrics: %d, %d KB", resp.StatusCode, len(b)>>10)
	}
}

// paths: distinct paths and query strings, with and without a token.
func (a *abuseTarget) paths() {
	n := a.n(50_000, 1_000)
	a.pipeline(func(w io.Writer) {
		for i := 0; i < n; i++ {
			auth := ""
			if i%2 == 0 {
				auth = "Authorization: Bearer " + a.token + "\r\n"
			}
			fmt.Fprintf(w, "GET /api/v1/users/%x/faces/%d?q=%d&x%d=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", rand.Uint64(), i, i, i, auth)
		}
	}, n)
	a.metricsBounded()
}

// concurrently runs f(0..n-1) on at most width goroutines at once.
func concurrently(n, width int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}(i)
	}
	wg.Wait()
}

// headers: headers just under and far over the 64 KB limit, concurrently.
func (a *abuseTarget) headers() {
	concurrently(a.n(2_000, 50), 64, func(i int) {
		size := 60 << 10
		if i%2 == 1 {
			size = 1 << 20
		}
		req, _ := http.NewRequest("GET", a.url+"/healthz", nil)
		req.Header.Set("X-Pad", strings.Repeat("h", size))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// bodies: oversized JSON bodies to login, and huge declared uploads without
// a token.
func (a *abuseTarget) bodies() {
	n := a.n(200, 20)
	big := bytes.Repeat([]byte("a"), 2<<20)
	for i := 0; i < n; i++ {
		resp, err := http.Post(a.url+"/api/v1/auth/login", "application/json", bytes.NewReader(append(append([]byte(`{"email":"`), big...), `"}`...)))
		if err != nil {
			a.t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 {
			a.t.Fatalf("2 MB login body: %d, want 413", resp.StatusCode)
		}
		conn, err := net.Dial("tcp", a.host)
		if err != nil {
			a.t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/v1/import HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=X\r\nContent-Length: 500000000\r\n\r\n")
		conn.Write(big)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 401 {
			a.t.Fatalf("unauthenticated 500 MB upload: %v %v", resp, err)
		}
		conn.Close()
	}
}

// slowBodies: many connections trickling login bodies; kioskd keeps
// answering others, and cuts them off.
func (a *abuseTarget) slowBodies() {
	n := a.n(500, 30)
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", a.host)
		if err != nil {
			a.t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	a.mustAnswer("slow bodies opened")
	// A byte every second: under the minimum rate, so cut after the grace
	// period (or after the idle timeout, if the stall is longer).
	deadline := time.Now().Add(bodyGrace + 30*time.Second)
	if !a.full {
		deadline = time.Now().Add(10 * time.Second) // the short run's body_idle_timeout is 1 s
	}
	cut := 0
	for _, c := range conns {
		c.SetReadDeadline(deadline)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range conns {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			stop := make(chan struct{})
			go func() {
				for a.full {
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
						c.Write([]byte(" "))
					}
				}
			}()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			close(stop)
			if err == nil && resp.StatusCode == 422 {
				mu.Lock()
				cut++
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	if cut != n {
		a.t.Fatalf("%d of %d slow bodies were cut off", cut, n)
	}
}

// streams: thousands of feedback streams from loopback; at most max_streams
// open, the rest refused at once.
func (a *abuseTarget) streams() {
	n := a.n(5_000, 200)
	open, refused := 0, 0
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", a.host)
		if err != nil {
			a.t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /kiosk/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			a.t.Fatalf("stream %d: %v", i, err)
		}
		switch resp.StatusCode {
		case 200:
			open++
			held = append(held, c)
		case 503:
			refused++
			c.Close()
		default:
			a.t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
	}
	if open > DefaultConfig().MaxStreams || open+refused != n {
		a.t.Fatalf("%d streams open, %d refused of %d", open, refused, n)
	}
	a.mustAnswer("streams held")
}

// logins: failed logins spraying accounts and hammering the admin's, all
// refused (401) or slowed (429); the admin's session keeps working.
func (a *abuseTarget) logins() {
	var mu sync.Mutex
	statuses := map[int]int{}
	concurrently(a.n(400, 10), 16, func(i int) {
		email := fmt.Sprintf("spray%d@kiosk.test", i)
		if i%2 == 1 {
			email = a.email
		}
		resp, err := http.Post(a.url+"/api/v1/auth/login", "application/json", jsonBody(LoginRequest{Email: email, Password: "wrong-password-123"}))
		if err != nil {
			a.t.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		mu.Lock()
		statuses[resp.StatusCode]++
		mu.Unlock()
	})
	if len(statuses) > 2 || statuses[401]+statuses[429] != a.n(400, 10) {
		a.t.Fatalf("failed logins answered %v, want only 401 and 429", statuses)
	}
}

// upload posts one multipart file with the admin's token.
func (a *abuseTarget) upload(path, field, name string, data []byte) (int, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile(field, name)
	w.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", a.url+path, &buf)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, errCode(b)
}

// sheetBombs: the review's .xlsx bombs (a 300 MB cell, 400 MB of shared
// strings), a cell just under the sheet limit, and an illegal character.
func (a *abuseTarget) sheetBombs() {
	bombs := map[string][]byte{"20 MB cell": cellBomb(a.t, 20<<20)}
	if a.full {
		bombs["300 MB cell"] = cellBomb(a.t, 300<<20)
		bombs["400 MB shared strings"] = sharedStringsBomb(a.t, 400<<20)
	}
	for name, b := range bombs {
		for i := 0; i < a.n(3, 1); i++ {
			if st, code := a.upload("/api/v1/import", "sheet", "bomb.xlsx", b); st != 413 {
				a.t.Fatalf("%s (%d KB): %d %s, want 413", name, len(b)>>10, st, code)
			}
		}
	}
}

// imageBombs: a 16-bit 6000x6000 PNG (the review's 280 KB file that peaked
// at 1.1 GB), an 8-bit one of the same size (refused: above max_image_pixels),
// a header claiming 65535x65535, and the largest images that are accepted
// and encoded, to identify.
func (a *abuseTarget) imageBombs() {
	type bomb struct {
		name string
		b    []byte
	}
	bombs := []bomb{
		{"16-bit 6000x6000 PNG header", recognizertest.PNGHeader(6000, 6000, 16, 6)},
		{"65535x65535 header", recognizertest.PNGHeader(65535, 65535, 8, 2)},
	}
	if a.full {
		bombs = append(bombs,
			bomb{"16-bit 6000x6000 PNG", recognizertest.StreamedPNG(6000, 6000, 16, 6)},
			bomb{"8-bit 6000x6000 PNG", recognizertest.StreamedPNG(6000, 6000, 8, 6)},
			bomb{"8-bit 3000x2000 PNG", recognizertest.StreamedPNG(3000, 2000, 8, 2)},   // 6 MP: detected on a 2x copy
			bomb{"16-bit 2800x2800 PNG", recognizertest.StreamedPNG(2800, 2800, 16, 6)}, // 7.8 MP counted twice: refused
			bomb{"16-bit 2500x2500 PNG", recognizertest.StreamedPNG(2500, 2500, 16, 6)}, // 6.3 MP counted twice: allowed
			bomb{"8-bit 3500x2500 PNG", recognizertest.StreamedPNG(3500, 2500, 8, 2)},   // 8.8 MP: native size
			bomb{"8-bit 4160x3120 PNG", recognizertest.StreamedPNG(4160, 3120, 8, 6)},   // 13 MP: the largest allowed
		)
	}
	for _, x := range bombs {
		for i := 0; i < a.n(3, 1); i++ {
			if st, code := a.upload("/api/v1/identify", "image", "bomb.png", x.b); st != 413 && st != 422 && st != 200 {
				a.t.Fatalf("%s (%d KB): %d %s, want 413, 422 or 200", x.name, len(x.b)>>10, st, code)
			} else if i == 0 {
				a.t.Logf("  %-28s %5d KB: %d %-10s rss %4d MB, peak so far %4d MB", x.name, len(x.b)>>10, st, code, a.rss("VmRSS")>>20, a.rss("VmHWM")>>20)
			}
		}
	}
}
