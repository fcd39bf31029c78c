package recognizer

import (
	"math"
	"strconv"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// TestVerifyKnownNearestStaysExact claims users of a real-density gallery
// (each claim remembers the user's nearest other user) while users are
// added, given more descriptors, replaced and removed: every answer, and
// every user's threshold, equals the brute force over the gallery as it is:
// with the known users compared with added rows, and with them forgotten.
func TestVerifyKnownNearestStaysExact(t *testing.T) {
	for _, tc := range []struct {
		name  string
		max   int
		known bool // users stay known through additions
	}{{"compared", math.MaxInt, true}, {"forgotten", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			was := nearUpdateMax
			nearUpdateMax = tc.max
			defer func() { nearUpdateMax = was }()
			checkKnownNearest(t, tc.known)
		})
	}
}

func checkKnownNearest(t *testing.T, known bool) {
	s := recognizertest.NewIdolSynth(t, 11)
	m := NewMatcher(DefaultMatcherConfig())
	const n = 300
	for u := range n {
		m.AddDescriptors("u"+strconv.Itoa(u), s.User())
	}
	ceiling, margin := 0.5, DefaultVerifyMargin
	check := func(step string) {
		t.Helper()
		for u := range n + 40 {
			id := "u" + strconv.Itoa(u)
			m.mu.RLock()
			slot, ok := m.index[id]
			var probe models.Descriptor
			if ok {
				probe = s.Probe(*m.rowDescriptor(m.users[slot].rows[0]))
			}
			want := verifyReference(m, id, &probe, ceiling, margin)
			m.mu.RUnlock()
			if got := m.Verify(id, &probe, ceiling, margin); got != want {
				t.Fatalf("%s: Verify(%s) = %+v, brute force %+v", step, id, got, want)
			}
			if th, enrolled := m.VerifyThresholdOf(id, ceiling, margin); enrolled != ok || (ok && th != want.Threshold) {
				t.Fatalf("%s: VerifyThresholdOf(%s) = %v, %v; brute force %v", step, id, th, enrolled, want.Threshold)
			}
		}
	}
	check("loaded")
	// Every user's nearest other is known now; change the gallery around
	// them: new users next to known ones, a second descriptor, a
	// replacement, removals of users that were others' nearest.
	for i := range 20 {
		near := s.Probe(*m.rowDescriptor(int32(s.IntN(m.Len()))))
		m.AddDescriptors("u"+strconv.Itoa(n+i), near)
	}
	if got := len(m.near) >= n-1; got != known {
		t.Fatalf("%d users known after additions, want known %v", len(m.near), known)
	}
	check("added")
	for i := range 20 {
		id := "u" + strconv.Itoa(s.IntN(n))
		m.mu.RLock()
		slot := m.index[id]
		extra := s.Probe(*m.rowDescriptor(m.users[slot].rows[0]))
		m.mu.RUnlock()
		m.AddDescriptors(id, extra)
		if i%2 == 0 {
			m.SetUser("u"+strconv.Itoa(s.IntN(n)), []models.Descriptor{s.User(), s.User()})
		}
	}
	check("grown and replaced")
	for u := range n {
		m.mu.RLock()
		slot, ok := m.index["u"+strconv.Itoa(u)]
		e, known := m.near[slot]
		m.mu.RUnlock()
		if ok && known && e.by >= 0 && u%3 == 0 {
			m.RemoveUser(m.users[e.by].id) // someone's nearest other
		}
	}
	// Slots freed above are reused by new users.
	for i := range 40 {
		m.AddDescriptors("u"+strconv.Itoa(n+i), s.User())
	}
	check("removed and reused")
}

// TestVerifiable: on the real idols gallery, half its people enrolled from
// up to three photos, every photo of every person (enrolled or not) is
// Verifiable exactly when some enrolled user's 1:1 check accepts it.
func TestVerifiable(t *testing.T) {
	m := NewMatcher(DefaultMatcherConfig())
	var probes []models.Descriptor
	for i, r := range recognizertest.Idols(t) {
		for j, e := range r.Encodings {
			if i%2 == 0 && j < 3 {
				m.AddDescriptors(r.User.ID, e.Descriptor)
			} else {
				probes = append(probes, e.Descriptor)
			}
		}
	}
	cfg := DefaultCalibratorConfig()
	cfg.Apply, cfg.MinInterval = false, 0
	c := NewCalibrator(m, cfg, nil)
	ceiling := c.Current().VerifyThreshold
	var ids []string
	for id := range m.index {
		ids = append(ids, id)
	}
	var yes, no int
	for i := range probes {
		want := false
		for _, id := range ids {
			if m.Verify(id, &probes[i], ceiling, DefaultVerifyMargin).Match {
				want = true
				break
			}
		}
		if got := c.Verifiable(m.Identify(&probes[i])); got != want {
			t.Fatalf("probe %d: Verifiable = %v, some user's 1:1 accepts it: %v", i, got, want)
		}
		if want {
			yes++
		} else {
			no++
		}
	}
	if yes == 0 || no == 0 {
		t.Fatalf("%d verifiable, %d not: the gallery does not exercise both answers", yes, no)
	}
	t.Logf("%d users, 1:1 ceiling %.3f: %d probes verifiable by someone, %d by nobody", len(ids), ceiling, yes, no)
}
