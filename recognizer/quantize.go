package recognizer

import (
	"math"

	"github.com/kioskd/kioskd/models"
)

// quantScale is the fixed scale S of the int8 copy: a component x is stored
// as clamp(round(x*S), -127, 127), so codes cover ±127/256 = ±0.496. Real
// dlib descriptors stay well inside (the 1,286 of the shared test gallery
// span -0.435..0.435, RMS 0.125); the rare component beyond is clamped, which
// only widens that row's error bound. A power of two keeps x*S and q/S exact
// in float64, so the error computed below is exact up to the summation.
const quantScale = 256

// maxRowErr is the largest quantisation error a row may have and still be
// pruned by the int8 pass. Rounding alone gives ||x - q/S|| about
// sqrt(128/12)/256 = 0.0128 (at most sqrt(128)/512 = 0.022); 0.016 is beyond
// any rounding-only row of a million (7 sigma) but keeps the hot loop's
// shared bound tight. Rows with a larger error (heavy clamping) are "wide":
// they are always reranked exactly instead.
const maxRowErr = 0.016

// boundSlack is a relative slack added to every bound derived from the int8
// pass. The bounds hold for real numbers; the floating-point values they are
// compared with (sqrt, sums, and rowDistance's float64 sum of 128 squares,
// relative error below 1.5e-14) differ from the real ones by far less.
const boundSlack = 1e-9

// quantize writes d's int8 codes into codes and returns an upper bound on the
// quantisation error ||d - codes/S||, rounded up to float32. ok is false when
// d has a NaN or infinite component: such a row has no meaningful code (its
// float64 distance to anything is NaN or +Inf, so it never matches).
func quantize(d *models.Descriptor, codes *[dim]int8) (errBound float32, ok bool) {
	var s float64
	for i, x := range d {
		v := float64(x)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			clear(codes[:])
			return float32(math.Inf(1)), false
		}
		c := math.Round(v * quantScale) // exact product: 24-bit mantissa times 2^8
		c = max(-127, min(127, c))
		codes[i] = int8(c)
		// Exact while |x| < 2^45 (both terms are multiples of 2^-33 or of
		// x's ulp, and small); beyond, one rounding, which the slack covers.
		e := v - c/quantScale
		s += e * e
	}
	// The float64 sum and sqrt are off by at most ~130 ulps (relative 1.5e-14);
	// 1e-12 covers that, then round up to float32 so the stored bound is never
	// below the real error.
	return roundUp32(math.Sqrt(s) * (1 + 1e-12)), true
}

// roundUp32 converts v to the nearest float32 not below it.
func roundUp32(v float64) float32 {
	f := float32(v)
	if float64(f) < v {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

// query is a probe prepared for the int8 pass: its codes widened to int16
// (the kernels subtract in 16 bits) and its quantisation error bound.
type query struct {
	codes [dim]int16
	err   float64
}

// set quantises d; ok is false when d is not finite.
func (q *query) set(d *models.Descriptor) (ok bool) {
	var c [dim]int8
	e, ok := quantize(d, &c)
	for i, v := range c {
		q.codes[i] = int16(v)
	}
	q.err = float64(e)
	return ok
}

// approxBounds returns bounds [lo, hi] on the float64 distance between a
// probe and a row from their int8 squared distance sq and the two
// quantisation error bounds. By the triangle inequality the real distance is
// within eq+er of sqrt(sq)/S, the distance of the quantised points (exact:
// sq is an exact integer); boundSlack covers the floating-point evaluation.
func approxBounds(sq int32, eq, er float64) (lo, hi float64) {
	a := math.Sqrt(float64(sq)) / quantScale
	e := eq + er
	return a - e - boundSlack*(a+e), (a + e) * (1 + boundSlack)
}

// sqLimit returns the largest int8 squared distance a row can have and still
// have a lower bound (approxBounds with an error of at most eq+eMax) not above
// ub. Every row beyond it is provably farther than ub. Saturates at MaxInt32.
func sqLimit(ub, eBoth float64) int32 {
	// lo > ub  <=  a*(1-slack) > ub + eBoth*(1+slack), a = sqrt(sq)/S.
	t := quantScale * (ub + eBoth*(1+boundSlack)) / (1 - boundSlack)
	t2 := t * t * (1 + 1e-12) // the rounding of t and t*t, and of lo itself
	if !(t2 < math.MaxInt32-1) {
		return math.MaxInt32
	}
	return int32(math.Ceil(t2)) + 1
}
