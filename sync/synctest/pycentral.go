package synctest

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// PyCentral is sync/central_py/central_demo.py, the Python reference
// client for central, running as a test's central: its events are its
// stdout lines (JSON), its commands its stdin lines.
type PyCentral struct {
	tb     testing.TB
	stdin  io.WriteCloser
	events chan map[string]any
	seen   []map[string]any
}

// MustPyCentral installs the reference client's venv (sync/central_py/setup.sh,
// idempotent; KIOSK_CENTRAL_VENV, default var/central-venv) and starts the
// demo central for site against broker, signing with the Ed25519 seed and
// publishing people (see central_demo.py for their fields); args are more
// central_demo.py flags.
func MustPyCentral(tb testing.TB, broker, site string, seed []byte, people []map[string]string, args ...string) *PyCentral {
	tb.Helper()
	root := recognizertest.RepoRoot()
	venv := cmp.Or(os.Getenv("KIOSK_CENTRAL_VENV"), filepath.Join(root, "var", "central-venv"))
	setup := exec.Command("bash", filepath.Join(root, "sync", "central_py", "setup.sh"), venv)
	setup.Dir = root
	if out, err := setup.CombinedOutput(); err != nil {
		tb.Fatalf("sync/central_py/setup.sh: %v\n%s", err, out)
	}
	pj := filepath.Join(tb.TempDir(), "people.json")
	b, _ := json.Marshal(people)
	if err := os.WriteFile(pj, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(venv, "bin", "python"), append([]string{filepath.Join(root, "sync", "central_py", "central_demo.py"),
		"--broker", strings.TrimPrefix(broker, "tcp://"), "--site", site, "--seed-hex", fmt.Sprintf("%x", seed), "--people", pj}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1") // no __pycache__ in the source tree
	cmd.Stderr = os.Stderr
	p := &PyCentral{tb: tb, events: make(chan map[string]any, 256)}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				p.events <- ev
			}
		}
		close(p.events)
	}()
	return p
}

// Expect returns the first event (seen before or arriving within d) named
// name for which match holds.
func (p *PyCentral) Expect(d time.Duration, name string, match func(ev map[string]any) bool) map[string]any {
	p.tb.Helper()
	for _, ev := range p.seen {
		if ev["event"] == name && (match == nil || match(ev)) {
			return ev
		}
	}
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				p.tb.Fatalf("central exited before %s", name)
			}
			p.seen = append(p.seen, ev)
			if ev["event"] == name && (match == nil || match(ev)) {
				return ev
			}
		case <-deadline:
			p.tb.Fatalf("central: no %s event within %s", name, d)
		}
	}
}

func (p *PyCentral) Send(cmd map[string]any) {
	p.tb.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.tb.Fatal(err)
	}
}

// Floats returns a JSON array of numbers as float32s (the wire's precision).
func Floats(v any) []float32 {
	a, _ := v.([]any)
	out := make([]float32, len(a))
	for i, x := range a {
		f, _ := x.(float64)
		out[i] = float32(f)
	}
	return out
}
