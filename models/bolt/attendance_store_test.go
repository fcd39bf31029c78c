package bolt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

func mustRecord(t *testing.T, db *bolt.DB, ev *models.AttendanceEvent) *models.AttendanceEvent {
	t.Helper()
	if ev.KioskID == "" {
		ev.KioskID = "kiosk-1"
	}
	if err := db.RecordAttendance(context.Background(), ev); err != nil {
		t.Fatalf("record attendance: %v", err)
	}
	return ev
}

func TestStoreAttendanceAndOutbox(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	t0 := bolttest.FixedNow
	var evs []*models.AttendanceEvent
	for i := range 10 {
		evs = append(evs, mustRecord(t, db, &models.AttendanceEvent{
			UserID: fmt.Sprintf("u%d", i%3), Time: t0.Add(time.Duration(i) * time.Minute), Distance: 0.3, SessionID: fmt.Sprintf("s%d", i%2),
		}))
	}
	if evs[0].ID == "" || evs[0].SyncState != models.SyncPending {
		t.Fatalf("defaults not set: %+v", evs[0])
	}
	// Duplicate id: conflict.
	dup := *evs[0]
	if err := db.RecordAttendance(ctx, &dup); models.ErrorCode(err) != models.ECONFLICT {
		t.Fatalf("duplicate id: %v", err)
	}

	// Newest first, filtered, paged.
	got, total, err := db.ListAttendance(ctx, models.AttendanceFilter{UserID: "u0", Limit: 2})
	if err != nil || total != 4 || len(got) != 2 || got[0].ID != evs[9].ID || got[1].ID != evs[6].ID {
		t.Fatalf("ListAttendance(u0) = %v total %d err %v", got, total, err)
	}
	got, total, _ = db.ListAttendance(ctx, models.AttendanceFilter{From: t0.Add(2 * time.Minute), To: t0.Add(5 * time.Minute), SessionID: "s0"})
	if total != 2 || got[0].ID != evs[4].ID || got[1].ID != evs[2].ID {
		t.Fatalf("ListAttendance(range, s0) = %v total %d", got, total)
	}
	var seen []string
	_ = db.ForEachAttendance(ctx, models.AttendanceFilter{To: t0.Add(3 * time.Minute), Limit: 1}, func(ev *models.AttendanceEvent) error {
		seen = append(seen, ev.ID)
		return nil
	})
	if len(seen) != 3 || seen[0] != evs[0].ID {
		t.Fatalf("ForEachAttendance = %v", seen)
	}
	if last, err := db.LastAttendance(ctx, "u1"); err != nil || last.ID != evs[7].ID {
		t.Fatalf("LastAttendance(u1) = %v %v", last, err)
	}
	if _, err := db.LastAttendance(ctx, "nobody"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("LastAttendance(nobody): %v", err)
	}

	// Every event has its outbox message, in order.
	msgs, err := db.PendingOutbox(ctx, 0, 100)
	if err != nil || len(msgs) != 10 {
		t.Fatalf("PendingOutbox = %d %v", len(msgs), err)
	}
	for i, m := range msgs {
		var ev models.AttendanceEvent
		if m.Kind != models.OutboxAttendance || m.Key != evs[i].ID || json.Unmarshal(m.Payload, &ev) != nil || ev.ID != evs[i].ID {
			t.Fatalf("msgs[%d] = %+v", i, m)
		}
		if i > 0 && m.Seq <= msgs[i-1].Seq {
			t.Fatalf("seq not increasing")
		}
	}
	if tail, _ := db.PendingOutbox(ctx, msgs[7].Seq, 100); len(tail) != 2 {
		t.Fatalf("PendingOutbox after seq: %d", len(tail))
	}

	// Ack the first six (twice, plus an unknown key).
	var keys []string
	for _, ev := range evs[:6] {
		keys = append(keys, ev.ID)
	}
	if n, err := db.AckOutbox(ctx, append(keys, "unknown")); err != nil || n != 6 {
		t.Fatalf("AckOutbox = %d %v", n, err)
	}
	if n, err := db.AckOutbox(ctx, keys); err != nil || n != 0 {
		t.Fatalf("second AckOutbox = %d %v", n, err)
	}
	if n, _ := db.OutboxLen(ctx); n != 4 {
		t.Fatalf("OutboxLen = %d", n)
	}

	// Retention: only acked events older than the cut go; pending stay.
	n, err := db.DeleteAttendanceBefore(ctx, t0.Add(8*time.Minute))
	if err != nil || n != 6 {
		t.Fatalf("DeleteAttendanceBefore = %d %v", n, err)
	}
	if _, total, _ := db.ListAttendance(ctx, models.AttendanceFilter{}); total != 4 {
		t.Fatalf("events left = %d", total)
	}
	// u0's latest (evs[9]) stays; u2's latest was evs[8]: pending, kept.
	if last, _ := db.LastAttendance(ctx, "u0"); last.ID != evs[9].ID {
		t.Fatalf("LastAttendance(u0) after retention = %v", last.ID)
	}
	db = bolttest.MustReopenDB(t, db)
	if last, err := db.LastAttendance(ctx, "u2"); err != nil || last.ID != evs[8].ID {
		t.Fatalf("LastAttendance(u2) after reopen = %v %v", last, err)
	}
}

func TestStoreAttendanceLatestAfterRetention(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	t0 := bolttest.FixedNow
	pending := mustRecord(t, db, &models.AttendanceEvent{UserID: "u", Time: t0})
	acked := mustRecord(t, db, &models.AttendanceEvent{UserID: "u", Time: t0.Add(time.Hour)})
	other := mustRecord(t, db, &models.AttendanceEvent{UserID: "v", Time: t0.Add(time.Minute)})
	if _, err := db.AckOutbox(ctx, []string{acked.ID, other.ID}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.DeleteAttendanceBefore(ctx, t0.Add(2*time.Hour)); err != nil || n != 2 {
		t.Fatalf("DeleteAttendanceBefore = %d %v", n, err)
	}
	if last, err := db.LastAttendance(ctx, "u"); err != nil || last.ID != pending.ID {
		t.Fatalf("LastAttendance(u) = %v %v, want the pending one", last, err)
	}
	if _, err := db.LastAttendance(ctx, "v"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("LastAttendance(v) = %v", err)
	}
}

func TestStoreAttendanceValidation(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	for _, tc := range []struct {
		field string
		ev    models.AttendanceEvent
	}{
		{"user_id", models.AttendanceEvent{Time: bolttest.FixedNow, KioskID: "k"}},
		{"time", models.AttendanceEvent{UserID: "u", KioskID: "k"}},
		{"kiosk_id", models.AttendanceEvent{UserID: "u", Time: bolttest.FixedNow}},
		{"distance", models.AttendanceEvent{UserID: "u", Time: bolttest.FixedNow, KioskID: "k", Distance: math.NaN()}},
		{"sync_state", models.AttendanceEvent{UserID: "u", Time: bolttest.FixedNow, KioskID: "k", SyncState: "lost"}},
		{"id", models.AttendanceEvent{ID: "a\x00b", UserID: "u", Time: bolttest.FixedNow, KioskID: "k"}},
	} {
		err := db.RecordAttendance(ctx, &tc.ev)
		if models.ErrorCode(err) != models.EINVALID || !strings.HasPrefix(models.ErrorMessage(err), tc.field+":") {
			t.Errorf("%s: err = %v", tc.field, err)
		}
	}
	if n, _ := db.OutboxLen(ctx); n != 0 {
		t.Fatalf("refused events enqueued %d messages", n)
	}
}

func TestStoreOutboxEnqueue(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	a := &models.OutboxMessage{Kind: models.OutboxEnrolment, Key: "user-1", Payload: []byte(`{}`)}
	b := &models.OutboxMessage{Kind: models.OutboxEnrolment, Key: "user-1", Payload: []byte(`{"v":2}`)}
	if err := db.Enqueue(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	if a.Seq == 0 || b.Seq != a.Seq+1 || a.CreatedAt.IsZero() {
		t.Fatalf("seqs %d %d created %v", a.Seq, b.Seq, a.CreatedAt)
	}
	if err := db.Enqueue(ctx, &models.OutboxMessage{Kind: "x"}); models.ErrorCode(err) != models.EINVALID {
		t.Fatalf("empty key: %v", err)
	}
	if n, _ := db.AckOutbox(ctx, []string{"user-1"}); n != 2 {
		t.Fatalf("AckOutbox removed %d, want both messages with the key", n)
	}
}

func TestStoreAccountsAndMeta(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDB(t)
	a := &models.LocalAccount{Email: " Tech@Example.org", Role: models.AccountTechnician, PasswordHash: "argon2id$x"}
	if err := db.PutAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetAccount(ctx, "TECH@example.org")
	if err != nil || got.PasswordHash != "argon2id$x" || got.Source != models.SourceLocal {
		t.Fatalf("GetAccount = %+v %v", got, err)
	}
	central := &models.LocalAccount{Email: "admin@example.org", Role: models.AccountAdmin, PasswordHash: "pbkdf2_sha256$1", Source: models.SourceCentral, Version: 2}
	if err := db.PutAccount(ctx, central); err != nil {
		t.Fatal(err)
	}
	stale := *central
	if err := db.PutAccount(ctx, &stale); models.ErrorCode(err) != models.ESTALE {
		t.Fatalf("stale push: %v", err)
	}
	if err := db.PutAccount(ctx, &models.LocalAccount{Email: "x@example.org", Role: "root", PasswordHash: "h"}); models.ErrorCode(err) != models.EINVALID || !strings.HasPrefix(models.ErrorMessage(err), "role:") {
		t.Fatalf("bad role: %v", err)
	}
	list, _ := db.ListAccounts(ctx)
	if len(list) != 2 || list[0].Email != "admin@example.org" {
		t.Fatalf("ListAccounts = %v", list)
	}
	if err := db.DeleteAccount(ctx, "tech@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteAccount(ctx, "tech@example.org"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("second delete: %v", err)
	}

	if _, err := db.GetMeta(ctx, "sync.seq"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("GetMeta unset: %v", err)
	}
	if err := db.SetMeta(ctx, "sync.seq", []byte("42")); err != nil {
		t.Fatal(err)
	}
	db = bolttest.MustReopenDB(t, db)
	if v, err := db.GetMeta(ctx, "sync.seq"); err != nil || string(v) != "42" {
		t.Fatalf("GetMeta = %q %v", v, err)
	}
}
