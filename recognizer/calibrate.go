package recognizer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/kioskd/kioskd/models"
)

// Calibration defaults; docs/accuracy.md gives the measurements behind them.
const (
	// DefaultTargetFMR is the default target false-match rate per
	// identification: 1 stranger in 10,000 named as somebody.
	DefaultTargetFMR = 1e-4
	// DefaultDuplicateRate is the share of enrolments of a new, distinct
	// person that may be refused outright as another enrolled user (the
	// union over the N users, as for identification); an admin's force
	// still enrols them.
	DefaultDuplicateRate = 1e-3
	// DefaultDuplicateFloor: a face this close to another user's is always an
	// outright duplicate, however the gallery's impostor tail looks (a gallery
	// may hold the same photo under two names).
	DefaultDuplicateFloor = 0.2
	// DefaultDuplicateCap: the outright-duplicate distance never exceeds it.
	// Photos of one person are 0.25-0.6 apart (median 0.39-0.40 on every
	// shared population), so above 0.4 "the same person" is not certain
	// enough to refuse without a technician's look.
	DefaultDuplicateCap = 0.4
	// DefaultVerifyMargin is how far under a user's nearest other user a
	// 1:1 claim must stay: between two photos of one person dlib distances
	// wander by 0.02-0.05.
	DefaultVerifyMargin = 0.02
	// DenseThreshold: an identification threshold under it leaves most of a
	// person's other photos unmatched (same-person distances have a median
	// of 0.39-0.40 on every shared population), so face-only 1:N is not
	// usable at the target rate and the gallery is reported as dense.
	DenseThreshold = 0.4
	// DefaultMaxPairs bounds the pairs a calibration measures; bigger
	// galleries are sampled (200,000 random pairs move the idols gallery's
	// thresholds by under 0.02; docs/accuracy.md).
	DefaultMaxPairs = 200_000
	// DefaultPriorPairs is how many impostor pairs the population prior
	// is worth (DefaultImpostorPrior).
	DefaultPriorPairs = 5
	// nearIdentical: impostor pairs closer than this are one photo under two
	// names (a labelling error), counted apart and left out of the fit.
	nearIdentical = 0.1
	// minFitPairs is the fewest impostor pairs a fit is made from (3 users).
	minFitPairs = 3
	// MinDuplicateUsers: with fewer users the impostor tail is too
	// uncertain to refuse on, and only faces within the floor are refused
	// outright (refusing is the harm this rule must avoid).
	MinDuplicateUsers = 20
)

// DistanceStats summarises a set of pair distances.
type DistanceStats struct {
	Pairs   int     `json:"pairs"`
	Sampled bool    `json:"sampled,omitempty"`
	Min     float64 `json:"min"`
	P0001   float64 `json:"p0_01"` // 0.01% quantile
	P001    float64 `json:"p0_1"`
	P01     float64 `json:"p1"`
	P05     float64 `json:"p5"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
	SD      float64 `json:"sd"`
}

// Calibration is what the enrolled gallery says about itself: its impostor
// (different users) and genuine (one user's own descriptors) distances, and
// the operating points derived from them.
type Calibration struct {
	Users       int           `json:"users"`
	Descriptors int           `json:"descriptors"`
	Impostor    DistanceStats `json:"impostor"`
	Genuine     DistanceStats `json:"genuine"`
	// NearIdentical counts impostor pairs under 0.1: one photo under two
	// names; they are left out of the fit and reported.
	NearIdentical int `json:"near_identical_pairs"`
	// TargetFMR is the target false-match rate per identification.
	TargetFMR float64 `json:"target_false_match_rate"`
	// Calibrated is false when the gallery is too small to fit (fewer than
	// 3 users); the thresholds are then the fallbacks.
	Calibrated bool `json:"calibrated"`
	// IdentifyThreshold is the derived 1:N threshold for TargetFMR with
	// this gallery's size; EffectiveThreshold is what the matcher uses: the
	// lower of it and the configured ceiling.
	IdentifyThreshold  float64 `json:"identify_threshold"`
	EffectiveThreshold float64 `json:"effective_threshold"`
	// GenuineAcceptRate is the share of genuine pairs within the effective
	// threshold (-1 when the gallery has no user with two descriptors).
	GenuineAcceptRate float64 `json:"genuine_accept_rate"`
	// VerifyThreshold is the 1:1 ceiling for TargetFMR per attempt; each
	// user's own threshold is also kept under its nearest other user.
	VerifyThreshold float64 `json:"verify_threshold"`
	// DuplicateDistance: another user's face closer than this is the same
	// person outright (409 duplicate).
	DuplicateDistance float64 `json:"duplicate_distance"`
	// Dense is true when face-only 1:N cannot reach TargetFMR here while
	// still naming most people; Warning says so in words.
	Dense   bool   `json:"dense"`
	Warning string `json:"warning,omitempty"`
	warn    galleryWarning
}

// galleryWarning is the kind of Calibration.Warning: the Calibrator logs
// each kind once.
type galleryWarning int

const (
	warnNone   galleryWarning = iota
	warnTooFew                // under 3 users: nothing fitted, the ceiling stays
	warnHeld                  // a small gallery the prior holds under DenseThreshold
	warnDense                 // the population is too dense for face-only 1:N
)

// text is the warning's words for a gallery of users whose threshold is
// threshold ("" for warnNone).
func (w galleryWarning) text(users int, threshold float64) string {
	switch w {
	case warnTooFew:
		who := fmt.Sprintf("Only %d people", users)
		if users == 1 {
			who = "Only 1 person"
		}
		return who + fmt.Sprintf(" enrolled: too few to measure how alike different people's faces are here, "+
			"so the threshold stays at %.2f, and where faces are alike a stranger may be named. "+
			"Enrol at least 3 people or use ID + face; docs/accuracy.md says why.", threshold)
	case warnHeld:
		return fmt.Sprintf("Only %d people enrolled: until more are, the threshold is held at %.2f, "+
			"cautious enough for a population whose faces are alike, so some enrolled people may not be recognised. "+
			"Enrol more people or use ID + face; docs/accuracy.md, \"Small galleries\", says why.", users, threshold)
	case warnDense:
		return "This gallery is too dense for face-only identification at the target false-match rate: " +
			"most people would not be recognised at the safe threshold. Use ID + face (1:1) for this population; docs/accuracy.md says how to choose."
	}
	return ""
}

// CalibrationConfig tunes the derivation. Its fields are used as given:
// start from DefaultCalibrationConfig and check a changed one with Validate.
type CalibrationConfig struct {
	TargetFMR float64 // per identification, in (0, 1)
	Ceiling   float64 // the configured threshold: never exceeded
	// Fixed keeps the ceiling as the effective threshold (report only).
	Fixed          bool
	DuplicateRate  float64 // per enrolment of a distinct person, in (0, 1)
	DuplicateFloor float64
	DuplicateCap   float64 // at least DuplicateFloor
	MaxPairs       int     // pairs measured at most; bigger galleries are sampled
	// Prior is the impostor distribution assumed until the gallery shows
	// its own (Pairs 0: none, and galleries under 3 users keep the ceiling).
	Prior ImpostorPrior
}

// DefaultCalibrationConfig returns the calibration defaults (see the
// constants above and docs/accuracy.md).
func DefaultCalibrationConfig() CalibrationConfig {
	return CalibrationConfig{
		TargetFMR:      DefaultTargetFMR,
		Ceiling:        DefaultThreshold,
		DuplicateRate:  DefaultDuplicateRate,
		DuplicateFloor: DefaultDuplicateFloor,
		DuplicateCap:   DefaultDuplicateCap,
		MaxPairs:       DefaultMaxPairs,
		Prior:          DefaultImpostorPrior(),
	}
}

// Validate returns an EINVALID error naming the first field out of range.
func (c CalibrationConfig) Validate() error {
	bad := func(field string, v any, want string) error {
		return models.Errorf(models.EINVALID, "calibration config: %s is %v, must be %s (start from recognizer.DefaultCalibrationConfig)", field, v, want)
	}
	switch {
	case !(c.TargetFMR > 0 && c.TargetFMR < 1):
		return bad("TargetFMR", c.TargetFMR, "in (0, 1)")
	case !(c.Ceiling > 0 && c.Ceiling <= 2):
		return bad("Ceiling", c.Ceiling, "in (0, 2]")
	case !(c.DuplicateRate > 0 && c.DuplicateRate < 1):
		return bad("DuplicateRate", c.DuplicateRate, "in (0, 1)")
	case !(c.DuplicateFloor > 0 && c.DuplicateFloor <= 2):
		return bad("DuplicateFloor", c.DuplicateFloor, "in (0, 2]")
	case !(c.DuplicateCap >= c.DuplicateFloor && c.DuplicateCap <= 2):
		return bad("DuplicateCap", c.DuplicateCap, "in [DuplicateFloor, 2]")
	case c.MaxPairs <= 0:
		return bad("MaxPairs", c.MaxPairs, "at least 1")
	case c.Prior.Pairs < 0:
		return bad("Prior.Pairs", c.Prior.Pairs, "at least 0")
	case c.Prior.Pairs > 0 && !(c.Prior.Mean > 0 && c.Prior.Mean <= 2):
		return bad("Prior.Mean", c.Prior.Mean, "in (0, 2]")
	case c.Prior.Pairs > 0 && !(c.Prior.SD > 0 && c.Prior.SD < 1):
		return bad("Prior.SD", c.Prior.SD, "in (0, 1)")
	}
	return nil
}

// Summarize returns the statistics of ds, sorting ds in place.
func Summarize(ds []float64) DistanceStats {
	s := DistanceStats{Pairs: len(ds)}
	if len(ds) == 0 {
		return s
	}
	slices.Sort(ds)
	var sum, sq float64
	for _, d := range ds {
		sum += d
	}
	s.Mean = sum / float64(len(ds))
	for _, d := range ds {
		sq += (d - s.Mean) * (d - s.Mean)
	}
	s.SD = math.Sqrt(sq / float64(len(ds)))
	s.Min, s.Max = ds[0], ds[len(ds)-1]
	s.P0001, s.P001, s.P01 = Quantile(ds, 1e-4), Quantile(ds, 1e-3), Quantile(ds, 0.01)
	s.P05, s.P50, s.P90 = Quantile(ds, 0.05), Quantile(ds, 0.5), Quantile(ds, 0.9)
	return s
}

// Quantile returns the q-quantile of sorted (the lower nearest rank); NaN
// when sorted is empty.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Floor(q * float64(len(sorted)-1)))
	return sorted[max(0, min(i, len(sorted)-1))]
}

// normQuantile is the standard normal's inverse CDF.
func normQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }

// ImpostorPrior is the impostor distribution a calibration assumes before
// the gallery has shown its own: a normal of mean Mean and spread SD, worth
// Pairs impostor pairs of evidence. A gallery of a few users cannot tell a
// sparse population from a dense one, and strangers come from the enrolled
// people's own population, so the prior is the densest population measured
// (docs/accuracy.md); the gallery's own pairs take over as it grows. The
// zero value is no prior.
type ImpostorPrior struct {
	Mean, SD float64
	Pairs    int
}

// DefaultImpostorPrior returns the impostor distribution of the densest
// population measured (docs/accuracy.md), worth DefaultPriorPairs pairs: a
// gallery of four users outweighs it.
func DefaultImpostorPrior() ImpostorPrior {
	return ImpostorPrior{Mean: 0.50, SD: 0.067, Pairs: DefaultPriorPairs}
}

// TailQuantile estimates the p-quantile of the impostor distribution whose
// sorted sample is imp, for p often far below 1/len(imp): a normal fitted
// to the sample, its spread the larger of the standard deviation and the
// one the 1% quantile implies (the lower tail is what matters), shrunk
// towards prior pair for pair, its mean lowered by one standard error over
// users (few users, uncertain mean). When the sample resolves p (10 pairs
// or more under it) the empirical quantile is used if it is lower. NaN
// when there is neither a sample nor a prior.
func TailQuantile(imp []float64, users int, p float64, prior ImpostorPrior) float64 {
	st := Summarize(imp)
	w0 := float64(max(prior.Pairs, 0))
	if st.Pairs == 0 && w0 == 0 {
		return math.NaN()
	}
	mean, sd := prior.Mean, prior.SD
	if st.Pairs > 0 {
		s := st.SD
		if st.Pairs >= 1000 {
			s = max(s, (st.P50-st.P01)/-normQuantile(0.01))
		}
		w := float64(st.Pairs)
		mean = (w*st.Mean + w0*prior.Mean) / (w + w0)
		sd = math.Sqrt((w*s*s + w0*prior.SD*prior.SD) / (w + w0))
	}
	mean -= sd / math.Sqrt(float64(max(users, 1)))
	t := mean + sd*normQuantile(p)
	if p*float64(st.Pairs) >= 10 {
		t = min(t, Quantile(imp, p))
	}
	return max(t, 0)
}

// IdentifyThreshold is the 1:N threshold for a target false-match rate per
// identification against users enrolled users: a stranger is named when
// any of the N users is within it, so each pair may be within it with
// probability at most target/N (the union bound).
func IdentifyThreshold(imp []float64, users int, target float64, prior ImpostorPrior) float64 {
	return TailQuantile(imp, users, target/float64(max(users, 1)), prior)
}

// DuplicateDistance is the outright-duplicate distance: closer than almost
// any two different users here, so that a new, distinct person is refused
// outright in at most a share rate of enrolments against users enrolled
// users (each pair may be within it with probability rate/N), kept within
// [floor, cap].
func DuplicateDistance(imp []float64, users int, rate, floor, ceil float64) float64 {
	t := TailQuantile(imp, users, rate/float64(max(users, 1)), ImpostorPrior{})
	if math.IsNaN(t) {
		return floor
	}
	return min(max(t, floor), ceil)
}

// VerifyThreshold is a user's 1:1 threshold: the gallery's 1:1 ceiling,
// and at least margin under the user's nearest other user (so an enrolled
// classmate's face does not pass for this user).
func VerifyThreshold(ceiling, nearestOther, margin float64) float64 {
	return max(0, min(ceiling, nearestOther-margin))
}

// AcceptRate is the share of sorted within t; -1 when sorted is empty.
func AcceptRate(sorted []float64, t float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	n, _ := slices.BinarySearch(sorted, math.Nextafter(t, math.Inf(1)))
	return float64(n) / float64(len(sorted))
}

// Derive computes the operating points from impostor and genuine pair
// distances of a gallery of users (both slices are sorted in place).
func Derive(imp, gen []float64, users, descriptors int, cfg CalibrationConfig) Calibration {
	c := Calibration{Users: users, Descriptors: descriptors, TargetFMR: cfg.TargetFMR, GenuineAcceptRate: -1}
	slices.Sort(imp)
	k, _ := slices.BinarySearch(imp, nearIdentical)
	c.NearIdentical = k
	fit := imp[k:]
	c.Impostor, c.Genuine = Summarize(imp), Summarize(gen)
	c.IdentifyThreshold, c.VerifyThreshold = cfg.Ceiling, cfg.Ceiling
	c.DuplicateDistance = cfg.DuplicateFloor
	if len(fit) >= minFitPairs && users >= 3 {
		c.Calibrated = true
		c.IdentifyThreshold = IdentifyThreshold(fit, users, cfg.TargetFMR, cfg.Prior)
		c.VerifyThreshold = min(cfg.Ceiling, TailQuantile(fit, users, cfg.TargetFMR, cfg.Prior))
		if users >= MinDuplicateUsers {
			c.DuplicateDistance = DuplicateDistance(fit, users, cfg.DuplicateRate, cfg.DuplicateFloor, cfg.DuplicateCap)
		}
	}
	c.EffectiveThreshold = min(cfg.Ceiling, c.IdentifyThreshold)
	if cfg.Fixed {
		c.EffectiveThreshold = cfg.Ceiling
	}
	c.GenuineAcceptRate = AcceptRate(gen, c.EffectiveThreshold)
	// Dense judges the derived point, whatever threshold is in use.
	derived := min(cfg.Ceiling, c.IdentifyThreshold)
	switch {
	case !c.Calibrated:
	case len(gen) >= 20:
		c.Dense = AcceptRate(gen, derived) < 0.5
	default:
		c.Dense = derived < DenseThreshold
	}
	// The prior still weighs a tenth or more of the fit: the gallery is
	// small, not known to be dense.
	held := c.Calibrated && cfg.Prior.Pairs > 0 && len(fit) < 9*cfg.Prior.Pairs
	switch {
	case c.Dense && held:
		c.warn = warnHeld
	case c.Dense:
		c.warn = warnDense
	case !c.Calibrated && users > 0 && !cfg.Fixed:
		c.warn = warnTooFew
	}
	c.Warning = c.warn.text(users, derived)
	return c
}

// pairDistances returns the impostor and genuine pair distances of the
// matcher's rows: all pairs when there are at most maxPairs, otherwise
// maxPairs random pairs (seeded, so one gallery gives one answer) plus
// every genuine pair up to maxPairs. The caller holds the read lock.
func (m *Matcher) pairDistances(maxPairs int) (imp, gen []float64, sampled bool) {
	n := len(m.owner)
	total := n * (n - 1) / 2
	if total <= maxPairs {
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				d := m.rowPair(int32(i), int32(j))
				if m.owner[i] == m.owner[j] {
					gen = append(gen, d)
				} else {
					imp = append(imp, d)
				}
			}
		}
		return imp, gen, false
	}
	r := rand.New(rand.NewPCG(uint64(n), 0x6b696f736b64))
	for range maxPairs {
		i, j := int32(r.IntN(n)), int32(r.IntN(n))
		if m.owner[i] != m.owner[j] {
			imp = append(imp, m.rowPair(i, j))
		}
	}
	for _, u := range m.users {
		for a := 0; a < len(u.rows) && len(gen) < maxPairs; a++ {
			for b := a + 1; b < len(u.rows); b++ {
				gen = append(gen, m.rowPair(u.rows[a], u.rows[b]))
			}
		}
	}
	return imp, gen, true
}

// rowPair is the float64 distance between two rows.
func (m *Matcher) rowPair(i, j int32) float64 {
	return dist64(m.vecs[int(i)*dim:int(i+1)*dim], m.vecs[int(j)*dim:int(j+1)*dim])
}

// Calibrate measures the gallery held by m and derives its operating
// points. It reads the gallery under the read lock and does not change m.
func (m *Matcher) Calibrate(cfg CalibrationConfig) Calibration {
	m.mu.RLock()
	imp, gen, sampled := m.pairDistances(cfg.MaxPairs)
	users, n := len(m.index), len(m.owner)
	m.mu.RUnlock()
	c := Derive(imp, gen, users, n, cfg)
	c.Impostor.Sampled, c.Genuine.Sampled = sampled, sampled
	return c
}
