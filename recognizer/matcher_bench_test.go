package recognizer

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/kioskd/kioskd/models"
)

// benchGallery builds a Matcher of n descriptors, two per user, directly
// with appendRow (adding a million users one by one would dominate the setup), and
// a probe near one stored descriptor.
func benchGallery(b *testing.B, n int) (*Matcher, models.Descriptor) {
	b.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), 9))
	m := NewMatcher(DefaultMatcherConfig())
	m.grow(n)
	m.users = make([]userSlot, (n+1)/2)
	for u := range m.users {
		id := "user-" + strconv.Itoa(u)
		m.users[u] = userSlot{id: id}
		m.index[id] = int32(u)
	}
	for r := 0; r < n; r++ {
		d := randomDescriptor(rng)
		u := int32(r / 2)
		m.users[u].rows = append(m.users[u].rows, int32(len(m.owner)))
		m.appendRow(&d, u)
	}
	var target models.Descriptor
	copy(target[:], m.vecs[(n/3)*dim:])
	return m, near(rng, target, 0.02)
}

// checkAgainstFloat64 verifies, outside the timed loop, that the top-1 user
// and distances equal a float64 brute force over the same rows.
func checkAgainstFloat64(b *testing.B, m *Matcher, q *models.Descriptor) {
	b.Helper()
	got := m.Identify(q)
	bestRow, best := -1, 1e300
	for r := range m.owner {
		if d := m.rowDistance(q, int32(r)); d < best {
			bestRow, best = r, d
		}
	}
	want := m.users[m.owner[bestRow]].id
	if got.BestUserID != want || got.Distance != best || !got.Known {
		b.Fatalf("Identify = %+v; float64 reference: %s at %v", got, want, best)
	}
}

func benchmarkMatch(b *testing.B, n int) {
	m, q := benchGallery(b, n)
	checkAgainstFloat64(b, m, &q)
	// Candidates per query, outside the timed loop: rows that passed the
	// first pass's integer test (int8 pass only), and those left for the
	// exact rerank.
	passed, cands := -1, 0
	// The bytes the first pass streams: the int8 copy, 128 bytes a row, or
	// the float32 rows (512) where the int8 kernel is not SIMD. The float32
	// rows the rerank reads (a few candidates) are not counted.
	bytes := n * dim
	if int8Scan {
		var pq query
		pq.set(&q)
		c, p := m.scan(&pq, nil)
		cands, passed = len(c), p
	} else {
		cands = len(m.scan32(&q, nil))
		bytes *= 4
	}
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	for b.Loop() {
		m.Identify(&q)
	}
	if passed >= 0 {
		b.ReportMetric(float64(passed), "passed/op")
	}
	b.ReportMetric(float64(cands), "cands/op")
}

// BenchmarkMatch100k: 1:N over 100,000 descriptors on one core (target <= 2 ms).
func BenchmarkMatch100k(b *testing.B) { benchmarkMatch(b, 100_000) }

// BenchmarkMatch1M: 1:N over 1,000,000 descriptors on one core (target <= 20 ms).
func BenchmarkMatch1M(b *testing.B) { benchmarkMatch(b, 1_000_000) }

// BenchmarkStream1M reads the same 512 MB as BenchmarkMatch1M and sums it
// with AVX2 (cheap enough to be memory-bound): the bandwidth floor the
// matcher is measured against.
func BenchmarkStream1M(b *testing.B) {
	m, _ := benchGallery(b, 1_000_000)
	b.SetBytes(int64(len(m.vecs) * 4))
	var sink float32
	for b.Loop() {
		sink += streamSum(m.vecs)
	}
	_ = sink
}

// BenchmarkStream128MB reads as many bytes as the int8 pass of
// BenchmarkMatch1M (the first 128 MB of the float32 rows): its floor.
func BenchmarkStream128MB(b *testing.B) {
	m, _ := benchGallery(b, 1_000_000)
	rows := m.vecs[:len(m.codes)/4]
	b.SetBytes(int64(len(rows) * 4))
	var sink float32
	for b.Loop() {
		sink += streamSum(rows)
	}
	_ = sink
}

// BenchmarkMatchInt8Generic1M is the int8 pass of BenchmarkMatch1M with the
// portable Go kernel.
func BenchmarkMatchInt8Generic1M(b *testing.B) {
	m, q := benchGallery(b, 1_000_000)
	var pq query
	pq.set(&q)
	out := make([]int32, scanBlock)
	b.SetBytes(int64(len(m.codes)))
	for b.Loop() {
		for s := 0; s < len(m.owner); s += scanBlock {
			k := min(scanBlock, len(m.owner)-s)
			sqDists8Generic(&pq.codes, m.codes[s*dim:(s+k)*dim], out[:k])
		}
	}
}

// BenchmarkMatchGeneric1M is the float32 scan of BenchmarkMatch1M with the
// portable Go kernel (the rerank's fallback kernel).
func BenchmarkMatchGeneric1M(b *testing.B) {
	m, q := benchGallery(b, 1_000_000)
	out := make([]float32, scanBlock)
	b.SetBytes(int64(len(m.vecs) * 4))
	for b.Loop() {
		for s := 0; s < len(m.owner); s += scanBlock {
			k := min(scanBlock, len(m.owner)-s)
			sqDistsGeneric(&q, m.vecs[s*dim:(s+k)*dim], out[:k])
		}
	}
}
