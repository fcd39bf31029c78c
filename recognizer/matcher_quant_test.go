package recognizer

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kioskd/kioskd/models"
)

// TestSqDists8KernelMatchesGeneric checks the assembly int8 kernel against
// the Go one and against int64 arithmetic, bit for bit, on random codes over
// the whole range, every tail length and the extreme distance.
func TestSqDists8KernelMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000} {
		rows := make([]int8, n*dim)
		for i := range rows {
			rows[i] = int8(rng.IntN(255) - 127)
		}
		var q [dim]int16
		for i := range q {
			q[i] = int16(rng.IntN(255) - 127)
		}
		if n == 9 { // the largest possible distance, in the assembly part
			for i := 0; i < dim; i++ {
				rows[i], q[i] = 127, -127
			}
		}
		got, want := make([]int32, n), make([]int32, n)
		gotMin, wantMin := sqDists8(&q, rows, got), sqDists8Generic(&q, rows, want)
		refMin := int64(math.MaxInt32)
		for r := 0; r < n; r++ {
			var ref int64
			for i := 0; i < dim; i++ {
				d := int64(rows[r*dim+i]) - int64(q[i])
				ref += d * d
			}
			refMin = min(refMin, ref)
			if int64(got[r]) != ref || int64(want[r]) != ref {
				t.Fatalf("n %d row %d: kernel %d, generic %d, int64 %d (avx2 %v)", n, r, got[r], want[r], ref, haveAVX2)
			}
		}
		if int64(gotMin) != refMin || int64(wantMin) != refMin {
			t.Fatalf("n %d: min kernel %d, generic %d, int64 %d", n, gotMin, wantMin, refMin)
		}
		if n == 9 && got[0] != 128*254*254 {
			t.Fatalf("extreme row: %d", got[0])
		}
	}
}

// exactErr is ||d - codes/S|| computed with 200-bit floats.
func exactErr(d *models.Descriptor, codes *[dim]int8) *big.Float {
	s := new(big.Float).SetPrec(200)
	for i := range d {
		e := new(big.Float).SetPrec(200).SetFloat64(float64(d[i]))
		e.Sub(e, new(big.Float).SetPrec(200).SetFloat64(float64(codes[i])/quantScale))
		s.Add(s, e.Mul(e, e))
	}
	return s.Sqrt(s)
}

// TestQuantizeErrorBound checks that the stored error is never below the
// real one and barely above it, for ordinary, clamped and tiny components.
func TestQuantizeErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	for k := 0; k < 2000; k++ {
		d := randomDescriptor(rng)
		switch k % 4 {
		case 1: // some components far beyond the int8 range
			for j := 0; j < 1+rng.IntN(8); j++ {
				d[rng.IntN(dim)] = float32((rng.Float64()*2 - 1) * 5)
			}
		case 2: // on the rounding midpoints
			for i := range d {
				d[i] = float32(float64(rng.IntN(200)-100)+0.5) / quantScale
			}
		case 3: // subnormal and tiny
			for i := range d {
				d[i] *= 1e-40
			}
		}
		var c [dim]int8
		e, ok := quantize(&d, &c)
		if !ok {
			t.Fatalf("finite descriptor refused")
		}
		for i, v := range c {
			if v < -127 || v > 127 || (math.Abs(float64(d[i])) < 0.49 && math.Abs(float64(d[i])*quantScale-float64(v)) > 0.5) {
				t.Fatalf("component %v coded %d", d[i], v)
			}
		}
		exact := exactErr(&d, &c)
		if new(big.Float).SetFloat64(float64(e)).Cmp(exact) < 0 {
			t.Fatalf("error bound %v below the real error %v", e, exact)
		}
		if x, _ := exact.Float64(); float64(e) > x*(1+1e-6)+1e-40 {
			t.Fatalf("error bound %v loose for %v", e, x)
		}
	}
	var c [dim]int8
	bad := randomDescriptor(rng)
	bad[5] = float32(math.Inf(-1))
	if _, ok := quantize(&bad, &c); ok {
		t.Fatal("infinite component accepted")
	}
	bad[5] = float32(math.NaN())
	if _, ok := quantize(&bad, &c); ok {
		t.Fatal("NaN component accepted")
	}
}

// TestApproxBoundsHold checks lo <= float64 distance <= hi for the int8
// bounds, and that every squared code distance beyond sqLimit has lo above
// the limit's bound.
func TestApproxBoundsHold(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	for k := 0; k < 5000; k++ {
		x := randomDescriptor(rng)
		var y models.Descriptor
		switch k % 4 {
		case 0:
			y = near(rng, x, 0.01*rng.Float64())
		case 1:
			y = randomDescriptor(rng)
		case 2:
			y = x // distance 0
		case 3:
			y = near(rng, x, 0.3) // clamps
		}
		var cx, cy [dim]int8
		ex, _ := quantize(&x, &cx)
		ey, _ := quantize(&y, &cy)
		var qy query
		qy.set(&y)
		out := make([]int32, 1)
		sqDists8(&qy.codes, cx[:], out)
		lo, hi := approxBounds(out[0], float64(ey), float64(ex))
		if d := models.Distance(&x, &y); !(lo <= d && d <= hi) {
			t.Fatalf("distance %v outside [%v, %v]", d, lo, hi)
		}
		ub := rng.Float64() * 2
		eBoth := float64(ey) + float64(max(ex, 0.016))
		lim := sqLimit(ub, eBoth)
		if lim < math.MaxInt32 {
			if l, _ := approxBounds(lim+1, float64(ey), eBoth-float64(ey)); !(l > ub) {
				t.Fatalf("sqLimit(%v) = %d but lo(%d) = %v", ub, lim, lim+1, l)
			}
		}
	}
	// The float32 kernels' bounds, both kernels.
	for k := 0; k < 5000; k++ {
		x, y := randomDescriptor(rng), randomDescriptor(rng)
		switch k % 3 {
		case 0:
			y = near(rng, x, 1e-3*rng.Float64())
		case 1:
			y = x
		}
		want := models.Distance(&x, &y)
		sq := make([]float32, 1)
		sqDists(&x, y[:], sq)
		gen := make([]float32, 1)
		sqDistsGeneric(&x, y[:], gen)
		for _, v := range []float32{sq[0], gen[0]} {
			lo, hi, ok := bounds32(v)
			if !ok || !(lo <= want && want <= hi) {
				t.Fatalf("float32 %v: distance %v outside [%v, %v]", v, want, lo, hi)
			}
		}
		ub := rng.Float64() * 2
		lim := sqLimit32(ub)
		next := math.Nextafter32(lim, float32(math.Inf(1)))
		if lo, _, _ := bounds32(next); !(lo > ub) {
			t.Fatalf("sqLimit32(%v) = %v but lo(%v) = %v", ub, lim, next, lo)
		}
	}
	if !math.IsInf(float64(sqLimit32(math.Inf(1))), 1) || !math.IsInf(float64(sqLimit32(1e19)), 1) {
		t.Fatal("sqLimit32 must give up near the float32 range")
	}
	if _, _, ok := bounds32(float32(math.Inf(1))); ok {
		t.Fatal("an overflowed sum bounds nothing")
	}
	if sqLimit(math.Inf(1), 0.03) != math.MaxInt32 || sqLimit(1e30, 0) != math.MaxInt32 {
		t.Fatal("sqLimit must saturate")
	}
}

// checkStore verifies the row store's invariants: codes and errors match the
// float32 rows, wide lists exactly the finite rows beyond maxRowErr, errMax
// covers every other row, and users and owner agree.
func checkStore(t *testing.T, m *Matcher) {
	t.Helper()
	n := len(m.owner)
	if len(m.vecs) != n*dim || len(m.codes) != n*dim || len(m.errs) != n {
		t.Fatalf("lengths: %d rows, %d floats, %d codes, %d errs", n, len(m.vecs), len(m.codes), len(m.errs))
	}
	var wide []int32
	for r := 0; r < n; r++ {
		var d models.Descriptor
		copy(d[:], m.vecs[r*dim:])
		var c [dim]int8
		e, ok := quantize(&d, &c)
		switch {
		case !ok:
			if !math.IsInf(float64(m.errs[r]), 1) {
				t.Fatalf("row %d: non-finite row with error %v", r, m.errs[r])
			}
			continue
		case e > maxRowErr:
			wide = append(wide, int32(r))
			if !math.IsInf(float64(m.errs[r]), 1) {
				t.Fatalf("row %d: wide row with error %v", r, m.errs[r])
			}
		default:
			if m.errs[r] != e || e > m.errMax {
				t.Fatalf("row %d: error %v, stored %v, max %v", r, e, m.errs[r], m.errMax)
			}
		}
		if !slices.Equal(c[:], m.codes[r*dim:(r+1)*dim]) {
			t.Fatalf("row %d: codes out of date", r)
		}
	}
	got := slices.Sorted(slices.Values(m.wide))
	if !slices.Equal(got, wide) {
		t.Fatalf("wide rows %v, want %v", got, wide)
	}
	seen := 0
	for slot, u := range m.users {
		for _, r := range u.rows {
			if m.owner[r] != int32(slot) {
				t.Fatalf("row %d owned by %d, listed by %d", r, m.owner[r], slot)
			}
			seen++
		}
	}
	if seen != n {
		t.Fatalf("users list %d rows of %d", seen, n)
	}
}

// checkExact compares got with the float64 brute force over gallery, exactly:
// the same best distance and runner-up distance bit for bit, a best user
// among those at the best distance (several when descriptors tie), and the
// runner-up taken over the other users.
func checkExact(t *testing.T, what string, gallery map[string][]models.Descriptor, q *models.Descriptor, got models.Match, threshold, margin float64) {
	t.Helper()
	perUser := map[string]float64{}
	for id, ds := range gallery {
		for i := range ds {
			d := models.Distance(q, &ds[i])
			if v, ok := perUser[id]; d < math.Inf(1) && (!ok || d < v) {
				perUser[id] = d
			}
		}
	}
	best := math.Inf(1)
	for _, d := range perUser {
		best = min(best, d)
	}
	fail := func(why string) {
		t.Helper()
		t.Fatalf("%s: %s: Identify = %+v; float64 best %v, per user %d users", what, why, got, best, len(perUser))
	}
	if math.IsInf(best, 1) {
		if got.BestUserID != "" || got.Known || !math.IsInf(got.Distance, 1) || !math.IsInf(got.RunnerUpDistance, 1) {
			fail("nothing can match")
		}
		return
	}
	if d, ok := perUser[got.BestUserID]; !ok || d != best || got.Distance != best {
		fail("best user or distance")
	}
	runner := math.Inf(1)
	for id, d := range perUser {
		if id != got.BestUserID {
			runner = min(runner, d)
		}
	}
	if got.RunnerUpDistance != runner && !(math.IsInf(runner, 1) && math.IsInf(got.RunnerUpDistance, 1)) {
		fail(fmt.Sprintf("runner-up (want %v)", runner))
	}
	known := best <= threshold && runner-best >= margin
	if got.Known != known || (known && got.UserID != got.BestUserID) || (!known && got.UserID != "") {
		fail("known")
	}
}

// onSphere returns c moved by exactly-ish r in a random direction.
func onSphere(rng *rand.Rand, c models.Descriptor, r float64) models.Descriptor {
	u := randomDescriptor(rng)
	n := models.Distance(&u, &models.Descriptor{})
	for i := range c {
		c[i] += float32(float64(u[i]) / n * r)
	}
	return c
}

// adversarialGallery builds one of several hard galleries and a few queries.
func adversarialGallery(rng *rand.Rand, kind int) (map[string][]models.Descriptor, []models.Descriptor) {
	g := map[string][]models.Descriptor{}
	add := func(id string, d models.Descriptor) { g[id] = append(g[id], d) }
	center := randomDescriptor(rng)
	var qs []models.Descriptor
	switch kind {
	case 0: // hundreds of rows nearly equidistant from the query: a huge candidate set
		for i := 0; i < 600; i++ {
			add(fmt.Sprintf("u%d", i%250), onSphere(rng, center, 0.5+1e-4*rng.Float64()))
		}
		qs = append(qs, center, near(rng, center, 1e-4))
	case 1: // the same descriptors under several users, and repeated rows
		for i := 0; i < 60; i++ {
			d := randomDescriptor(rng)
			for j := 0; j <= i%4; j++ {
				add(fmt.Sprintf("u%d-%d", i, j), d)
				add(fmt.Sprintf("u%d-%d", i, j), d)
			}
			if i < 5 {
				qs = append(qs, d, near(rng, d, 0.01))
			}
		}
	case 2: // components beyond the int8 range: wide rows, clamped queries
		for i := 0; i < 300; i++ {
			d := randomDescriptor(rng)
			for j := 0; j < rng.IntN(6); j++ {
				d[rng.IntN(dim)] *= float32(2 + 10*rng.Float64())
			}
			add(fmt.Sprintf("u%d", i%120), d)
			if i%50 == 0 {
				qs = append(qs, near(rng, d, 0.02))
			}
		}
		big := randomDescriptor(rng)
		for i := range big {
			big[i] *= 4
		}
		qs = append(qs, big)
	case 3: // queries far from everything
		for i := 0; i < 400; i++ {
			add(fmt.Sprintf("u%d", i/2), near(rng, center, 0.02))
		}
		far := center
		for i := range far {
			far[i] = -3 * far[i]
		}
		huge := center
		huge[0] = 1e30
		qs = append(qs, far, huge, randomDescriptor(rng))
	case 4: // non-finite rows among ordinary ones
		for i := 0; i < 200; i++ {
			d := randomDescriptor(rng)
			switch i % 7 {
			case 0:
				d[rng.IntN(dim)] = float32([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}[i%3])
			case 3: // finite, but its float32 squared distance overflows
				d[rng.IntN(dim)] = 3e38
			}
			add(fmt.Sprintf("u%d", i%90), d)
			if i%40 == 1 {
				qs = append(qs, near(rng, d, 0.01))
			}
		}
		qs = append(qs, randomDescriptor(rng))
	}
	return g, qs
}

// TestMatcherExactOnAdversarialGalleries checks Identify against the float64
// brute force, exactly, on hard galleries, tiny ones, and under churn, with
// the float32 stage forced on and off.
func TestMatcherExactOnAdversarialGalleries(t *testing.T) {
	forEachPass(t, func(t *testing.T) { testExactOnAdversarialGalleries(t) })
}

// forEachPass runs f with the int8 first pass and with the float32 one.
func forEachPass(t *testing.T, f func(t *testing.T)) {
	defer func(v bool) { int8Scan = v }(int8Scan)
	for _, i8 := range []bool{true, false} {
		int8Scan = i8
		t.Run(fmt.Sprintf("int8Scan=%v", i8), f)
	}
}

func testExactOnAdversarialGalleries(t *testing.T) {
	defer func(v int) { rerank32Min = v }(rerank32Min)
	for _, r32 := range []int{16, 0, math.MaxInt} {
		rerank32Min = r32
		rng := rand.New(rand.NewPCG(13, uint64(r32)))
		cfg := MatcherConfig{Threshold: 0.6, Margin: 0.03}
		for kind := 0; kind < 5; kind++ {
			g, qs := adversarialGallery(rng, kind)
			m := NewMatcher(cfg)
			loadGallery(m, g)
			checkStore(t, m)
			for i := range qs {
				checkExact(t, fmt.Sprintf("r32 %d kind %d query %d", r32, kind, i), g, &qs[i], m.Identify(&qs[i]), cfg.Threshold, cfg.Margin)
			}
			// The same gallery built one row at a time, then churned: rows
			// move by swap-remove, wide and non-finite ones included.
			m = NewMatcher(cfg)
			for id, ds := range g {
				for i := range ds {
					m.AddDescriptors(id, ds[i])
				}
			}
			ids := slices.Sorted(func(yield func(string) bool) {
				for id := range g {
					if !yield(id) {
						return
					}
				}
			})
			for step := 0; step < 40; step++ {
				id := ids[rng.IntN(len(ids))]
				if step%3 == 0 {
					m.RemoveUser(id)
					delete(g, id)
				} else {
					other := ids[rng.IntN(len(ids))]
					ds := slices.Clone(g[other])
					if len(ds) > 0 && step%2 == 0 {
						ds[0] = near(rng, ds[0], 0.01)
					}
					m.SetUser(id, ds)
					if len(ds) == 0 {
						delete(g, id)
					} else {
						g[id] = ds
					}
				}
				checkStore(t, m)
				for i := range qs {
					checkExact(t, fmt.Sprintf("r32 %d kind %d churn %d query %d", r32, kind, step, i), g, &qs[i], m.Identify(&qs[i]), cfg.Threshold, cfg.Margin)
				}
			}
		}
		// Tiny galleries: around the 8-row blocks of the assembly kernel.
		for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 17} {
			for users := 1; users <= min(n, 3); users++ {
				g := map[string][]models.Descriptor{}
				base := randomDescriptor(rng)
				for i := 0; i < n; i++ {
					id := fmt.Sprintf("u%d", i%users)
					g[id] = append(g[id], near(rng, base, 0.03))
				}
				m := NewMatcher(cfg)
				loadGallery(m, g)
				for k := 0; k < 20; k++ {
					q := near(rng, base, 0.03)
					if k%5 == 0 {
						q = randomDescriptor(rng)
					}
					checkExact(t, fmt.Sprintf("r32 %d tiny %d/%d", r32, n, users), g, &q, m.Identify(&q), cfg.Threshold, cfg.Margin)
				}
			}
		}
	}
}

// TestMatcherExactRandom is the reference check at benchmark-like scale:
// thousands of rows, two per user, probes near a stored row and anywhere.
func TestMatcherExactRandom(t *testing.T) {
	forEachPass(t, testExactRandom)
}

func testExactRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	g := map[string][]models.Descriptor{}
	for i := 0; i < 5000; i++ {
		id := fmt.Sprintf("u%d", i/2)
		g[id] = append(g[id], randomDescriptor(rng))
	}
	m := NewMatcher(DefaultMatcherConfig())
	loadGallery(m, g)
	for k := 0; k < 100; k++ {
		q := randomDescriptor(rng)
		if k%2 == 0 {
			q = near(rng, g[fmt.Sprintf("u%d", rng.IntN(2500))][k%4/2], 0.02*rng.Float64())
		}
		checkExact(t, fmt.Sprintf("query %d", k), g, &q, m.Identify(&q), DefaultThreshold, DefaultMargin)
	}
	nan := randomDescriptor(rng)
	nan[0] = float32(math.NaN())
	if got := m.Identify(&nan); got.BestUserID != "" || got.Known {
		t.Fatalf("NaN probe matched: %+v", got)
	}
}

// gridGallery builds rows whose quantisation errors line up with their
// difference from the probe, where the triangle-inequality bound is nearly
// tight: the probe sits on the int8 grid and each row is offset from it by
// just under or just over half a step on a subset of components, so a row
// that rounds away (larger int8 distance) can be nearer than one that rounds
// back onto the probe. An unsound bound prunes the true best here.
// With variations false only the hand-made core is built.
func gridGallery(rng *rand.Rand, variations bool) (map[string][]models.Descriptor, models.Descriptor) {
	var q models.Descriptor
	base := randomDescriptor(rng)
	for i := range q {
		q[i] = float32(math.Round(float64(base[i])*quantScale)) / quantScale
	}
	g := map[string][]models.Descriptor{}
	// The hand-made core, where both bounds are exactly tight: A is offset
	// 0.51 step on 32 components (rounds away: int8 distance sqrt(32) steps,
	// real 0.51*sqrt(32), error 0.49*sqrt(32), all along the difference), B
	// 0.4877 step on 35 (rounds back onto q: int8 distance 0, real distance
	// = its error = 0.4877*sqrt(35), 1.0001 times A's). A is the nearest,
	// its lower bound is its distance and B's upper bound is B's distance:
	// a bound too small by 0.01% prunes A. C duplicates B, so that B's upper
	// bound is ub2.
	a, b := q, q
	for i := 0; i < 32; i++ {
		a[i] += 0.51 / quantScale
	}
	for i := 0; i < 35; i++ {
		b[64+i] -= 0.4877 / quantScale
	}
	g["A"] = []models.Descriptor{a}
	g["B"] = []models.Descriptor{b}
	g["C"] = []models.Descriptor{b}
	if !variations {
		return g, q
	}
	// Random variations on the theme.
	for r := 0; r < 200; r++ {
		d := q
		k := 8 + rng.IntN(57)
		for _, i := range rng.Perm(dim)[:k] {
			s := float64(1 - 2*rng.IntN(2))
			d[i] += float32(s * (0.45 + 0.1*rng.Float64()) / quantScale)
		}
		id := fmt.Sprintf("u%d", r%150)
		g[id] = append(g[id], d)
	}
	return g, q
}

// TestMatcherExactWhenRoundingErrorsAlign checks Identify on gridGallery,
// where the int8 bounds are nearly tight.
func TestMatcherExactWhenRoundingErrorsAlign(t *testing.T) {
	forEachPass(t, testExactWhenRoundingErrorsAlign)
}

func testExactWhenRoundingErrorsAlign(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 15))
	for k := 0; k < 30; k++ {
		g, q := gridGallery(rng, k > 0)
		m := NewMatcher(MatcherConfig{Threshold: 0.6})
		if k == 0 { // B and C scanned first: A is tested against ub2 = B's bound
			for _, id := range []string{"B", "C", "A"} {
				m.AddDescriptors(id, g[id]...)
			}
		} else {
			loadGallery(m, g)
		}
		if m.wide != nil {
			t.Fatalf("grid rows must stay within maxRowErr")
		}
		got := m.Identify(&q)
		checkExact(t, fmt.Sprintf("grid %d", k), g, &q, got, 0.6, 0)
		if k == 0 && got.BestUserID != "A" {
			t.Fatalf("the hand-made core: %+v", got)
		}
	}
}
