package device

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// TestCaptureFacesLiveClip enrols from a real person's live clip, replayed
// at its own pace through the real gates and encoder, as the camera would
// deliver it: the capture takes several samples, each of a distinct pose
// or descriptor, and enrolled they give the user more than one template.
func TestCaptureFacesLiveClip(t *testing.T) {
	cfg := testConfig(t, recognizertest.Testdata(t, "video/live/tvl-real.mp4"))
	cfg.Pace = true
	db := bolttest.MustOpenDB(t)
	m := recognizer.NewMatcher(recognizer.DefaultMatcherConfig())
	p := NewPipeline(cfg, mustOpenGater(t, cfg), mustEncoder(t), m, db, NewBus(), testLogger(t))
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	faces, jpeg, err := p.CaptureFaces(ctx, MaxCaptureSamples)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	if len(faces) < 2 || len(jpeg) == 0 {
		t.Fatalf("%d samples (jpeg %d bytes), want several", len(faces), len(jpeg))
	}
	u := bolttest.MustCreateUser(t, db, &models.User{FullName: "tvl"})
	for i := range faces {
		for j := range i {
			if d := models.Distance(&faces[i].Descriptor, &faces[j].Descriptor); d < 1e-3 {
				t.Errorf("samples %d and %d are the same frame (distance %.4f)", j, i, d)
			}
		}
		bolttest.MustAddEncoding(t, db, u.ID, faces[i].Descriptor)
	}
	encs, err := db.ListEncodings(context.Background(), u.ID)
	if err != nil || len(encs) != len(faces) {
		t.Fatalf("templates = %d (%v), want %d", len(encs), err, len(faces))
	}
	var maxD float64
	for i := 1; i < len(faces); i++ {
		maxD = math.Max(maxD, models.Distance(&faces[0].Descriptor, &faces[i].Descriptor))
	}
	t.Logf("%d samples; largest distance from the first %.3f", len(faces), maxD)
}

// TestDistinctSample: a frame is a new sample when its pose or its
// descriptor moved enough from every kept one.
func TestDistinctSample(t *testing.T) {
	d := func(x float32) models.Descriptor { var v models.Descriptor; v[0] = x; return v }
	a, b := d(0), d(0.1)
	kept := []*captureSample{{face: &models.Face{Descriptor: a}}}
	for _, tc := range []struct {
		name      string
		yaw, roll float64
		desc      models.Descriptor
		want      bool
	}{
		{"same pose and face", 0.01, 1, d(0.01), false},
		{"turned", sampleYawStep, 0, a, true},
		{"tilted", 0, sampleRollStep, a, true},
		{"descriptor moved", 0, 0, b, true},
	} {
		s := &captureSample{face: &models.Face{Descriptor: tc.desc}, yaw: tc.yaw, roll: tc.roll}
		if got := distinctSample(kept, s); got != tc.want {
			t.Errorf("%s: distinct = %v, want %v", tc.name, got, tc.want)
		}
	}
}
