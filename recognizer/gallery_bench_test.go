package recognizer

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// idolGallery builds a matcher of n synthetic users x 1 descriptor of the
// idols gallery's density (recognizertest.IdolSynth) the way
// kioskd's startup does (Grow, then AddDescriptors per row), returning the
// load time and the probes (each near a random user's row).
func idolGallery(b *testing.B, n, probes int) (*Matcher, []models.Descriptor, time.Duration) {
	b.Helper()
	s := recognizertest.NewIdolSynth(b, uint64(n))
	m := NewMatcher(DefaultMatcherConfig())
	start := time.Now()
	m.Grow(n)
	for u := range n {
		d := s.User()
		m.AddDescriptors("u"+strconv.Itoa(u), d)
	}
	took := time.Since(start)
	qs := make([]models.Descriptor, probes)
	for i := range qs {
		qs[i] = s.Probe(*m.rowDescriptor(int32(s.IntN(n))))
	}
	return m, qs, took
}

// vmRSS returns the process's resident and peak memory (MB) from /proc.
func vmRSS() (rss, hwm float64) {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			v, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "VmRSS:":
				rss = v / 1024
			case "VmHWM:":
				hwm = v / 1024
			}
		}
	}
	return rss, hwm
}

func benchmarkMatchIdols(b *testing.B, n int) {
	m, qs, load := idolGallery(b, n, 16)
	runtime.GC()
	rss, hwm := vmRSS()
	// Exact: each probe's top-1 and runner-up equal the float64 brute force.
	var cands, passed int
	for i := range qs {
		checkAgainstFloat64Top2(b, m, &qs[i])
		var pq query
		pq.set(&qs[i])
		c, p := m.scan(&pq, nil)
		cands, passed = cands+len(c), passed+p
	}
	calStart := time.Now()
	cal := m.Calibrate(DefaultCalibrationConfig())
	calTook := time.Since(calStart)
	b.Logf("%d users: load %v, RSS %.0f MB (peak %.0f MB), calibration %v (impostor p0.01%% %.3f p1%% %.3f p50 %.3f; real gallery 0.285, 0.360, 0.497)",
		n, load.Round(time.Millisecond), rss, hwm, calTook.Round(time.Millisecond), cal.Impostor.P0001, cal.Impostor.P01, cal.Impostor.P50)
	b.SetBytes(int64(n * dim))
	b.ResetTimer()
	i := 0
	for b.Loop() {
		m.Identify(&qs[i%len(qs)])
		i++
	}
	b.ReportMetric(float64(passed)/float64(len(qs)), "passed/op")
	b.ReportMetric(float64(cands)/float64(len(qs)), "cands/op")
	b.ReportMetric(load.Seconds()*1000, "load-ms")
	b.ReportMetric(rss, "RSS-MB")
}

// checkAgainstFloat64Top2 verifies outside the timed loop that the best
// user, its distance and the runner-up's equal a float64 brute force.
func checkAgainstFloat64Top2(b *testing.B, m *Matcher, q *models.Descriptor) {
	b.Helper()
	got := m.Identify(q)
	best, second, bestRow := math.Inf(1), math.Inf(1), -1
	for r := range m.owner {
		d := m.rowDistance(q, int32(r))
		switch {
		case d < best:
			second, best, bestRow = best, d, r
		case d < second:
			second = d
		}
	}
	if got.BestUserID != m.users[m.owner[bestRow]].id || got.Distance != best || got.RunnerUpDistance != second {
		b.Fatalf("Identify = %+v; float64 reference: %s at %v, runner-up %v", got, m.users[m.owner[bestRow]].id, best, second)
	}
}

// BenchmarkMatchIdols100k: 1:N over 100,000 users x 1 descriptor of real
// density (built from the idols gallery), on one core.
func BenchmarkMatchIdols100k(b *testing.B) { benchmarkMatchIdols(b, 100_000) }

// BenchmarkMatchIdols1M: 1:N over 1,000,000 users x 1 descriptor of real
// density, on one core (target <= 20 ms, exact).
func BenchmarkMatchIdols1M(b *testing.B) { benchmarkMatchIdols(b, 1_000_000) }
