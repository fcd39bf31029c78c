package recognizer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/kioskd/kioskd/models"
)

// randomDescriptor returns a random vector of norm about 1, like dlib's.
func randomDescriptor(rng *rand.Rand) models.Descriptor {
	var d models.Descriptor
	var s float64
	for i := range d {
		v := rng.NormFloat64()
		d[i] = float32(v)
		s += v * v
	}
	n := math.Sqrt(s) * (0.9 + 0.2*rng.Float64())
	for i := range d {
		d[i] = float32(float64(d[i]) / n)
	}
	return d
}

// near returns d moved by a random step of about size sigma*sqrt(128).
func near(rng *rand.Rand, d models.Descriptor, sigma float64) models.Descriptor {
	for i := range d {
		d[i] += float32(rng.NormFloat64() * sigma)
	}
	return d
}

// refMatch is the float64 brute-force reference for Identify.
func refMatch(gallery map[string][]models.Descriptor, q *models.Descriptor, threshold, margin float64) models.Match {
	perUser := map[string]float64{}
	for id, ds := range gallery {
		for i := range ds {
			d := models.Distance(q, &ds[i])
			if v, ok := perUser[id]; !ok || d < v {
				perUser[id] = d
			}
		}
	}
	m := models.Match{Distance: math.Inf(1), RunnerUpDistance: math.Inf(1)}
	for id, d := range perUser {
		switch {
		case d < m.Distance:
			m.RunnerUpDistance = m.Distance
			m.Distance, m.BestUserID = d, id
		case d < m.RunnerUpDistance:
			m.RunnerUpDistance = d
		}
	}
	if m.BestUserID != "" && m.Distance <= threshold && m.RunnerUpDistance-m.Distance >= margin {
		m.Known, m.UserID = true, m.BestUserID
	}
	return m
}

func sameMatch(t *testing.T, got, want models.Match) {
	t.Helper()
	if got.BestUserID != want.BestUserID || got.UserID != want.UserID || got.Known != want.Known ||
		!closeOrInf(got.Distance, want.Distance) || !closeOrInf(got.RunnerUpDistance, want.RunnerUpDistance) {
		t.Fatalf("Identify = %+v, float64 reference = %+v", got, want)
	}
}

func closeOrInf(a, b float64) bool {
	if math.IsInf(a, 1) || math.IsInf(b, 1) {
		return math.IsInf(a, 1) && math.IsInf(b, 1)
	}
	return math.Abs(a-b) < 1e-9
}

func TestMatcherEmptyGalleryNeverMatches(t *testing.T) {
	m := NewMatcher(DefaultMatcherConfig())
	d := randomDescriptor(rand.New(rand.NewPCG(1, 1)))
	got := m.Identify(&d)
	if got.Known || got.UserID != "" || got.BestUserID != "" || !math.IsInf(got.Distance, 1) || !math.IsInf(got.RunnerUpDistance, 1) {
		t.Fatalf("empty gallery: %+v", got)
	}
	if got := m.Identify(nil); got.Known {
		t.Fatalf("nil descriptor matched: %+v", got)
	}
	m.SetUser("a", []models.Descriptor{d})
	m.RemoveUser("a")
	if got := m.Identify(&d); got.Known || m.Len() != 0 || m.Users() != 0 {
		t.Fatalf("after removing the only user: %+v, len %d", got, m.Len())
	}
}

func TestMatcherThresholdAndMargin(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	a := randomDescriptor(rng)
	// b is a at distance 0.5 along one axis; q sits between them.
	b, q := a, a
	b[0] += 0.5
	q[0] += 0.24 // 0.24 from a, 0.26 from b: within the threshold, 0.02 apart
	m := NewMatcher(DefaultMatcherConfig())
	m.SetUser("a", []models.Descriptor{a})
	got := m.Identify(&q)
	if !got.Known || got.UserID != "a" || math.Abs(got.Distance-0.24) > 1e-6 || !math.IsInf(got.RunnerUpDistance, 1) {
		t.Fatalf("one user: %+v", got)
	}
	m.SetUser("b", []models.Descriptor{b})
	got = m.Identify(&q)
	if got.Known || got.UserID != "" || got.BestUserID != "a" || math.Abs(got.RunnerUpDistance-0.26) > 1e-6 {
		t.Fatalf("two users 0.02 apart with margin 0.03 must be refused: %+v", got)
	}
	noMargin := NewMatcher(MatcherConfig{Threshold: 0.6})
	noMargin.SetUser("a", []models.Descriptor{a})
	noMargin.SetUser("b", []models.Descriptor{b})
	if got := noMargin.Identify(&q); !got.Known || got.UserID != "a" {
		t.Fatalf("margin 0: %+v", got)
	}
	far := a
	far[1] += 0.61
	if got := m.Identify(&far); got.Known || got.BestUserID != "a" {
		t.Fatalf("0.61 away must be unknown at threshold 0.6: %+v", got)
	}
	// A second descriptor of the same user is not a runner-up.
	m.SetUser("b", nil)
	a2 := a
	a2[0] += 0.3
	m.SetUser("a", []models.Descriptor{a, a2})
	if got := m.Identify(&q); !got.Known || !math.IsInf(got.RunnerUpDistance, 1) {
		t.Fatalf("runner-up must be another user's: %+v", got)
	}
}

// TestMatcherMatchesReference checks Identify against the float64 brute
// force over random galleries changed by SetUser/RemoveUser/AddDescriptors.
func TestMatcherMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for round := 0; round < 20; round++ {
		cfg := MatcherConfig{Threshold: 0.4 + rng.Float64()*0.6, Margin: rng.Float64() * 0.05}
		m := NewMatcher(cfg)
		gallery := map[string][]models.Descriptor{}
		nusers := 1 + rng.IntN(300)
		for u := 0; u < nusers; u++ {
			id := fmt.Sprintf("u%d", u)
			base := randomDescriptor(rng)
			ds := make([]models.Descriptor, 1+rng.IntN(4))
			for i := range ds {
				ds[i] = near(rng, base, 0.03)
			}
			gallery[id] = ds
		}
		if round%2 == 0 {
			loadGallery(m, gallery)
		} else {
			for id, ds := range gallery {
				m.AddDescriptors(id, ds[:1]...)
				m.AddDescriptors(id, ds[1:]...)
			}
		}
		// Churn: removals, replacements, growth.
		for i := 0; i < nusers/3; i++ {
			id := fmt.Sprintf("u%d", rng.IntN(nusers+20))
			switch rng.IntN(3) {
			case 0:
				m.RemoveUser(id)
				delete(gallery, id)
			default:
				ds := make([]models.Descriptor, rng.IntN(4))
				for j := range ds {
					ds[j] = randomDescriptor(rng)
				}
				m.SetUser(id, ds)
				if len(ds) == 0 {
					delete(gallery, id)
				} else {
					gallery[id] = ds
				}
			}
		}
		n := 0
		for _, ds := range gallery {
			n += len(ds)
		}
		if m.Len() != n || m.Users() != len(gallery) {
			t.Fatalf("round %d: Len %d Users %d, want %d %d", round, m.Len(), m.Users(), n, len(gallery))
		}
		for k := 0; k < 50; k++ {
			var q models.Descriptor
			if k%2 == 0 && len(gallery) > 0 {
				for _, ds := range gallery { // a random user's photo
					q = near(rng, ds[0], 0.03)
					break
				}
			} else {
				q = randomDescriptor(rng)
			}
			sameMatch(t, m.Identify(&q), refMatch(gallery, &q, cfg.Threshold, cfg.Margin))
		}
	}
}

func TestMatcherIgnoresNaNRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	a := randomDescriptor(rng)
	bad := a
	bad[3] = float32(math.NaN())
	m := NewMatcher(DefaultMatcherConfig())
	m.SetUser("bad", []models.Descriptor{bad})
	if got := m.Identify(&a); got.Known || got.BestUserID != "" {
		t.Fatalf("NaN row matched: %+v", got)
	}
	m.SetUser("a", []models.Descriptor{a})
	if got := m.Identify(&a); !got.Known || got.UserID != "a" {
		t.Fatalf("%+v", got)
	}
}

func TestMatcherKernelMatchesGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	q := randomDescriptor(rng)
	rows := make([]float32, 37*dim)
	for i := range rows {
		rows[i] = float32(rng.NormFloat64() * 0.1)
	}
	got, want := make([]float32, 37), make([]float32, 37)
	sqDists(&q, rows, got)
	sqDistsGeneric(&q, rows, want)
	for i := range got {
		var ref float64
		for j := 0; j < dim; j++ {
			x := float64(rows[i*dim+j]) - float64(q[j])
			ref += x * x
		}
		if math.Abs(float64(got[i])-ref) > 1e-5 || math.Abs(float64(want[i])-ref) > 1e-5 {
			t.Fatalf("row %d: kernel %v generic %v float64 %v (avx2 %v)", i, got[i], want[i], ref, haveAVX2)
		}
	}
}

// TestMatcherConcurrent runs readers and writers together; `make test`
// runs it under -race.
func TestMatcherConcurrent(t *testing.T) {
	m := NewMatcher(DefaultMatcherConfig())
	rng := rand.New(rand.NewPCG(6, 6))
	stable := randomDescriptor(rng)
	m.SetUser("stable", []models.Descriptor{stable})
	var writers, readers sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		writers.Add(1)
		go func(w int) {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < 300; i++ {
				id := fmt.Sprintf("w%d-%d", w, rng.IntN(20))
				switch rng.IntN(3) {
				case 0:
					m.RemoveUser(id)
				case 1:
					m.AddDescriptors(id, randomDescriptor(rng))
				default:
					m.SetUser(id, []models.Descriptor{randomDescriptor(rng), randomDescriptor(rng)})
				}
			}
		}(w)
	}
	errs := make(chan error, 4)
	for r := 0; r < 4; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				// 1:1 claims fill and read the known nearest others while
				// writers change them.
				if v := m.Verify("stable", &stable, 0.6, DefaultVerifyMargin); !v.Enrolled || v.Distance != 0 {
					errs <- fmt.Errorf("stable user's 1:1 check during churn: %+v", v)
					return
				}
				m.Verify(fmt.Sprintf("w%d-%d", i%4, i%20), &stable, 0.6, DefaultVerifyMargin)
				// The stable user is never touched by writers: it must always
				// be found at distance 0, whatever moves around it.
				if got := m.Identify(&stable); got.BestUserID != "stable" || got.Distance != 0 {
					errs <- fmt.Errorf("stable user lost during churn: %+v", got)
					return
				}
				_ = m.Len()
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m.Users() > 81 || m.Len() > 1+80*300 {
		t.Fatalf("implausible size after churn: %d users, %d rows", m.Users(), m.Len())
	}
}
