package device

import (
	"context"
	"image"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
)

// memStore is an in-memory AttendanceRecorder for the decider's tests.
type memStore struct {
	users   map[string]*models.User
	events  []*models.AttendanceEvent
	last    map[string]*models.AttendanceEvent // from before a restart
	failGet error                              // GetUser's error, when set
}

func (s *memStore) RecordAttendance(_ context.Context, ev *models.AttendanceEvent) error {
	s.events = append(s.events, ev)
	return nil
}

func (s *memStore) GetUser(_ context.Context, id string) (*models.User, error) {
	if s.failGet != nil {
		return nil, s.failGet
	}
	if u, ok := s.users[id]; ok {
		return u, nil
	}
	return nil, models.Errorf(models.ENOTFOUND, "no user %s", id)
}

func (s *memStore) LastAttendance(_ context.Context, id string) (*models.AttendanceEvent, error) {
	if ev, ok := s.last[id]; ok {
		return ev, nil
	}
	return nil, models.Errorf(models.ENOTFOUND, "no event")
}

// frameStep is one gated frame given to the decider at offset at from the
// start, followed by the encodings (user ids, "" for unknown) that land
// before the next frame.
type frameStep struct {
	at    time.Duration
	gate  Gate
	votes []string
}

var deciderBox = image.Rect(200, 120, 360, 280)

// passes is a frame whose one face passes the gates at box.
func passes(box image.Rectangle) Gate {
	return Gate{Faces: []Detection{{Box: box}}, Face: &FaceQuality{Box: box}}
}

// refused is a frame whose one face fails a gate.
func refused(problem models.FeedbackKind) Gate {
	return Gate{Faces: []Detection{{Box: deciderBox}}, Face: &FaceQuality{Box: deciderBox}, Problem: problem}
}

// twoFaces is a frame with two people.
func twoFaces() Gate {
	return Gate{Faces: []Detection{{Box: deciderBox}, {Box: deciderBox.Add(image.Pt(200, 0))}}, Problem: models.FeedbackOnePerson}
}

// at is a frame step passing the gates at deciderBox.
func at(d time.Duration, votes ...string) frameStep {
	return frameStep{at: d, gate: passes(deciderBox), votes: votes}
}

// runDecider plays steps through a decider and returns the users recorded,
// the feedback kinds published and the status counters.
func runDecider(t *testing.T, cfg Config, store *memStore, steps []frameStep) ([]string, []models.Feedback, CameraStatus) {
	t.Helper()
	td := newTestDecider(&cfg, store)
	defer td.cancel()
	for i, s := range steps {
		td.at(s.at)
		tr := td.d.gated(td.clock, td.clock, i, &s.gate)
		if tr == nil {
			if len(s.votes) > 0 {
				t.Fatalf("step %d: votes for a frame that did not pass", i)
			}
			continue
		}
		votes := make([]vote, len(s.votes))
		for j, v := range s.votes {
			votes[j] = vote{userID: v, distance: 0.4}
		}
		td.step(tr, votes, i)
	}
	return td.results()
}

// testDecider is a decider on an in-memory store with a clock the test
// moves, its feedback and its status counters.
type testDecider struct {
	d      *decider
	store  *memStore
	base   time.Time
	clock  time.Time
	ch     <-chan models.Feedback
	cancel func()
	status CameraStatus
}

func newTestDecider(cfg *Config, store *memStore) *testDecider {
	td := &testDecider{store: store, base: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	td.clock = td.base
	bus := NewBus()
	td.ch, td.cancel = bus.Subscribe(256)
	now := func() time.Time { return td.clock }
	td.d = &decider{
		cfg: cfg, store: store, say: &announcer{bus: bus, now: now},
		logger: slog.New(slog.DiscardHandler), warn: func(string, string, ...any) {},
		ctx: context.Background(), now: now,
		count: func(fn func(*CameraStatus)) { fn(&td.status) }, lastEvents: map[string]lastEvent{},
	}
	return td
}

// at sets the clock to offset from the start.
func (td *testDecider) at(offset time.Duration) { td.clock = td.base.Add(offset) }

// step lands encodings on track tr (frame i) and decides after each and
// after the frame.
func (td *testDecider) step(tr *track, votes []vote, i int) {
	for _, v := range votes {
		if cur := td.d.current(tr.id); cur != nil {
			td.d.vote(cur, v, i)
			td.d.decide(cur, cur.lastSeen)
		}
	}
	td.d.decide(tr, td.clock)
}

// results are the users recorded, the feedback published and the status.
func (td *testDecider) results() ([]string, []models.Feedback, CameraStatus) {
	var users []string
	for _, ev := range td.store.events {
		users = append(users, ev.UserID)
	}
	var fb []models.Feedback
	for {
		select {
		case f := <-td.ch:
			fb = append(fb, f)
			continue
		default:
		}
		break
	}
	return users, fb, td.status
}

// checkDecided compares a decider run's events and feedback kinds with the
// wanted ones, then runs check (may be nil).
func checkDecided(t *testing.T, events []string, fb []models.Feedback, st CameraStatus, wantEvents []string, wantKinds []models.FeedbackKind, check func(*testing.T, []models.Feedback, CameraStatus)) {
	t.Helper()
	if !slices.Equal(events, wantEvents) {
		t.Errorf("events = %v, want %v", events, wantEvents)
	}
	if got := kindsOf(fb); !slices.Equal(got, wantKinds) {
		t.Fatalf("feedback = %v, want %v", got, wantKinds)
	}
	if check != nil {
		check(t, fb, st)
	}
}

func kindsOf(fb []models.Feedback) []models.FeedbackKind {
	out := make([]models.FeedbackKind, len(fb))
	for i, f := range fb {
		out[i] = f.Kind
	}
	return out
}

// TestDecider drives the decision (track, votes, liveness, cooldown) with
// made-up gate verdicts and encodings: no models, no video.
func TestDecider(t *testing.T) {
	const (
		rec     = models.FeedbackRecognised
		unknown = models.FeedbackUnknown
		look    = models.FeedbackLookAtCamera
		failed  = models.FeedbackLivenessFailed
	)
	alice := &models.User{ID: "alice", FullName: "Alice Adams", Status: models.UserActive}
	gone := &models.User{ID: "gone", FullName: "Gone Away", Status: models.UserSuspended}
	ms := time.Millisecond
	tests := []struct {
		name     string
		liveness bool
		last     map[string]*models.AttendanceEvent
		failGet  error
		steps    []frameStep
		events   []string
		kinds    []models.FeedbackKind
		check    func(t *testing.T, fb []models.Feedback, st CameraStatus)
	}{{
		name:   "two of three votes commit once",
		steps:  []frameStep{at(0, "alice"), at(100*ms, "bob"), at(200*ms, "alice"), at(300*ms, "alice")},
		events: []string{"alice"},
		kinds:  []models.FeedbackKind{rec},
		check: func(t *testing.T, fb []models.Feedback, st CameraStatus) {
			if !strings.HasPrefix(fb[0].Message, "Welcome, Alice Adams - ") || fb[0].UserID != "alice" || fb[0].EventID == "" {
				t.Errorf("welcome = %+v", fb[0])
			}
			if st.Events != 1 {
				t.Errorf("status events = %d", st.Events)
			}
		},
	}, {
		name:  "votes split: no decision",
		steps: []frameStep{at(0, "alice"), at(100*ms, "bob"), at(200*ms, "carol")},
	}, {
		name:  "a second person resets the track",
		steps: []frameStep{at(0, "alice"), {at: 100 * ms, gate: twoFaces()}, at(200*ms, "alice")},
		kinds: []models.FeedbackKind{models.FeedbackOnePerson},
	}, {
		name:  "a face gone longer than the track timeout starts over",
		steps: []frameStep{at(0, "alice"), at(1500*ms, "alice")},
	}, {
		name:  "a jump in place starts a new track",
		steps: []frameStep{at(0, "alice"), {at: 100 * ms, gate: passes(deciderBox.Add(image.Pt(300, 0))), votes: []string{"alice"}}},
	}, {
		name:  "gate problems are said once each",
		steps: []frameStep{{gate: refused(models.FeedbackTooDark)}, {at: 100 * ms, gate: refused(models.FeedbackTooDark)}, {at: 200 * ms, gate: refused(models.FeedbackHoldStill)}},
		kinds: []models.FeedbackKind{models.FeedbackTooDark, models.FeedbackHoldStill},
	}, {
		name:  "unknown face announced once",
		steps: []frameStep{at(0, ""), at(100*ms, ""), at(200*ms, ""), at(300*ms, "")},
		kinds: []models.FeedbackKind{unknown},
		check: func(t *testing.T, _ []models.Feedback, st CameraStatus) {
			if st.Unknown != 1 {
				t.Errorf("status unknown = %d", st.Unknown)
			}
		},
	}, {
		name:   "cooldown: the same person again within it is already recorded",
		steps:  []frameStep{at(0, "alice", "alice"), {at: 100 * ms, gate: twoFaces()}, at(200*ms, "alice", "alice")},
		events: []string{"alice"},
		kinds:  []models.FeedbackKind{rec, models.FeedbackOnePerson, rec},
		check: func(t *testing.T, fb []models.Feedback, _ CameraStatus) {
			if fb[2].Message != "Already recorded." || fb[2].EventID != fb[0].EventID {
				t.Errorf("second = %+v, first event %s", fb[2], fb[0].EventID)
			}
		},
	}, {
		name:  "cooldown survives a restart through the store",
		last:  map[string]*models.AttendanceEvent{"alice": {ID: "ev-1", UserID: "alice", Time: time.Date(2026, 3, 2, 8, 58, 0, 0, time.UTC)}},
		steps: []frameStep{at(0, "alice", "alice")},
		kinds: []models.FeedbackKind{rec},
		check: func(t *testing.T, fb []models.Feedback, _ CameraStatus) {
			if fb[0].Message != "Already recorded." || fb[0].EventID != "ev-1" {
				t.Errorf("feedback = %+v", fb[0])
			}
		},
	}, {
		name:   "an event older than the cooldown does not hold",
		last:   map[string]*models.AttendanceEvent{"alice": {ID: "ev-1", UserID: "alice", Time: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}},
		steps:  []frameStep{at(0, "alice", "alice")},
		events: []string{"alice"},
		kinds:  []models.FeedbackKind{rec},
	}, {
		name:  "a disabled user is not recognised",
		steps: []frameStep{at(0, "gone", "gone"), at(100*ms, "gone")},
		kinds: []models.FeedbackKind{unknown},
	}, {
		name:    "a store failure says nothing and tries again",
		failGet: models.Errorf(models.EINTERNAL, "disk"),
		steps:   []frameStep{at(0, "alice", "alice"), at(100*ms, "alice")},
	}, {
		name:     "liveness on: a still face is asked to blink or turn, then refused",
		liveness: true,
		steps:    []frameStep{at(0, "alice", "alice"), at(3 * time.Second), at(5500 * ms), at(6 * time.Second)},
		kinds:    []models.FeedbackKind{look, failed},
		check: func(t *testing.T, fb []models.Feedback, st CameraStatus) {
			if fb[0].Message != "Please blink, or turn your head a little." || st.LivenessFailed != 1 {
				t.Errorf("feedback %+v, liveness failed %d", fb[0], st.LivenessFailed)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.KioskID = "kiosk-1"
			cfg.Liveness = tc.liveness
			if tc.liveness { // its frames come seconds apart
				cfg.TrackTimeout = 10 * time.Second
			}
			store := &memStore{users: map[string]*models.User{"alice": alice, "gone": gone}, last: tc.last, failGet: tc.failGet}
			events, fb, st := runDecider(t, cfg, store, tc.steps)
			checkDecided(t, events, fb, st, tc.events, tc.kinds, tc.check)
		})
	}
}

// TestDeciderWantsPixels: the gates track a face's pixels only while its
// track still gathers liveness evidence, or a new track may start.
func TestDeciderWantsPixels(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Liveness = true
	td := newTestDecider(&cfg, &memStore{})
	defer td.cancel()
	now := td.base
	if !td.d.wantsPixels(now) {
		t.Error("no track: pixels not wanted")
	}
	g := passes(deciderBox)
	tr := td.d.gated(now, now, 0, &g)
	if !td.d.wantsPixels(now) {
		t.Error("a track without evidence: pixels not wanted")
	}
	tr.live.moved = true
	if td.d.wantsPixels(now) {
		t.Error("a track that showed liveness: pixels still wanted")
	}
	if !td.d.wantsPixels(now.Add(cfg.TrackTimeout + time.Millisecond)) {
		t.Error("after the track timeout (a new track): pixels not wanted")
	}
	tr.live.moved, tr.decided = false, true
	if td.d.wantsPixels(now) {
		t.Error("a decided track: pixels still wanted")
	}
	cfg.Liveness = false
	tr.decided = false
	if td.d.wantsPixels(now) {
		t.Error("liveness off: pixels still wanted")
	}
}
