package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := New(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second, func() time.Time { return now })
	r.Warn("a", "first")
	r.Warn("a", "dropped")
	r.Warn("a", "dropped")
	r.Warn("b", "other key")
	now = now.Add(10 * time.Second)
	r.Warn("a", "after interval")
	got := buf.String()
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || strings.Contains(got, "dropped") {
		t.Fatalf("logged:\n%s", got)
	}
	if !strings.Contains(lines[0], "msg=first") || !strings.Contains(lines[1], "msg=\"other key\"") ||
		!strings.Contains(lines[2], "msg=\"after interval\"") || !strings.Contains(lines[2], "suppressed=2") {
		t.Fatalf("logged:\n%s", got)
	}
	for i := range maxKeys + 10 { // memory stays bounded
		r.Warn(string(rune('a'+i%26))+strings.Repeat("x", i), "flood")
	}
	if n := len(r.last); n > maxKeys {
		t.Fatalf("%d keys kept", n)
	}
}
