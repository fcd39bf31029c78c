package recognizer

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/kioskd/kioskd/models"
)

// benchGallery builds a Matcher of n descriptors, two per user, directly
// (Load of a million-entry map would dominate the setup), and a probe near
// one stored descriptor.
func benchGallery(b *testing.B, n int) (*Matcher, models.Descriptor) {
	b.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), 9))
	m := NewMatcher(DefaultMatcherConfig())
	m.vecs = make([]float32, n*dim)
	m.owner = make([]int32, n)
	m.users = make([]userSlot, (n+1)/2)
	for u := range m.users {
		id := "user-" + strconv.Itoa(u)
		m.users[u] = userSlot{id: id}
		m.index[id] = int32(u)
	}
	for r := 0; r < n; r++ {
		d := randomDescriptor(rng)
		copy(m.vecs[r*dim:], d[:])
		u := int32(r / 2)
		m.owner[r] = u
		m.users[u].rows = append(m.users[u].rows, int32(r))
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
	b.SetBytes(int64(n * dim * 4))
	b.ResetTimer()
	for b.Loop() {
		m.Identify(&q)
	}
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

// BenchmarkMatchGeneric1M is BenchmarkMatch1M with the portable Go kernel.
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
