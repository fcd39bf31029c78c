package sync_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	ksync "github.com/kioskd/kioskd/sync"
)

func TestTimetable(t *testing.T) {
	t0 := time.Date(2025, 3, 14, 8, 0, 0, 0, time.UTC)
	sess := func(id, group, room string, start, end, late time.Duration) ksync.ClassSession {
		return ksync.ClassSession{ID: id, ClassGroup: group, Room: room, Start: t0.Add(start), End: t0.Add(end), LateAfter: t0.Add(late)}
	}
	tt := &ksync.Timetable{Sessions: []ksync.ClassSession{
		sess("a", "SE-1A", "Lab 2", 0, 2*time.Hour, 10*time.Minute),
		sess("b", "SE-1B", "Lab 2", -5*time.Minute, 2*time.Hour, 10*time.Minute),
		sess("c", "SE-1A", "Lab 3", 0, time.Hour, 10*time.Minute),
	}}
	if err := tt.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		room, group string
		at          time.Duration
		want        string
		member      bool
	}{
		{"Lab 2", "SE-1A", 5 * time.Minute, "a", true},   // the person's group first
		{"Lab 2", "SE-1C", 5 * time.Minute, "b", false},  // else the earliest started
		{"Lab 2", "SE-1A", -2 * time.Minute, "b", false}, // a has not started
		{"Lab 3", "SE-1B", 30 * time.Minute, "c", false},
		{"Lab 3", "SE-1A", time.Hour, "", false}, // end is exclusive
		{"", "SE-1A", 5 * time.Minute, "a", true},
	} {
		s, member, ok := tt.SessionFor(tc.room, tc.group, t0.Add(tc.at))
		if s.ID != tc.want || member != tc.member || ok != (tc.want != "") {
			t.Errorf("SessionFor(%q, %q, %s) = %q member=%v ok=%v, want %q member=%v", tc.room, tc.group, tc.at, s.ID, member, ok, tc.want, tc.member)
		}
	}
	a := tt.Sessions[0]
	if a.Late(t0.Add(9*time.Minute)) || !a.Late(t0.Add(10*time.Minute)) {
		t.Fatal("late from late_after on")
	}
	var none *ksync.Timetable
	if _, _, ok := none.SessionFor("", "", t0); ok {
		t.Fatal("a nil timetable has no session")
	}
	for name, s := range map[string]ksync.ClassSession{
		"class_group required":     sess("x", "", "", 0, time.Hour, 0),
		"start must be before end": sess("x", "g", "", time.Hour, 0, 0),
		"longer than 24 hours":     sess("x", "g", "", 0, 25*time.Hour, 0),
		"late_after must lie":      sess("x", "g", "", 0, time.Hour, 2*time.Hour),
		"id required":              sess("", "g", "", 0, time.Hour, 0),
	} {
		err := (&ksync.Timetable{Sessions: []ksync.ClassSession{s}}).Validate()
		if models.ErrorCode(err) != models.EINVALID || !strings.Contains(models.ErrorMessage(err), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	dup := &ksync.Timetable{Sessions: []ksync.ClassSession{tt.Sessions[0], tt.Sessions[0]}}
	if err := dup.Validate(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate id: %v", err)
	}
}
