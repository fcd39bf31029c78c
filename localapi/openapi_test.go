package localapi

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// apiDoc is the part of the OpenAPI document the tests read.
type apiDoc struct {
	Security []map[string][]string           `yaml:"security"`
	Paths    map[string]map[string]yaml.Node `yaml:"paths"`
}

type apiOp struct {
	Security  *[]map[string][]string `yaml:"security"`
	Role      string                 `yaml:"x-kioskd-role"`
	Loopback  bool                   `yaml:"x-kioskd-loopback"`
	Responses map[string]yaml.Node   `yaml:"responses"`
}

type docOp struct {
	method, path string // path in OpenAPI form, /users/{id}
	public       bool
	admin        bool
	loopback     bool
	statuses     []string
}

func loadDocOps(tb testing.TB) []docOp {
	tb.Helper()
	var d apiDoc
	if err := yaml.Unmarshal(openAPIDoc, &d); err != nil {
		tb.Fatalf("parse openapi.yaml: %v", err)
	}
	var ops []docOp
	for p, item := range d.Paths {
		for method, node := range item {
			m := strings.ToUpper(method)
			if m == "PARAMETERS" {
				continue
			}
			var op apiOp
			if err := node.Decode(&op); err != nil {
				tb.Fatalf("%s %s: %v", m, p, err)
			}
			o := docOp{method: m, path: p, admin: op.Role == "admin", loopback: op.Loopback}
			o.public = op.Security != nil && len(*op.Security) == 0
			for s := range op.Responses {
				o.statuses = append(o.statuses, s)
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	return ops
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z_]+)`)

// TestOpenAPI_MatchesRoutes: every route is documented and every documented
// operation is routed.
func TestOpenAPI_MatchesRoutes(t *testing.T) {
	s := NewServer(DefaultConfig(), Deps{}, nil)
	routes := map[string]bool{}
	for _, r := range s.engine.Routes() {
		routes[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for _, op := range loadDocOps(t) {
		documented[op.method+" "+op.path] = true
		if !routes[op.method+" "+op.path] {
			t.Errorf("documented but not routed: %s %s", op.method, op.path)
		}
		if !op.public && !contains(op.statuses, "401") {
			t.Errorf("%s %s: protected but documents no 401", op.method, op.path)
		}
		if op.admin && !contains(op.statuses, "403") {
			t.Errorf("%s %s: admin-only but documents no 403", op.method, op.path)
		}
	}
	for r := range routes {
		if !documented[r] {
			t.Errorf("routed but not documented: %s", r)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestOpenAPI_EmbeddedCopy: the served document is docs/openapi.yaml (run
// `go generate ./localapi` after editing it).
func TestOpenAPI_EmbeddedCopy(t *testing.T) {
	canon, err := os.ReadFile(filepath.Join(recognizertest.RepoRoot(), "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(canon, openAPIDoc) {
		t.Fatal("localapi/openapi.yaml differs from docs/openapi.yaml: run `go generate ./localapi`")
	}
}

// samplePath fills path parameters with plausible values.
func samplePath(p string) string {
	return strings.NewReplacer("{id}", "u1", "{face}", "f1", "{job}", "j1", "{email}", "x%40example.com", "{file}", "kiosk.js").Replace(p)
}

// TestAuthMatrix is generated from the document: every protected operation
// refuses a missing, malformed, forged or expired token with 401 and every
// admin operation refuses a technician with 403.
func TestAuthMatrix(t *testing.T) {
	env := mustServer(t, func(c *Config, d *Deps) { c.TrustLoopback = false })
	ops := loadDocOps(t)
	forged := env.tech[:len(env.tech)-4] + "AAAA"
	n401, n403 := 0, 0
	for _, op := range ops {
		path := samplePath(op.path)
		if op.public {
			resp, _ := env.do(op.method, path, "", "", nil)
			if resp.StatusCode == 401 || resp.StatusCode == 403 {
				t.Errorf("public %s %s: status %d without a token", op.method, op.path, resp.StatusCode)
			}
			continue
		}
		for name, tok := range map[string]string{"none": "", "garbage": "garbage", "forged": forged} {
			resp, b := env.do(op.method, path, tok, "", nil)
			if resp.StatusCode != 401 || errCode(b) != "unauthorized" {
				t.Errorf("%s %s with %s token: status %d %s, want 401", op.method, op.path, name, resp.StatusCode, b)
			}
			n401++
		}
		if op.admin {
			resp, b := env.do(op.method, path, env.tech, "", nil)
			if resp.StatusCode != 403 || errCode(b) != "forbidden" {
				t.Errorf("%s %s as technician: status %d %s, want 403", op.method, op.path, resp.StatusCode, b)
			}
			n403++
		}
	}
	if n401 < 60 || n403 < 6 {
		t.Fatalf("matrix too small: %d 401 checks, %d 403 checks", n401, n403)
	}

	// Expired tokens are refused everywhere; a fresh login works again.
	env.clock.Advance(DefaultConfig().TokenTTL + time.Second)
	for _, op := range ops {
		if op.public {
			continue
		}
		resp, _ := env.do(op.method, samplePath(op.path), env.admin, "", nil)
		if resp.StatusCode != 401 {
			t.Errorf("%s %s with an expired token: status %d, want 401", op.method, op.path, resp.StatusCode)
		}
	}
	tok := env.mustLogin(adminEmail, adminPW)
	if st := env.doJSON("GET", "/api/v1/me", tok, nil, nil); st != 200 {
		t.Fatalf("fresh token: %d", st)
	}
}

// TestLoopbackLiveViews: with TrustLoopback the kiosk's own screen reaches
// the live views without a token; /api/v1 still needs one.
func TestLoopbackLiveViews(t *testing.T) {
	env := mustServer(t, nil)
	for _, op := range loadDocOps(t) {
		if !op.loopback {
			continue
		}
		req, _ := http.NewRequest("GET", env.url+op.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // streams: the status line is enough
		if resp.StatusCode == 401 {
			t.Errorf("%s from loopback: 401", op.path)
		}
	}
	if st := env.doJSON("GET", "/api/v1/users", "", nil, nil); st != 401 {
		t.Fatalf("/api/v1/users from loopback without token: %d", st)
	}
}
