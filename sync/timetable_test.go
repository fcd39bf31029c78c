package sync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
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

// TestSessionSummary: members on time, late (by their first event), absent;
// guests from other groups; inactive users and other sessions left out.
func TestSessionSummary(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	t0 := time.Date(2025, 3, 14, 8, 0, 0, 0, time.UTC)
	user := func(id, group string, status models.UserStatus) models.UserRecord {
		return models.UserRecord{User: models.User{ID: id, Email: id + "@example.org", FullName: "User " + id, Role: models.RoleTrainee,
			Status: status, ClassGroup: group, Version: 1, UpdatedAt: t0}}
	}
	if _, err := db.ApplyUserRecords(ctx, []models.UserRecord{user("a1", "SE-1A", models.UserActive), user("a2", "SE-1A", models.UserActive),
		user("a3", "SE-1A", models.UserActive), user("a4", "SE-1A", models.UserInactive), user("b1", "SE-1B", models.UserActive)}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		user, session string
		at            time.Duration
	}{{"a1", "s", 2 * time.Minute}, {"a1", "s", 20 * time.Minute}, {"a2", "s", 12 * time.Minute}, {"b1", "s", 5 * time.Minute}, {"a3", "other", time.Minute}} {
		ev := &models.AttendanceEvent{UserID: e.user, SessionID: e.session, Time: t0.Add(e.at), KioskID: "k", Distance: 0.4}
		if err := db.RecordAttendance(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	s := &ksync.ClassSession{ID: "s", ClassGroup: "SE-1A", Room: "Lab 2", Start: t0, End: t0.Add(time.Hour), LateAfter: t0.Add(10 * time.Minute)}
	sum, err := ksync.Summarize(ctx, db, s)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("on_time %v late %v absent %v guests %v counts %+v", sum.OnTime, sum.Late, sum.Absent, sum.Guests, sum.Counts)
	want := fmt.Sprintf("on_time %v late %v absent %v guests %v counts %+v",
		[]ksync.Arrival{{UserID: "a1", Time: t0.Add(2 * time.Minute), MinutesAfter: 2}},
		[]ksync.Arrival{{UserID: "a2", Time: t0.Add(12 * time.Minute), MinutesAfter: 12}},
		[]string{"a3"},
		[]ksync.Arrival{{UserID: "b1", Time: t0.Add(5 * time.Minute), MinutesAfter: 5}},
		ksync.SummaryCounts{Members: 3, OnTime: 1, Late: 1, Absent: 1, Guests: 1})
	if got != want {
		t.Fatalf("summary:\n got %s\nwant %s", got, want)
	}
}
