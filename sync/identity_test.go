package sync_test

import (
	"context"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

// A person enrolled on the kiosk (its own id, version 0) and later pushed
// by central under central's id with local_id naming the kiosk's id becomes
// one user: the push applies instead of conflicting on the email, the
// kiosk's encodings and attendance move to central's id, the kiosk id is
// gone from the store and the matcher, and the store stays consistent.
func TestCentralUserAdoptsKioskEnrolment(t *testing.T) {
	b := synctest.MustMosquitto(t).URL
	reg := mustRegistry(t, b, nil)
	db := bolttest.MustOpenDB(t)
	ctx := context.Background()

	local := randomUser("kiosk-uuid-1", 0, 2, 11)
	local.User.Email = "amina@example.org"
	for i := range local.Encodings {
		local.Encodings[i].Source = models.SourceLocal
	}
	res, err := db.UpsertLocalUsers(ctx, []models.UserRecord{local})
	if err != nil || res[0].Err != nil {
		t.Fatalf("kiosk enrolment: %v %+v", err, res)
	}
	kioskID := res[0].UserID
	ev := &models.AttendanceEvent{UserID: kioskID, Time: time.Now().Add(-time.Hour).UTC(), KioskID: "kiosk-a", Distance: 0.4}
	if err := db.RecordAttendance(ctx, ev); err != nil {
		t.Fatal(err)
	}
	k := mustKiosk(t, testConfig(b, "kiosk-a"), db)
	waitConnected(t, k)

	central := randomUser("c-42", 1, 1, 12)
	central.User.Email = "Amina@example.org"
	central.LocalID = kioskID
	if err := reg.Push(ctx, []models.UserRecord{central}, 10); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "central's user applied", func() bool {
		u, err := db.GetUser(ctx, "c-42")
		return err == nil && u.Version == 1
	})
	if _, err := db.GetUser(ctx, kioskID); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("kiosk id after adoption: %v, want ENOTFOUND", err)
	}
	if u, err := db.GetUserByEmail(ctx, "amina@example.org"); err != nil || u.ID != "c-42" {
		t.Fatalf("email index after adoption: %+v %v", u, err)
	}
	encs, err := db.ListEncodings(ctx, "c-42")
	if err != nil {
		t.Fatal(err)
	}
	bySource := map[models.EncodingSource]int{}
	for _, e := range encs {
		bySource[e.Source]++
	}
	if bySource[models.SourceLocal] != 2 || bySource[models.SourceCentral] != 1 {
		t.Fatalf("encodings after adoption: %v, want 2 local and 1 central", bySource)
	}
	evs, _, err := db.ListAttendance(ctx, models.AttendanceFilter{UserID: "c-42"})
	if err != nil || len(evs) != 1 || evs[0].ID != ev.ID {
		t.Fatalf("attendance under central's id: %+v %v", evs, err)
	}
	if evs, _, _ := db.ListAttendance(ctx, models.AttendanceFilter{UserID: kioskID}); len(evs) != 0 {
		t.Fatalf("attendance left under the kiosk id: %+v", evs)
	}
	waitFor(t, 5*time.Second, "matcher holds one user", func() bool { return k.matcher.Users() == 1 })
	if err := db.Check(); err != nil {
		t.Fatalf("store consistency after adoption: %v", err)
	}
}

// The round trip a Django central makes: the kiosk enrols a person under
// its own id and sends the enrolment; central (the simulator with
// AdoptEnrolments) keeps it under its own id and pushes that record with
// local_id; the kiosk re-keys the user and central's ack empties the outbox.
func TestEnrolmentAdoptedByCentral(t *testing.T) {
	b := synctest.MustMosquitto(t).URL
	mustRegistry(t, b, func(c *registrysim.Config) { c.AdoptEnrolments = true })
	db := bolttest.MustOpenDB(t)
	ctx := context.Background()
	local := randomUser("kiosk-uuid-2", 0, 1, 21)
	local.Encodings[0].Source = models.SourceLocal
	res, err := db.UpsertLocalUsers(ctx, []models.UserRecord{local})
	if err != nil || res[0].Err != nil {
		t.Fatalf("kiosk enrolment: %v %+v", err, res)
	}
	kioskID := res[0].UserID
	local.User.ID, local.Encodings[0].UserID = kioskID, kioskID
	m, err := models.NewEnrolmentMessage(&local)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	k := mustKiosk(t, testConfig(b, "kiosk-a"), db)
	waitConnected(t, k)
	waitFor(t, 15*time.Second, "central's id applied", func() bool {
		u, err := db.GetUser(ctx, "c-1")
		return err == nil && u.Version == 1 && u.Email == local.User.Email
	})
	if _, err := db.GetUser(ctx, kioskID); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("kiosk id after adoption: %v, want ENOTFOUND", err)
	}
	if encs, err := db.ListEncodings(ctx, "c-1"); err != nil || len(encs) != 1 || encs[0].ID != local.Encodings[0].ID {
		t.Fatalf("encodings under central's id: %+v %v", encs, err)
	}
	waitFor(t, 15*time.Second, "outbox empty", func() bool { n, err := db.OutboxLen(ctx); return err == nil && n == 0 })
	if err := db.Check(); err != nil {
		t.Fatalf("store consistency after adoption: %v", err)
	}
}
