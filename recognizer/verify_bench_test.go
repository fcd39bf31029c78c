package recognizer

import (
	"math"
	"strconv"
	"testing"

	"github.com/kioskd/kioskd/models"
)

// verifyReference is Verify by brute force: the user's nearest row to d,
// and the nearest row of another user to any of the user's rows.
func verifyReference(m *Matcher, userID string, d *models.Descriptor, ceiling, margin float64) Verification {
	v := Verification{Distance: math.Inf(1), NearestOther: math.Inf(1)}
	slot, ok := m.index[userID]
	if !ok {
		return v
	}
	v.Enrolled = true
	for _, r := range m.users[slot].rows {
		v.Distance = min(v.Distance, m.rowDistance(d, r))
		for o := range m.owner {
			if m.owner[o] != slot {
				v.NearestOther = min(v.NearestOther, m.rowPair(r, int32(o)))
			}
		}
	}
	v.Threshold = VerifyThreshold(ceiling, v.NearestOther, margin)
	v.Match = v.Distance <= v.Threshold
	return v
}

// BenchmarkVerifyIdols100k: a 1:1 claim against one user of a 100,000-user
// gallery of real density (users x 1 descriptor), on one core. "first" is
// each user's first claim since the gallery changed, "again" a claim of a
// user verified before; every answer is checked against a brute force
// outside the timed loop.
func BenchmarkVerifyIdols100k(b *testing.B) {
	const n = 100_000
	m, qs, _ := idolGallery(b, n, 16)
	ceiling, margin := 0.45, DefaultVerifyMargin
	users := make([]string, len(qs))
	for i := range qs {
		// The probes were drawn near random rows: claim the row's owner.
		users[i] = m.Identify(&qs[i]).BestUserID
	}
	for i := range qs {
		want := verifyReference(m, users[i], &qs[i], ceiling, margin)
		if got := m.Verify(users[i], &qs[i], ceiling, margin); got != want {
			b.Fatalf("Verify(%s) = %+v, brute force %+v", users[i], got, want)
		}
	}
	b.Run("again", func(b *testing.B) {
		i := 0
		for b.Loop() {
			m.Verify(users[i%len(users)], &qs[i%len(qs)], ceiling, margin)
			i++
		}
	})
	next := 0 // across runs of "first": each claims users not claimed before
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			// The probe is someone else's face: the cost does not depend
			// on it.
			m.Verify("u"+strconv.Itoa((7919*(next+len(qs)))%n), &qs[next%len(qs)], ceiling, margin)
			next++
		}
	})
}
