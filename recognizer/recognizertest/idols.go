package recognizertest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/sync/registrysim"
)

// Idols returns the shared gallery (gallery/idols.json) as records: 552
// people, 134 of them with 1,286 real dlib descriptors.
func Idols(tb testing.TB) []models.UserRecord {
	tb.Helper()
	recs, err := registrysim.LoadIdols(Testdata(tb, "gallery/idols.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}

// Synthetic galleries of real density, from the idols descriptors: each
// user is a real descriptor pulled 20% towards the gallery's mean plus
// Gaussian noise of norm about 0.21, so two users made from one real
// descriptor are about 0.3 apart and two from different ones about 0.5
// (the real impostor median): the real gallery's density, close pairs
// included, at any size. A probe is a user's descriptor plus noise of norm
// about 0.35 (another photo of the person: the real genuine median is 0.39).
const (
	idolPull      = 0.8
	idolUserNoise = 0.21
	idolProbe     = 0.35
)

// IdolSynth makes synthetic descriptors of the idols gallery's density.
type IdolSynth struct {
	bases []models.Descriptor
	mean  [models.DescriptorSize]float64
	rng   *rand.Rand
}

// NewIdolSynth returns a generator seeded with seed.
func NewIdolSynth(tb testing.TB, seed uint64) *IdolSynth {
	tb.Helper()
	s := &IdolSynth{rng: rand.New(rand.NewPCG(seed, 7))}
	for _, r := range Idols(tb) {
		for _, e := range r.Encodings {
			s.bases = append(s.bases, e.Descriptor)
		}
	}
	for _, b := range s.bases {
		for i, v := range b {
			s.mean[i] += float64(v) / float64(len(s.bases))
		}
	}
	return s
}

// User returns a new synthetic user's descriptor.
func (s *IdolSynth) User() models.Descriptor {
	b := s.bases[s.rng.IntN(len(s.bases))]
	sigma := idolUserNoise / math.Sqrt(models.DescriptorSize)
	var d models.Descriptor
	for i := range d {
		d[i] = float32(s.mean[i] + idolPull*(float64(b[i])-s.mean[i]) + s.rng.NormFloat64()*sigma)
	}
	return d
}

// Probe returns another "photo" of the person whose descriptor is d.
func (s *IdolSynth) Probe(d models.Descriptor) models.Descriptor {
	sigma := idolProbe / math.Sqrt(models.DescriptorSize)
	for i := range d {
		d[i] += float32(s.rng.NormFloat64() * sigma)
	}
	return d
}

// IntN returns a random int in [0, n) from the generator's source.
func (s *IdolSynth) IntN(n int) int { return s.rng.IntN(n) }
