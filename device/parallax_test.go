package device

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCoherentResiduals: residual vectors that neighbouring points share
// (parallax) keep their length when averaged over neighbours; independent
// ones (sensor noise) shrink to about 1/sqrt(parallaxNeighbours).
func TestCoherentResiduals(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a, shared, noise []Point
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			a = append(a, Point{float64(x) * 10, float64(y) * 10})
			// A smooth field: points near each other stray alike.
			shared = append(shared, Point{math.Sin(float64(x) / 4), math.Cos(float64(y) / 4)})
			noise = append(noise, Point{rng.NormFloat64(), rng.NormFloat64()})
		}
	}
	length := func(v []Point) []float64 {
		out := make([]float64, len(v))
		for i, p := range v {
			out[i] = math.Hypot(p.X, p.Y)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		vec      []Point
		min, max float64 // bounds of coherent / raw 75th percentile
	}{
		{"parallax", shared, 0.9, 1.01},
		{"sensor noise", noise, 0.2, 0.6},
	} {
		raw := percentile(length(tc.vec), 0.75)
		coh := percentile(coherentResiduals(a, tc.vec), 0.75)
		if r := coh / raw; r < tc.min || r > tc.max {
			t.Errorf("%s: coherent/raw = %.2f, want %.2f-%.2f", tc.name, r, tc.min, tc.max)
		}
	}
}
