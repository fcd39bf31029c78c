package device

import (
	"testing"
	"time"
)

// TestIdleGate drives the idle gate with made-up frame differences: the
// first frame, any change, the heartbeat and a face in view let a frame
// through; a still, empty scene does not.
func TestIdleGate(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		at   time.Time
		diff float64
		busy bool
		want bool
	}
	for _, c := range []struct {
		name      string
		heartbeat time.Duration
		steps     []step
	}{
		{"first frame goes through", 250 * time.Millisecond, []step{{ms(0), 0, false, true}}},
		{"still scene: only the heartbeat", 250 * time.Millisecond, []step{
			{ms(0), 255, false, true}, {ms(33), 0.3, false, false}, {ms(66), 0.5, false, false},
			{ms(249), 0.4, false, false}, {ms(250), 0.4, false, true}, {ms(283), 0.1, false, false},
		}},
		{"change goes through at once", 250 * time.Millisecond, []step{
			{ms(0), 255, false, true}, {ms(33), 1.9, false, false}, {ms(66), 2, false, true}, {ms(99), 9.4, false, true},
		}},
		{"a face in view: every frame", 250 * time.Millisecond, []step{
			{ms(0), 255, false, true}, {ms(33), 0, true, true}, {ms(66), 0, true, true}, {ms(99), 0, false, false},
		}},
		{"heartbeat counts from the last frame let through", 250 * time.Millisecond, []step{
			{ms(0), 255, false, true}, {ms(200), 5, false, true}, {ms(300), 0, false, false}, {ms(450), 0, false, true},
		}},
		{"clock going back (a replay restarted) lets through", 250 * time.Millisecond, []step{
			{ms(1000), 255, false, true}, {ms(0), 0, false, true}, {ms(33), 0, false, false},
		}},
		{"heartbeat 0: every frame", 0, []step{{ms(0), 255, false, true}, {ms(1), 0, false, true}, {ms(2), 0, false, true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := idleGate{threshold: 2, heartbeat: c.heartbeat}
			for i, s := range c.steps {
				if got := g.admit(s.at, s.diff, s.busy) != admitNone; got != s.want {
					t.Fatalf("step %d (%v, diff %v, busy %v): admit = %v, want %v", i, s.at.Sub(t0), s.diff, s.busy, got, s.want)
				}
			}
		})
	}
}

// TestIdleGateProbesOnHeartbeat: a frame let through by the heartbeat alone
// gets the quick probe; the first frame, a change and a face in view get
// the whole gate.
func TestIdleGateProbesOnHeartbeat(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	g := idleGate{threshold: 2, heartbeat: 250 * time.Millisecond}
	for i, s := range []struct {
		ms   int
		diff float64
		busy bool
		want admission
	}{
		{0, 255, false, admitFull}, {100, 0.4, false, admitNone}, {250, 0.4, false, admitProbe},
		{283, 3, false, admitFull}, {533, 0.2, false, admitProbe}, {566, 0.2, true, admitFull},
	} {
		if got := g.admit(t0.Add(time.Duration(s.ms)*time.Millisecond), s.diff, s.busy); got != s.want {
			t.Fatalf("step %d: admit = %v, want %v", i, got, s.want)
		}
	}
}

// TestGaterProbe: the heartbeat's quick scan at IdleProbeWidth (400 of 640)
// finds every face the gate would take (MinFaceSize, 90 px, and up) and
// nothing in an empty scene.
func TestGaterProbe(t *testing.T) {
	g := mustGater(t)
	empty := background()
	defer empty.Close()
	if found, err := g.Probe(empty); err != nil || found {
		t.Fatalf("empty scene: found %v, %v", found, err)
	}
	for _, c := range []struct {
		faceW int
		want  bool
	}{{90, true}, {120, true}, {160, true}, {220, true}} {
		f := background()
		paste(&f, mustPerson(t, "people/obama/1.jpg", c.faceW), scenW/2, scenH/2)
		found, err := g.Probe(f)
		f.Close()
		if err != nil || found != c.want {
			t.Errorf("face %d px: found %v (%v), want %v", c.faceW, found, err, c.want)
		}
	}
}
