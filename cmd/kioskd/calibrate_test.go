package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// TestCalibrateCommand: `kioskd calibrate` prints the calibration of the
// store's gallery (empty here: not calibrated, the configured threshold)
// and of a gallery file (the idols: dense, with the warning).
func TestCalibrateCommand(t *testing.T) {
	var out bytes.Buffer
	m := MustMain(t, &out)
	m.Command = "calibrate"
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var c recognizer.Calibration
	if err := json.Unmarshal(out.Bytes(), &c); err != nil || c.Users != 0 || c.Calibrated || c.EffectiveThreshold != 0.6 {
		t.Fatalf("empty store: %v %s", err, out.String())
	}

	out.Reset()
	m2 := MustMain(t, &out)
	if err := m2.ParseFlags(context.Background(), []string{"calibrate", "-target", "0.001", "-idols", recognizertest.Testdata(t, "gallery/idols.json")}); err != nil {
		t.Fatal(err)
	}
	m2.Config.Models.Dir = recognizertest.ModelsDir(t)
	if err := m2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c = recognizer.Calibration{}
	if err := json.Unmarshal(out.Bytes(), &c); err != nil || c.Users != 134 || c.TargetFMR != 0.001 || !c.Dense || c.Warning == "" {
		t.Fatalf("idols: %v %s", err, out.String())
	}
	if bytes.Contains(out.Bytes(), []byte("descriptor\"")) {
		t.Fatalf("calibration output carries descriptors: %s", out.String())
	}
}
