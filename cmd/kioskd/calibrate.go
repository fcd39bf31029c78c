package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/sync/registrysim"
)

// calibrateEvery is how often the daemon checks whether the gallery changed
// (sync pushes, enrolments) and recalibrates; an unchanged gallery costs a
// version compare.
const calibrateEvery = 30 * time.Second

// calibratorConfig is the recognizer configuration as a CalibratorConfig:
// a target of 0 keeps the threshold fixed, and the calibration is then
// reported at the default target.
func (c *Config) calibratorConfig() recognizer.CalibratorConfig {
	cfg := recognizer.DefaultCalibratorConfig()
	cfg.Ceiling = c.Recognizer.Threshold
	cfg.Apply = c.Recognizer.TargetFalseMatchRate > 0
	cfg.Prior.Pairs = c.Recognizer.CalibrationPriorPairs
	if cfg.Apply {
		cfg.TargetFMR = c.Recognizer.TargetFalseMatchRate
	}
	return cfg
}

// openCalibrator calibrates the loaded gallery (applying its threshold
// before any service identifies) and keeps it calibrated.
func (m *Main) openCalibrator() {
	log := m.logger("recognizer")
	m.Calibrator = recognizer.NewCalibrator(m.Matcher, m.Config.calibratorConfig(), log)
	start := time.Now()
	cal := m.Calibrator.Current()
	log.Info("gallery calibrated", "users", cal.Users, "calibrated", cal.Calibrated, "threshold", m.Matcher.Threshold(),
		"identify_threshold", cal.IdentifyThreshold, "duplicate_distance", cal.DuplicateDistance, "dense", cal.Dense,
		"took", time.Since(start).Round(time.Millisecond))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(calibrateEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				m.Calibrator.Current()
			}
		}
	}()
	m.addCloser(func() error { close(stop); <-done; return nil })
}

// runCalibrate prints the calibration of the enrolled gallery (or, with
// -idols, of a gallery file in the shared test data's format) as JSON.
func (m *Main) runCalibrate(ctx context.Context) error {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	idols := fs.String("idols", "", "calibrate this gallery file (idols.json format) instead of the store")
	target := fs.Float64("target", m.Config.Recognizer.TargetFalseMatchRate, "target false-match rate per identification")
	if err := fs.Parse(m.Args); err != nil {
		return err
	}
	cfg := m.Config.calibratorConfig().CalibrationConfig
	if *target != 0 {
		cfg.TargetFMR = *target
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("calibrate -target %g: %w", *target, err)
	}
	matcher := recognizer.NewMatcher(m.Config.matcherConfig())
	if *idols != "" {
		recs, err := registrysim.LoadIdols(*idols)
		if err != nil {
			return err
		}
		for _, r := range recs {
			for _, e := range r.Encodings {
				matcher.AddDescriptors(r.User.ID, e.Descriptor)
			}
		}
	} else {
		if err := m.openStore(); err != nil {
			return err
		}
		if err := recognizer.NewGallery(m.DB, matcher, nil).Load(ctx); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(matcher.Calibrate(cfg))
}
