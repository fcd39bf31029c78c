package recognizer

import (
	"log/slog"
	"sync"
	"time"

	"github.com/kioskd/kioskd/models"
)

// CalibratorConfig tunes a Calibrator. Its fields are used as given: start
// from DefaultCalibratorConfig and check a changed one with Validate.
type CalibratorConfig struct {
	CalibrationConfig
	// Apply sets the matcher's threshold to each calibration's effective
	// threshold; false only reports (the configured threshold stays).
	Apply bool
	// MinInterval is the least time between two calibrations of a changing
	// gallery (a sync burst); until then the last one is served.
	MinInterval time.Duration
	// VerifyMargin is how far under a user's nearest other user a 1:1
	// claim must stay.
	VerifyMargin float64
}

// DefaultCalibratorConfig returns a configuration that applies each
// calibration with the default target, at most every 10 s.
func DefaultCalibratorConfig() CalibratorConfig {
	return CalibratorConfig{
		CalibrationConfig: DefaultCalibrationConfig(),
		Apply:             true,
		MinInterval:       10 * time.Second,
		VerifyMargin:      DefaultVerifyMargin,
	}
}

// Validate returns an EINVALID error naming the first field out of range.
func (c CalibratorConfig) Validate() error {
	if err := c.CalibrationConfig.Validate(); err != nil {
		return err
	}
	switch {
	case c.MinInterval < 0:
		return models.Errorf(models.EINVALID, "calibrator config: MinInterval is %v, must not be negative", c.MinInterval)
	case !(c.VerifyMargin >= 0 && c.VerifyMargin < 1):
		return models.Errorf(models.EINVALID, "calibrator config: VerifyMargin is %v, must be in [0, 1)", c.VerifyMargin)
	}
	return nil
}

// Calibrator keeps the calibration of a Matcher's gallery current: it
// recalibrates when the gallery changed (at most once per MinInterval),
// applies the operating point to the matcher, and warns when the gallery
// turns dense. Safe for concurrent use.
type Calibrator struct {
	m      *Matcher
	cfg    CalibratorConfig
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	cur     Calibration
	version uint64
	at      time.Time
	done    bool
}

// NewCalibrator returns a Calibrator of m; it calibrates on first use.
func NewCalibrator(m *Matcher, cfg CalibratorConfig, logger *slog.Logger) *Calibrator {
	if logger == nil {
		logger = slog.Default()
	}
	return &Calibrator{m: m, cfg: cfg, logger: logger, now: time.Now}
}

// Current returns the calibration of the gallery, recalibrating first
// when the gallery changed and MinInterval has passed since the last one.
func (c *Calibrator) Current() Calibration {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.m.Version()
	if c.done && (v == c.version || c.now().Sub(c.at) < c.cfg.MinInterval) {
		return c.cur
	}
	start := c.now()
	cfg := c.cfg.CalibrationConfig
	cfg.Fixed = !c.cfg.Apply
	cal := c.m.Calibrate(cfg)
	if c.cfg.Apply {
		c.m.SetThreshold(cal.EffectiveThreshold)
	}
	warned := c.done && c.cur.warn == cal.warn // once per kind of warning
	c.cur, c.version, c.at, c.done = cal, v, c.now(), true
	c.logger.Debug("gallery calibrated", "users", cal.Users, "descriptors", cal.Descriptors,
		"threshold", cal.EffectiveThreshold, "duplicate_distance", cal.DuplicateDistance, "took", c.now().Sub(start))
	if cal.warn != warnNone && !warned {
		c.logger.Warn("gallery unfit for face-only identification", "users", cal.Users, "dense", cal.Dense,
			"identify_threshold", cal.IdentifyThreshold, "genuine_accept_rate", cal.GenuineAcceptRate,
			"target_false_match_rate", cal.TargetFMR, "advice", cal.Warning)
	}
	return cal
}

// DuplicateDistance is the current outright-duplicate distance.
func (c *Calibrator) DuplicateDistance() float64 { return c.Current().DuplicateDistance }

// Verify checks d against userID only, at the user's calibrated 1:1
// threshold.
func (c *Calibrator) Verify(userID string, d *models.Descriptor) Verification {
	cal := c.Current()
	return c.m.Verify(userID, d, cal.VerifyThreshold, c.cfg.VerifyMargin)
}

// NearestOther returns the user nearest to d other than userID and its
// distance; "" and +Inf when there is none.
func (c *Calibrator) NearestOther(userID string, d *models.Descriptor) (string, float64) {
	return c.m.NearestOther(userID, d)
}

// Verifiable reports whether the 1:1 check of some enrolled user could
// accept a face whose 1:N answer is m: its nearest user is within that
// user's own threshold, or another user is within the 1:1 ceiling (which
// bounds every user's threshold). False means the face matches nobody,
// whatever ID it shows: a stranger.
func (c *Calibrator) Verifiable(m models.Match) bool {
	if m.BestUserID == "" {
		return false
	}
	ceiling := c.Current().VerifyThreshold
	switch {
	case m.RunnerUpDistance <= ceiling:
		return true
	case !(m.Distance <= ceiling): // beyond every user's threshold
		return false
	}
	t, ok := c.m.VerifyThresholdOf(m.BestUserID, ceiling, c.cfg.VerifyMargin)
	return ok && m.Distance <= t
}

// VerifyUser is Verify in the local API's terms.
func (c *Calibrator) VerifyUser(userID string, d *models.Descriptor) (match bool, distance, threshold float64, enrolled bool) {
	v := c.Verify(userID, d)
	return v.Match, v.Distance, v.Threshold, v.Enrolled
}

// Report is the current calibration, for the status endpoint.
func (c *Calibrator) Report() any { return c.Current() }
