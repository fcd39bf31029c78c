package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// MustMain returns a Main on defaults with a temp data dir, the real models
// and its output captured in stdout.
func MustMain(tb testing.TB, stdout *bytes.Buffer) *Main {
	tb.Helper()
	m := NewMain()
	m.Getenv = func(string) string { return "" }
	m.Config.DataDir = tb.TempDir()
	m.Config.Models.Dir = recognizertest.ModelsDir(tb)
	m.Config.API.Addr = "127.0.0.1:0"
	m.Config.Recognizer.PoolSize = 1
	m.Stdout = stdout
	m.Stderr = io.Discard
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

func TestEncodeCommand(t *testing.T) {
	var out bytes.Buffer
	m := MustMain(t, &out)
	dir := recognizertest.TestdataDir(t)
	obama := filepath.Join(dir, "people", "obama", "1.jpg")
	two := recognizertest.Testdata(t, "multi/two_people.jpg")
	notImage := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notImage, []byte("not an image"), 0o600)
	m.Command, m.Args = "encode", []string{obama, two, notImage, filepath.Join(dir, "missing.jpg")}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), out.String())
	}
	var got []encodeLine
	for _, l := range lines {
		var e encodeLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, e)
	}
	if len(got[0].Faces) != 1 || len(got[0].Faces[0].Descriptor) != 128 || got[0].Error != nil {
		t.Fatalf("obama: %+v", got[0])
	}
	var d models.Descriptor
	copy(d[:], got[0].Faces[0].Descriptor)
	if err := d.Validate(); err != nil {
		t.Fatalf("obama descriptor: %v", err)
	}
	if b := got[0].Faces[0].Box; b.Width < 80 || b.Left >= b.Right || b.Top >= b.Bottom {
		t.Fatalf("obama box %+v", b)
	}
	if len(got[1].Faces) != 2 {
		t.Fatalf("two_people: %d faces, want 2 (encode lists every face)", len(got[1].Faces))
	}
	if got[2].Error == nil || got[2].Error.Code != models.EBADIMAGE {
		t.Fatalf("text file: %+v, want bad_image", got[2])
	}
	if got[3].Error == nil || got[3].Error.Code != models.EBADIMAGE || !strings.Contains(got[3].Error.Message, "missing.jpg") {
		t.Fatalf("missing file: %+v", got[3])
	}
}

func TestAdminAdd(t *testing.T) {
	var out bytes.Buffer
	m := MustMain(t, &out)
	m.Command, m.Args = "admin", []string{"add", "--email", "Tech@Example.org", "--role", "technician"}
	m.Stdin = strings.NewReader("correct horse battery staple\n")
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	acc, err := m.DB.GetAccount(context.Background(), "tech@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if acc.Role != models.AccountTechnician || strings.Contains(acc.PasswordHash, "horse") {
		t.Fatalf("account %+v", acc)
	}
	if ok, err := password.VerifyPassword(acc.PasswordHash, "correct horse battery staple"); !ok || err != nil {
		t.Fatalf("stored hash does not verify: %v %v", ok, err)
	}

	for _, tc := range []struct{ pw, email, want string }{
		{"short1\n", "a@example.org", "at least 10"},
		{"12345678901234\n", "a@example.org", "numeric"},
		{"password123\n", "a@example.org", "common"},
		{"jonathan.smith\n", "jonathan.smith@example.org", "similar"},
		{"\n", "a@example.org", "no password"},
	} {
		m := MustMain(t, &out)
		m.Command, m.Args = "admin", []string{"add", "--email", tc.email, "--role", "admin"}
		m.Stdin = strings.NewReader(tc.pw)
		err := m.Run(context.Background())
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
			t.Errorf("password %q: err = %v, want one mentioning %q", strings.TrimSpace(tc.pw), err, tc.want)
		}
	}
}
