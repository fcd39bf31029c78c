package recognizer

import (
	"math"
	"slices"

	"github.com/kioskd/kioskd/models"
)

// Identify works in three stages, each keeping only the rows that can still
// be the best row or the runner-up (the nearest row of another user), and
// each provably: a row is dropped only when a lower bound on its distance
// exceeds an upper bound on the runner-up's, so it is strictly worse than
// both. The result is therefore the float64 brute force's, bit for bit.
//
//  1. The int8 pass (scan) streams the int8 copy: 128 bytes a row instead of
//     512, exact integer distances of the quantised points, and the
//     triangle inequality for bounds on the real distance. Where there is no
//     SIMD int8 kernel (purego, other architectures, no AVX2) scan32 streams
//     the float32 rows with the float32 kernel and its error bound instead:
//     in plain Go the int8 kernel is twice as slow per row as the float32 one.
//  2. When many rows survive (a probe nearly equidistant from many rows),
//     the float32 kernel, whose rounding error is bounded too, narrows them.
//  3. The survivors are ranked by rowDistance, the reference's own float64
//     sum, in row order so that ties resolve as in a brute-force scan.

// scanBlock is how many rows' int8 squared distances are computed before
// they are checked: 1 KiB of results that stays in L1 cache.
const scanBlock = 256

// int8Scan selects the int8 pass (scan) over the float32 one (scan32): only
// where the int8 kernel is SIMD (a variable so tests can run both).
var int8Scan = haveAVX2

// rerank32Min is the candidate count above which the float32 stage runs
// before the float64 rerank (a variable so tests can force either path).
var rerank32Min = 16

// The float32 kernels' error bound on a squared distance: each of the 128
// squared differences suffers at most 3 roundings (difference, product, sum)
// and the additions at most 127 more in any order, so the result is within
// 130 units of 2^-24 (7.8e-6) of the real value, relatively; f32Abs covers
// the absolute error of subnormal intermediates.
const (
	f32Rel = 1e-5
	f32Abs = 1e-37
)

// top2 tracks, over the rows fed to it, the smallest value and the smallest
// value among rows of any other user: with upper bounds, d2 bounds the
// runner-up's distance; with exact distances, r1 and r2 are the best and
// runner-up rows. Ties keep the earlier row (strict <); NaN is ignored.
type top2 struct {
	d1, d2 float64
	u1     int32
	r1, r2 int32
}

func newTop2() top2 {
	inf := math.Inf(1)
	return top2{d1: inf, d2: inf, u1: -1, r1: -1, r2: -1}
}

func (t *top2) add(d float64, u, row int32) {
	switch {
	case d < t.d1:
		if u != t.u1 {
			t.d2, t.r2 = t.d1, t.r1
		}
		t.d1, t.u1, t.r1 = d, u, row
	case d < t.d2 && u != t.u1:
		t.d2, t.r2 = d, row
	}
}

// Identify returns the best match for d: the user owning the nearest
// descriptor, its distance, and the distance of the nearest descriptor of any
// other user, all exactly as a float64 brute force finds them. Known is true
// when the distance is within the threshold and the runner-up is at least
// Margin farther. An empty gallery never matches; neither does a probe with a
// NaN or infinite component, nor a row with one.
func (m *Matcher) Identify(d *models.Descriptor) models.Match {
	inf := math.Inf(1)
	miss := models.Match{Distance: inf, RunnerUpDistance: inf}
	if d == nil {
		return miss
	}
	var q query
	if !q.set(d) { // every float64 distance would be NaN or +Inf
		return miss
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.nearestTwo(d, &q)
	if t.r1 < 0 { // empty, or every row is NaN or infinite
		return miss
	}
	match := models.Match{Distance: t.d1, RunnerUpDistance: t.d2, BestUserID: m.users[t.u1].id}
	if match.Distance <= m.threshold && match.RunnerUpDistance-match.Distance >= m.margin {
		match.Known = true
		match.UserID = match.BestUserID
	}
	return match
}

// nearestTwo returns the best row and the runner-up (the nearest row of
// another user) for d, quantised as q; r1 < 0 when there is none. The
// caller holds the read lock.
func (m *Matcher) nearestTwo(d *models.Descriptor, q *query) top2 {
	if len(m.owner) == 0 {
		return newTop2()
	}
	var buf [256]int32
	var cands []int32
	if int8Scan {
		cands, _ = m.scan(q, buf[:0])
	} else {
		cands = m.scan32(d, buf[:0])
	}
	return m.rerank(d, cands)
}

// scan is the int8 pass. It appends to cands, in row order, every row that
// may be the best row or the runner-up, plus the wide rows, and returns it
// with the number of rows that passed the hot loop's integer test (before the
// final per-row filter), for the benchmark's report.
//
// For each row the int8 kernel gives sq, the exact squared distance of the
// quantised points; approxBounds turns it into [lo, hi] around the float64
// distance. The hi of the rows seen so far, per user, give ub2, an upper
// bound on the runner-up's distance (two distinct users are that close). A
// row with lo > ub2 is strictly farther than the runner-up, hence neither
// best nor runner-up. ub2 only decreases, so the hot loop tests sq against
// sqLimit(ub2), computed with the largest row error: one integer compare per
// row, and only the few rows under the limit pay for bounds.
func (m *Matcher) scan(q *query, cands []int32) (_ []int32, passed int) {
	var pendBuf [256]candidate
	pend := pendBuf[:0]
	ubs := newTop2()
	limit := int32(math.MaxInt32)
	eBoth := q.err + float64(m.errMax)
	var buf [scanBlock]int32
	n := len(m.owner)
	for start := 0; start < n; start += scanBlock {
		k := min(scanBlock, n-start)
		if sqDists8(&q.codes, m.codes[start*dim:(start+k)*dim], buf[:k]) > limit {
			continue // the common case: no row of the block is close
		}
		for i, v := range buf[:k] {
			if v > limit { // provably out
				continue
			}
			row := int32(start + i)
			er := m.errs[row]
			if !(er <= maxRowErr) { // wide (handled below) or not finite (never matches)
				continue
			}
			lo, hi := approxBounds(v, q.err, float64(er))
			pend = append(pend, candidate{row, lo})
			if hi < ubs.d2 {
				ubs.add(hi, m.owner[row], row)
				limit = sqLimit(ubs.d2, eBoth)
			}
		}
	}
	cands = keepUnder(cands, pend, ubs.d2)
	if len(m.wide) > 0 {
		cands = append(cands, m.wide...)
		slices.Sort(cands)
	}
	return cands, len(pend)
}

// candidate is a row a first pass kept, with a lower bound on its distance.
type candidate struct {
	row int32
	lo  float64
}

// keepUnder appends to cands, in order, the rows of pend whose lower bound
// is at most ub (the runner-up's upper bound): the others are provably
// neither the best nor the runner-up.
func keepUnder(cands []int32, pend []candidate, ub float64) []int32 {
	for _, c := range pend {
		if c.lo <= ub {
			cands = append(cands, c.row)
		}
	}
	return cands
}

// rerank returns the best and runner-up rows among cands (in row order) by
// rowDistance, after the float32 stage when there are many.
func (m *Matcher) rerank(d *models.Descriptor, cands []int32) top2 {
	if len(cands) > rerank32Min {
		cands = m.prune32(d, cands)
	}
	t := newTop2()
	for _, r := range cands {
		t.add(m.rowDistance(d, r), m.owner[r], r)
	}
	return t
}

// bounds32 turns a float32 kernel result sq (a squared distance) into bounds
// [lo, hi] on the float64 distance; ok is false when sq overflowed (or is
// NaN) and bounds nothing.
func bounds32(sq float32) (lo, hi float64, ok bool) {
	f := float64(sq)
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, math.Inf(1), false
	}
	lo = math.Sqrt(max(0, f*(1-f32Rel)-f32Abs)) * (1 - boundSlack)
	hi = math.Sqrt(f*(1+f32Rel)+f32Abs) * (1 + boundSlack)
	return lo, hi, true
}

// sqLimit32 is sqLimit for float32 kernel results: every row whose sq is
// above it has bounds32 lo > ub. +Inf when the limit nears the float32
// range, so that a row whose sum overflowed (its real squared distance is
// about MaxFloat32 or more) is then kept, not dropped.
func sqLimit32(ub float64) float32 {
	// lo > ub  <=  f*(1-rel) - abs > (ub/(1-slack))^2.
	u := ub / (1 - boundSlack)
	l := (u*u + f32Abs) / (1 - f32Rel) * (1 + 1e-12)
	if !(l < math.MaxFloat32/4) {
		return float32(math.Inf(1))
	}
	return roundUp32(l)
}

// scan32 is scan with the float32 kernel over the float32 rows and the
// bounds of bounds32: the first pass where the int8 kernel is not SIMD. It
// appends the candidates to cands in row order.
func (m *Matcher) scan32(d *models.Descriptor, cands []int32) []int32 {
	var pendBuf [256]candidate
	pend := pendBuf[:0]
	ubs := newTop2()
	limit := float32(math.Inf(1))
	var buf [scanBlock]float32
	n := len(m.owner)
	for start := 0; start < n; start += scanBlock {
		k := min(scanBlock, n-start)
		sqDists(d, m.vecs[start*dim:(start+k)*dim], buf[:k])
		for i, v := range buf[:k] {
			if v > limit || v != v { // provably out, or NaN: a non-finite row
				continue
			}
			row := int32(start + i)
			lo, hi, ok := bounds32(v)
			pend = append(pend, candidate{row, lo})
			if ok && hi < ubs.d2 {
				ubs.add(hi, m.owner[row], row)
				limit = sqLimit32(ubs.d2)
			}
		}
	}
	cands = keepUnder(cands, pend, ubs.d2)
	return cands
}

// prune32 drops the candidates that the float32 kernel proves farther than
// the runner-up, as scan does with the int8 bounds, and returns the rest in
// order (reusing cands).
func (m *Matcher) prune32(d *models.Descriptor, cands []int32) []int32 {
	pend := make([]candidate, len(cands))
	ubs := newTop2()
	var f [1]float32
	for i, r := range cands {
		sqDists(d, m.vecs[int(r)*dim:int(r+1)*dim], f[:])
		lo, hi, _ := bounds32(f[0])
		pend[i] = candidate{r, lo}
		ubs.add(hi, m.owner[r], r)
	}
	return keepUnder(cands[:0], pend, ubs.d2)
}
