package device

import (
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
)

// idStep is one gated frame for the ID + face decider: an optional claim
// (a user id) made before it, and the encodings that land after it. An
// encoding "alice" is alice's face named by 1:N; "?alice" is alice's face
// that 1:N could not name clearly; "!" is a stranger's face, which no
// user's 1:1 check could accept.
type idStep struct {
	at    time.Duration
	claim string
	encs  []string
}

// idFaces numbers the faces of the made-up gallery; "nobody" is enrolled
// under an ID but has no face.
var idFaces = map[string]float32{"alice": 1, "bob": 2, "carol": 3}

// fakeVerify answers 1:1 checks: the face matches when it is the user's.
func fakeVerify(userID string, d *models.Descriptor) verdict {
	n, ok := idFaces[userID]
	if !ok {
		return verdict{}
	}
	if d[0] == n {
		return verdict{match: true, enrolled: true, distance: 0.35}
	}
	return verdict{enrolled: true, distance: 0.55}
}

// runIDDecider plays steps through a decider in mode and returns the users
// recorded and the feedback published.
func runIDDecider(t *testing.T, mode Mode, steps []idStep) ([]string, []models.Feedback, CameraStatus) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Mode, cfg.Liveness, cfg.TrackTimeout = mode, false, time.Minute
	users := map[string]*models.User{}
	for _, id := range []string{"alice", "bob", "carol", "nobody"} {
		users[id] = &models.User{ID: id, FullName: strings.ToUpper(id[:1]) + id[1:], Status: models.UserActive}
	}
	td := newTestDecider(&cfg, &memStore{users: users})
	defer td.cancel()
	td.d.verify = fakeVerify
	for i, s := range steps {
		td.at(s.at)
		if s.claim != "" {
			td.d.setClaim(s.claim, "X-"+s.claim, "keypad")
		}
		g := passes(deciderBox)
		tr := td.d.gated(td.clock, td.clock, i, &g)
		votes := make([]vote, len(s.encs))
		for j, e := range s.encs {
			face, unclear := strings.CutPrefix(e, "?")
			face, stranger := strings.CutPrefix(face, "!")
			desc := &models.Descriptor{}
			desc[0] = idFaces[face]
			votes[j] = vote{distance: 0.4, desc: desc, stranger: stranger}
			if !unclear && !stranger {
				votes[j].userID = face
			}
		}
		td.step(tr, votes, i)
	}
	return td.results()
}

// TestDeciderModes drives the mode logic (face, id_face, auto) and claims
// with made-up encodings and 1:1 answers: no models, no video.
func TestDeciderModes(t *testing.T) {
	const (
		rec      = models.FeedbackRecognised
		unknown  = models.FeedbackUnknown
		needID   = models.FeedbackNeedID
		verified = models.FeedbackVerified
		refused  = models.FeedbackNotVerified
	)
	ms := time.Millisecond
	tests := []struct {
		name   string
		mode   Mode
		steps  []idStep
		events []string
		kinds  []models.FeedbackKind
		check  func(t *testing.T, fb []models.Feedback, st CameraStatus)
	}{{
		name:   "face: 1:N records, a claim is not needed",
		mode:   ModeFace,
		steps:  []idStep{{encs: []string{"alice", "alice"}}},
		events: []string{"alice"},
		kinds:  []models.FeedbackKind{rec},
	}, {
		name:  "face: an unclear face is unknown, no ID asked",
		mode:  ModeFace,
		steps: []idStep{{encs: []string{"?alice", "?alice"}}},
		kinds: []models.FeedbackKind{unknown},
	}, {
		name:  "id_face: 1:N alone never records; the ID is asked once",
		mode:  ModeIDFace,
		steps: []idStep{{encs: []string{"alice", "alice"}}, {at: 100 * ms, encs: []string{"alice"}}},
		kinds: []models.FeedbackKind{needID},
	}, {
		name:   "id_face: the right ID, then the face: verified and recorded once",
		mode:   ModeIDFace,
		steps:  []idStep{{encs: []string{"?alice"}}, {at: 100 * ms, claim: "alice", encs: []string{"?alice"}}, {at: 200 * ms, encs: []string{"?alice"}}},
		events: []string{"alice"},
		kinds:  []models.FeedbackKind{needID, verified},
		check: func(t *testing.T, fb []models.Feedback, _ CameraStatus) {
			if !strings.HasPrefix(fb[1].Message, "ID verified. Welcome, Alice") || fb[1].EventID == "" {
				t.Errorf("verified = %+v", fb[1])
			}
		},
	}, {
		name:   "id_face: a claim made before the face appears is used by it",
		mode:   ModeIDFace,
		steps:  []idStep{{claim: "bob", encs: []string{"bob", "bob"}}},
		events: []string{"bob"},
		kinds:  []models.FeedbackKind{verified},
	}, {
		name:  "id_face: a wrong ID with someone else's face records nothing",
		mode:  ModeIDFace,
		steps: []idStep{{claim: "alice", encs: []string{"bob", "bob"}}, {at: 100 * ms, encs: []string{"bob", "bob"}}},
		kinds: []models.FeedbackKind{refused},
		check: func(t *testing.T, fb []models.Feedback, st CameraStatus) {
			if fb[0].Message != "ID and face do not match." || st.NotVerified != 1 {
				t.Errorf("refusal = %+v, not verified %d", fb[0], st.NotVerified)
			}
		},
	}, {
		name:   "id_face: after a refused claim the right ID verifies",
		mode:   ModeIDFace,
		steps:  []idStep{{claim: "alice", encs: []string{"bob", "bob"}}, {at: 100 * ms, claim: "bob"}},
		events: []string{"bob"},
		kinds:  []models.FeedbackKind{refused, verified},
	}, {
		name:  "id_face: an ID with no enrolled face is refused",
		mode:  ModeIDFace,
		steps: []idStep{{claim: "nobody", encs: []string{"alice"}}},
		kinds: []models.FeedbackKind{refused},
		check: func(t *testing.T, fb []models.Feedback, _ CameraStatus) {
			if !strings.Contains(fb[0].Message, "no enrolled face") {
				t.Errorf("refusal = %+v", fb[0])
			}
		},
	}, {
		name:  "id_face: a claim expires unused",
		mode:  ModeIDFace,
		steps: []idStep{{claim: "alice"}, {at: ClaimTTL + time.Second, encs: []string{"alice", "alice"}}},
		kinds: []models.FeedbackKind{needID},
	}, {
		name:   "id_face: one claim is one decision",
		mode:   ModeIDFace,
		steps:  []idStep{{claim: "alice", encs: []string{"alice", "alice"}}, {at: 2 * time.Minute, encs: []string{"alice", "alice"}}},
		events: []string{"alice"},
		kinds:  []models.FeedbackKind{verified, needID},
	}, {
		name:   "auto: a clear 1:N decision records without an ID",
		mode:   ModeAuto,
		steps:  []idStep{{encs: []string{"carol", "carol"}}},
		events: []string{"carol"},
		kinds:  []models.FeedbackKind{rec},
	}, {
		name:   "auto: an unclear face is asked for the ID, then verified",
		mode:   ModeAuto,
		steps:  []idStep{{encs: []string{"?carol", "?carol"}}, {at: 100 * ms, claim: "carol"}},
		events: []string{"carol"},
		kinds:  []models.FeedbackKind{needID, verified},
	}, {
		name:  "auto: an unclear face with a wrong ID records nothing",
		mode:  ModeAuto,
		steps: []idStep{{encs: []string{"?carol", "?carol"}}, {at: 100 * ms, claim: "alice"}},
		kinds: []models.FeedbackKind{needID, refused},
		check: noUnknown,
	}, {
		name:  "auto: a stranger is unknown at once, counted once, never asked for an ID",
		mode:  ModeAuto,
		steps: []idStep{{encs: []string{"!", "!"}}, {at: 100 * ms, encs: []string{"!", "!"}}, {at: time.Minute, encs: []string{"!"}}},
		kinds: []models.FeedbackKind{unknown},
		check: unknownOnce("Face not recognised. Please see an administrator."),
	}, {
		name:  "auto: one stranger frame among unclear ones asks for the ID",
		mode:  ModeAuto,
		steps: []idStep{{encs: []string{"!", "?carol"}}},
		kinds: []models.FeedbackKind{needID},
		check: noUnknown,
	}, {
		name:  "auto: a stranger typing an enrolled user's ID records nothing",
		mode:  ModeAuto,
		steps: []idStep{{encs: []string{"!", "!"}}, {at: 100 * ms, claim: "alice"}, {at: 200 * ms, encs: []string{"!"}}},
		kinds: []models.FeedbackKind{unknown, refused},
	}, {
		name: "auto: asked for an ID, none verified within the timeout: unknown once",
		mode: ModeAuto,
		steps: []idStep{{encs: []string{"?carol", "?carol"}}, {at: idPromptTimeout - ms, encs: []string{"?carol"}},
			{at: idPromptTimeout}, {at: 3 * idPromptTimeout, encs: []string{"?carol"}}},
		kinds: []models.FeedbackKind{needID, unknown},
		check: unknownOnce("No valid ID shown. Please see an administrator."),
	}, {
		name:  "id_face: a stranger is asked for the ID; none within the timeout: unknown once",
		mode:  ModeIDFace,
		steps: []idStep{{encs: []string{"!", "!"}}, {at: 5 * time.Second, encs: []string{"!"}}, {at: idPromptTimeout}, {at: 4 * idPromptTimeout, encs: []string{"!"}}},
		kinds: []models.FeedbackKind{needID, unknown},
		check: unknownOnce("No valid ID shown. Please see an administrator."),
	}, {
		name:  "id_face: a refused ID does not stop the timeout",
		mode:  ModeIDFace,
		steps: []idStep{{claim: "alice", encs: []string{"!", "!"}}, {at: 100 * ms}, {at: 100*ms + idPromptTimeout}},
		kinds: []models.FeedbackKind{refused, unknown},
		check: unknownOnce("No valid ID shown. Please see an administrator."),
	}, {
		name:   "id_face: verified before the timeout is never unknown",
		mode:   ModeIDFace,
		steps:  []idStep{{encs: []string{"?alice"}}, {at: idPromptTimeout - ms, claim: "alice", encs: []string{"?alice"}}, {at: 3 * idPromptTimeout, encs: []string{"?alice"}}},
		events: []string{"alice"},
		kinds:  []models.FeedbackKind{needID, verified},
		check:  noUnknown,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			events, fb, st := runIDDecider(t, tc.mode, tc.steps)
			checkDecided(t, events, fb, st, tc.events, tc.kinds, tc.check)
		})
	}
}

// noUnknown checks that nothing was counted unknown.
func noUnknown(t *testing.T, _ []models.Feedback, st CameraStatus) {
	if st.Unknown != 0 {
		t.Errorf("unknown = %d, want 0", st.Unknown)
	}
}

// unknownOnce checks that the track was counted unknown once, saying msg.
func unknownOnce(msg string) func(*testing.T, []models.Feedback, CameraStatus) {
	return func(t *testing.T, fb []models.Feedback, st CameraStatus) {
		var said []string
		for _, f := range fb {
			if f.Kind == models.FeedbackUnknown {
				said = append(said, f.Message)
			}
		}
		if st.Unknown != 1 || len(said) != 1 || said[0] != msg {
			t.Errorf("unknown = %d, said %q; want 1, %q", st.Unknown, said, msg)
		}
	}
}

// TestCleanClaimID bounds what a QR code or the keypad may claim.
func TestCleanClaimID(t *testing.T) {
	long := strings.Repeat("Z", MaxClaimIDLen)
	for in, want := range map[string]string{" S-1234 ": "S-1234", "ab/12.x": "ab/12.x", "KE 2026 0042": "KE 2026 0042",
		"Éc-7": "Éc-7", `!"#$%&'()*+,:;<=>?@[\]^_{|}~` + "`": `!"#$%&'()*+,:;<=>?@[\]^_{|}~` + "`", long: long} {
		if got, err := CleanClaimID(in); err != nil || got != want {
			t.Errorf("CleanClaimID(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "   ", "tab\t1", "nul\x00", "\u202eexe.1", "bad\xff", strings.Repeat("9", MaxClaimIDLen+1)} {
		if _, err := CleanClaimID(in); models.ErrorCode(err) != models.EINVALID {
			t.Errorf("CleanClaimID(%q) = %v, want EINVALID", in, err)
		}
	}
}
