package recognizer

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// normalSample returns n distances spread as a normal(mean, sd): its
// quantiles at (i+0.5)/n, sorted, so the tests are exact.
func normalSample(n int, mean, sd float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = mean + sd*normQuantile((float64(i)+0.5)/float64(n))
	}
	return out
}

func TestTailQuantileNormal(t *testing.T) {
	imp := normalSample(100000, 0.75, 0.08)
	users := 10000
	got := TailQuantile(slices.Clone(imp), users, 1e-7, ImpostorPrior{})
	// The fit lowers the mean by one standard error over users.
	want := 0.75 - 0.08/100 + 0.08*normQuantile(1e-7)
	if math.Abs(got-want) > 0.003 {
		t.Fatalf("TailQuantile = %.4f, want %.4f", got, want)
	}
	// Resolved by the sample: the empirical quantile, here about the fit's.
	if q := TailQuantile(slices.Clone(imp), users, 0.01, ImpostorPrior{}); math.Abs(q-(0.75+0.08*normQuantile(0.01))) > 0.003 {
		t.Fatalf("TailQuantile(1%%) = %.4f", q)
	}
}

// TestPriorHoldsSmallGalleries: three far-apart users cannot lift the
// threshold far above what the densest population allows, while a large
// gallery's own pairs decide nearly alone; no prior is the fit alone.
func TestPriorHoldsSmallGalleries(t *testing.T) {
	sparse := []float64{0.84, 0.86, 0.88}
	alone := IdentifyThreshold(slices.Clone(sparse), 3, 1e-4, ImpostorPrior{})
	held := IdentifyThreshold(slices.Clone(sparse), 3, 1e-4, DefaultImpostorPrior())
	if !(alone > 0.75 && held < 0.45) {
		t.Fatalf("3 users 0.84-0.88 apart: %.3f alone, %.3f with the prior; want the prior to hold it under 0.45", alone, held)
	}
	big := normalSample(5000, 0.75, 0.08)
	a, b := IdentifyThreshold(slices.Clone(big), 100, 1e-4, ImpostorPrior{}), IdentifyThreshold(slices.Clone(big), 100, 1e-4, DefaultImpostorPrior())
	if !(b <= a && a-b < 0.005) {
		t.Fatalf("5,000 pairs: %.4f alone, %.4f with the prior; want it to move under 0.005", a, b)
	}
	if q := TailQuantile(nil, 0, 1e-4, ImpostorPrior{}); !math.IsNaN(q) {
		t.Fatalf("no sample, no prior: %v, want NaN", q)
	}
	// A small gallery held by the prior says it is small, not dense.
	if c := Derive(slices.Clone(sparse), nil, 3, 3, DefaultCalibrationConfig()); !c.Dense || !strings.HasPrefix(c.Warning, "Only 3 people enrolled: until more are") {
		t.Fatalf("3 far-apart users: dense %v, warning %q", c.Dense, c.Warning)
	}
	// Under 3 users nothing is fitted, the ceiling stays, and the
	// calibration says why.
	c := Derive([]float64{0.5}, nil, 2, 2, DefaultCalibrationConfig())
	if c.Calibrated || c.EffectiveThreshold != DefaultThreshold || !strings.Contains(c.Warning, "Only 2 people enrolled") {
		t.Fatalf("2 users: %+v", c)
	}
	fixed := DefaultCalibrationConfig()
	fixed.Fixed = true
	if c := Derive(nil, nil, 1, 1, fixed); c.Warning != "" {
		t.Fatalf("a fixed threshold warned: %q", c.Warning)
	}
	if c := Derive(nil, nil, 1, 1, DefaultCalibrationConfig()); !strings.HasPrefix(c.Warning, "Only 1 person enrolled") {
		t.Fatalf("1 user: warning %q", c.Warning)
	}
}

func TestIdentifyThresholdFallsWithGallerySize(t *testing.T) {
	imp := normalSample(5000, 0.75, 0.08)
	prev := math.Inf(1)
	for _, n := range []int{10, 100, 1000, 100000} {
		th := IdentifyThreshold(slices.Clone(imp), n, 1e-4, ImpostorPrior{})
		if !(th < prev) {
			t.Fatalf("N=%d: threshold %.4f not below %.4f", n, th, prev)
		}
		prev = th
	}
}

func TestTailQuantileHeavyLowerTail(t *testing.T) {
	// A lower tail heavier than the body's spread: the 1% quantile sets sd.
	imp := normalSample(10000, 0.75, 0.05)
	for i := range 300 {
		imp[i] = 0.4 + 0.0005*float64(i)
	}
	light := TailQuantile(normalSample(10000, 0.75, 0.05), 100, 1e-6, ImpostorPrior{})
	heavy := TailQuantile(imp, 100, 1e-6, ImpostorPrior{})
	if !(heavy < light-0.05) {
		t.Fatalf("heavy tail %.3f not well below %.3f", heavy, light)
	}
}

func TestDuplicateDistanceClamped(t *testing.T) {
	if d := DuplicateDistance(normalSample(1000, 0.9, 0.05), 40, 1e-3, 0.2, 0.4); d != 0.4 {
		t.Fatalf("sparse gallery: %.3f, want the cap 0.4", d)
	}
	if d := DuplicateDistance(normalSample(1000, 0.35, 0.05), 40, 1e-3, 0.2, 0.4); d != 0.2 {
		t.Fatalf("very dense gallery: %.3f, want the floor 0.2", d)
	}
	if d := DuplicateDistance(normalSample(1000, 0.6, 0.05), 40, 1e-3, 0.2, 0.4); !(d > 0.2 && d < 0.4) {
		t.Fatalf("dense gallery: %.3f, want within (0.2, 0.4)", d)
	}
	if d := DuplicateDistance(nil, 0, 1e-3, 0.2, 0.4); d != 0.2 {
		t.Fatalf("empty gallery: %.3f, want the floor", d)
	}
}

func TestVerifyThreshold(t *testing.T) {
	for _, c := range []struct{ ceil, nn, margin, want float64 }{
		{0.4, 0.6, 0.02, 0.4}, {0.4, 0.3, 0.02, 0.28}, {0.4, math.Inf(1), 0.02, 0.4}, {0.4, 0.01, 0.02, 0},
	} {
		if got := VerifyThreshold(c.ceil, c.nn, c.margin); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("VerifyThreshold(%v, %v, %v) = %v, want %v", c.ceil, c.nn, c.margin, got, c.want)
		}
	}
}

func TestDerive(t *testing.T) {
	t.Run("too small", func(t *testing.T) {
		c := Derive([]float64{0.7}, nil, 2, 2, DefaultCalibrationConfig())
		if c.Calibrated || c.EffectiveThreshold != 0.6 || c.DuplicateDistance != DefaultDuplicateFloor || c.Dense {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("sparse", func(t *testing.T) {
		gen := normalSample(100, 0.38, 0.07)
		c := Derive(normalSample(2000, 0.86, 0.07), gen, 64, 128, DefaultCalibrationConfig())
		if !c.Calibrated || c.Dense || !(c.EffectiveThreshold > 0.45 && c.EffectiveThreshold <= 0.6) || !(c.GenuineAcceptRate > 0.9) {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("dense", func(t *testing.T) {
		c := Derive(normalSample(2000, 0.5, 0.067), normalSample(100, 0.39, 0.07), 64, 128, DefaultCalibrationConfig())
		if !c.Dense || c.Warning == "" || !(c.EffectiveThreshold < 0.3) {
			t.Fatalf("%+v", c)
		}
		fixed := Derive(normalSample(2000, 0.5, 0.067), normalSample(100, 0.39, 0.07), 64, 128, fixedCalibration())
		if !fixed.Dense || fixed.EffectiveThreshold != 0.6 || !(fixed.GenuineAcceptRate > 0.99) {
			t.Fatalf("fixed: %+v", fixed)
		}
	})
	t.Run("near identical left out", func(t *testing.T) {
		imp := append(normalSample(2000, 0.86, 0.07), 0, 0, 0.05)
		c := Derive(imp, nil, 64, 128, DefaultCalibrationConfig())
		if c.NearIdentical != 3 || c.Impostor.Min != 0 || !(c.DuplicateDistance >= DefaultDuplicateFloor) {
			t.Fatalf("%+v", c)
		}
	})
}

// mustIdols loads the shared gallery as user -> descriptors.
func mustIdols(tb testing.TB) map[string][]models.Descriptor {
	tb.Helper()
	recs := recognizertest.Idols(tb)
	users := map[string][]models.Descriptor{}
	for _, r := range recs {
		for _, e := range r.Encodings {
			users[r.User.ID] = append(users[r.User.ID], e.Descriptor)
		}
	}
	return users
}

// TestCalibrateIdols calibrates the real 1,286-descriptor gallery: dense,
// with the mislabelled photos found and left out of the fit.
func TestCalibrateIdols(t *testing.T) {
	m := NewMatcher(DefaultMatcherConfig())
	loadGallery(m, mustIdols(t))
	c := m.Calibrate(allPairs()) // every pair
	t.Logf("users %d descriptors %d impostor %+v genuine %+v near-identical %d identify %.3f verify %.3f duplicate %.3f genuine-accept %.3f dense %v",
		c.Users, c.Descriptors, c.Impostor, c.Genuine, c.NearIdentical, c.IdentifyThreshold, c.VerifyThreshold, c.DuplicateDistance, c.GenuineAcceptRate, c.Dense)
	if c.Users != 134 || c.Descriptors != 1286 || c.Impostor.Pairs+c.Genuine.Pairs != 1286*1285/2 {
		t.Fatalf("counts: %+v", c)
	}
	if c.NearIdentical != 30 {
		t.Errorf("near-identical impostor pairs = %d, want the gallery's 30 mislabelled photos", c.NearIdentical)
	}
	if !c.Dense || c.Warning == "" || !(c.EffectiveThreshold < 0.3) {
		t.Errorf("the idols gallery must be reported dense: %+v", c)
	}
	if !(c.DuplicateDistance >= DefaultDuplicateFloor && c.DuplicateDistance < 0.25) {
		t.Errorf("duplicate distance %.3f", c.DuplicateDistance)
	}
	// Sampled (the default bound): close to the full measurement.
	s := m.Calibrate(DefaultCalibrationConfig())
	if !s.Impostor.Sampled || math.Abs(s.Impostor.Mean-c.Impostor.Mean) > 0.005 || math.Abs(s.IdentifyThreshold-c.IdentifyThreshold) > 0.02 {
		t.Errorf("sampled %+v vs full %+v", s.Impostor, c.Impostor)
	}
}

// TestVerifyIdols: ID + face on the real gallery, each descriptor of a
// person with two or more probed against the rest (leave one out), claiming
// its own ID and the IDs of the five users nearest to it.
func TestVerifyIdols(t *testing.T) {
	users := mustIdols(t)
	m := NewMatcher(DefaultMatcherConfig())
	loadGallery(m, users)
	ceiling := m.Calibrate(allPairs()).VerifyThreshold
	var probes, verified, wrong, claims int
	for id, ds := range users {
		if len(ds) < 2 {
			continue
		}
		for i := range ds {
			probe := ds[i]
			mm := m.Identify(&probe)
			nearestOther := mm.RunnerUpDistance
			if mm.BestUserID != id {
				nearestOther = mm.Distance
			}
			if nearestOther < nearIdentical {
				continue // a photo also filed under another name
			}
			rest := slices.Delete(slices.Clone(ds), i, i+1)
			m.SetUser(id, rest)
			probes++
			if m.Verify(id, &probe, ceiling, DefaultVerifyMargin).Match {
				verified++
			}
			for _, other := range nearestUsers(users, id, &probe, 5) {
				claims++
				if v := m.Verify(other, &probe, ceiling, DefaultVerifyMargin); v.Match {
					wrong++
					t.Errorf("%s's photo verified as %s: %+v", id, other, v)
				}
			}
			m.SetUser(id, ds)
		}
	}
	t.Logf("probes %d: verified %d (%.1f%%), wrong-ID claims %d, accepted %d; 1:1 ceiling %.3f",
		probes, verified, 100*float64(verified)/float64(probes), claims, wrong, ceiling)
	if probes < 1200 || verified == 0 {
		t.Fatalf("probes %d verified %d", probes, verified)
	}
}

// nearestUsers returns the k users other than self nearest to d.
func nearestUsers(users map[string][]models.Descriptor, self string, d *models.Descriptor, k int) []string {
	type ud struct {
		id string
		d  float64
	}
	var all []ud
	for id, ds := range users {
		if id == self {
			continue
		}
		best := math.Inf(1)
		for i := range ds {
			best = min(best, models.Distance(d, &ds[i]))
		}
		all = append(all, ud{id, best})
	}
	slices.SortFunc(all, func(a, b ud) int { return cmpFloat(a.d, b.d) })
	out := make([]string, 0, k)
	for _, u := range all[:min(k, len(all))] {
		out = append(out, u.id)
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fixedCalibration is the default calibration that keeps the ceiling.
func fixedCalibration() CalibrationConfig {
	c := DefaultCalibrationConfig()
	c.Fixed = true
	return c
}

// allPairs is the default calibration measuring every pair of a gallery
// of up to 2,048 descriptors.
func allPairs() CalibrationConfig {
	c := DefaultCalibrationConfig()
	c.MaxPairs = 1 << 21
	return c
}

// TestCalibrationConfigValidate: every default validates, and each field
// out of range is named.
func TestCalibrationConfigValidate(t *testing.T) {
	if err := DefaultCalibratorConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for field, f := range map[string]func(*CalibratorConfig){
		"TargetFMR":      func(c *CalibratorConfig) { c.TargetFMR = 0 },
		"Ceiling":        func(c *CalibratorConfig) { c.Ceiling = math.NaN() },
		"DuplicateRate":  func(c *CalibratorConfig) { c.DuplicateRate = 1 },
		"DuplicateFloor": func(c *CalibratorConfig) { c.DuplicateFloor = 0 },
		"DuplicateCap":   func(c *CalibratorConfig) { c.DuplicateCap = c.DuplicateFloor / 2 },
		"MaxPairs":       func(c *CalibratorConfig) { c.MaxPairs = 0 },
		"MinInterval":    func(c *CalibratorConfig) { c.MinInterval = -time.Second },
		"VerifyMargin":   func(c *CalibratorConfig) { c.VerifyMargin = -0.01 },
		"Prior.Pairs":    func(c *CalibratorConfig) { c.Prior.Pairs = -1 },
		"Prior.Mean":     func(c *CalibratorConfig) { c.Prior.Mean = 0 },
		"Prior.SD":       func(c *CalibratorConfig) { c.Prior.SD = math.NaN() },
	} {
		c := DefaultCalibratorConfig()
		f(&c)
		err := c.Validate()
		if models.ErrorCode(err) != models.EINVALID || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

// TestCalibratorWarnsOncePerKind: the log warns when the gallery's warning
// changes kind (too few users, then a small gallery held by the prior),
// not again while it keeps its kind.
func TestCalibratorWarnsOncePerKind(t *testing.T) {
	var log bytes.Buffer
	m := NewMatcher(DefaultMatcherConfig())
	cfg := DefaultCalibratorConfig()
	cfg.MinInterval = 0
	c := NewCalibrator(m, cfg, slog.New(slog.NewTextHandler(&log, nil)))
	// Users 0.85 apart: far apart, as a few Western faces are.
	user := func(axis int) []models.Descriptor {
		var d models.Descriptor
		d[axis] = 0.6
		return []models.Descriptor{d}
	}
	for i, want := range []int{1, 1, 2} {
		m.SetUser(fmt.Sprintf("u%d", i), user(i))
		cal := c.Current()
		if got := strings.Count(log.String(), "gallery unfit"); got != want {
			t.Fatalf("%d users (warning %q): %d warnings logged, want %d", i+1, cal.Warning, got, want)
		}
	}
	if cal := c.Current(); !strings.HasPrefix(cal.Warning, "Only 3 people enrolled: until more are") {
		t.Fatalf("3 users: warning %q", cal.Warning)
	}
	// Ten more users 0.3 apart: enough pairs to outweigh the prior, and
	// dense; the warning changes kind while the gallery stays dense.
	for i := range 10 {
		var d models.Descriptor
		d[10], d[20+i] = 0.5, 0.21
		m.SetUser(fmt.Sprintf("v%d", i), []models.Descriptor{d})
	}
	cal := c.Current()
	if !cal.Dense || !strings.HasPrefix(cal.Warning, "This gallery is too dense") {
		t.Fatalf("13 users: dense %v, warning %q", cal.Dense, cal.Warning)
	}
	if got := strings.Count(log.String(), "gallery unfit"); got != 3 {
		t.Fatalf("held, then dense: %d warnings logged, want 3", got)
	}
}
