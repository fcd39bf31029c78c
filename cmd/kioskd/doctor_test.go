package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/sync/synctest"
)

// TestDoctor: each check prints one line; the real models pass, a
// damaged model and a key file readable by others fail with what to do, and
// the command then exits with an error.
func TestDoctor(t *testing.T) {
	dir := t.TempDir()
	if _, err := mustRunCommand(t, dir, "kiosk-admin-pass-42\n", "admin", "add", "--email", "a@example.org", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m := MustMain(t, &out)
	m.Config.DataDir = dir
	m.Command = "doctor"
	err := m.Run(context.Background())
	m.Close() // the store, for the next doctor
	for _, want := range []string{"OK    models:", "OK    store:", "OK    key file:", "OK    camera:", "OK    broker:", "OK    disk:", "OK    cpu:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	// The clock line depends on the machine (NTP); whatever it says, the
	// exit status follows the FAIL lines.
	if strings.Contains(out.String(), "FAIL") != (err != nil) {
		t.Fatalf("exit %v does not match the lines:\n%s", err, out.String())
	}

	// A camera source (a folder of 320x240 frames of noise) and a real
	// broker; then black frames; then a broker nobody listens on.
	frames, black := t.TempDir(), t.TempDir()
	for i := 0; i < 3; i++ {
		img := gocv.NewMatWithSize(240, 320, gocv.MatTypeCV8UC3)
		gocv.IMWrite(filepath.Join(black, fmt.Sprintf("%03d.jpg", i)), img)
		gocv.RandU(&img, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 255, 255, 0))
		gocv.IMWrite(filepath.Join(frames, fmt.Sprintf("%03d.jpg", i)), img)
		img.Close()
	}
	broker := synctest.MustMosquitto(t)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	out.Reset()
	m3 := MustMain(t, &out)
	m3.Config.DataDir = dir
	m3.Config.Device.Source = frames
	m3.Config.Sync.Broker = broker.URL
	m3.Config.Sync.RegistryPublicKey = base64.StdEncoding.EncodeToString(pub)
	m3.Command = "doctor"
	_ = m3.Run(context.Background())
	m3.Close()
	for _, want := range []string{"delivered 3 frames of 320x240", "OK    broker:", "connected to " + broker.URL, "OK    registry key:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	out.Reset()
	m5 := MustMain(t, &out)
	m5.Config.DataDir = dir
	m5.Config.Device.Source = black
	m5.Command = "doctor"
	err = m5.Run(context.Background())
	m5.Close()
	if err == nil || !strings.Contains(out.String(), "FAIL  camera:") || !strings.Contains(out.String(), "black frames") || !strings.Contains(out.String(), "lens cover") {
		t.Fatalf("black frames not reported:\n%s", out.String())
	}
	out.Reset()
	m4 := MustMain(t, &out)
	m4.Config.DataDir = dir
	m4.Config.Sync.Broker = "tcp://127.0.0.1:1" // nobody listens there
	m4.Command = "doctor"
	err = m4.Run(context.Background())
	m4.Close()
	if err == nil || !strings.Contains(out.String(), "FAIL  broker:") || !strings.Contains(out.String(), "FAIL  registry key:") {
		t.Fatalf("unreachable broker, no registry key: %v\n%s", err, out.String())
	}

	// A damaged model and a key readable by others.
	models := t.TempDir()
	for _, f := range modelFiles[1:] {
		if err := os.Symlink(filepath.Join(m.Config.Models.Dir, f), filepath.Join(models, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(models, modelFiles[0]), []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "keys", "descriptors.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	m2 := MustMain(t, &out)
	m2.Config.DataDir = dir
	m2.Config.Models.Dir = models
	m2.Command = "doctor"
	if err := m2.Run(context.Background()); err == nil {
		t.Fatalf("doctor passed with a damaged model:\n%s", out.String())
	}
	for _, want := range []string{"FAIL  models:", modelFiles[0] + " damaged", "make models", "FAIL  key file:", "chmod 600"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
}
