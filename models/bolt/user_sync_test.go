package bolt_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

func TestStoreApplyUserRecordsVersions(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 12))
	db := bolttest.MustOpenDB(t)

	v2 := bolttest.NewUserRecord(rng, "u1", 2, 2)
	applied, err := db.ApplyUserRecords(ctx, []models.UserRecord{v2})
	if err != nil || !applied[0] {
		t.Fatalf("apply v2: %v %v", applied, err)
	}
	// An older version is ignored.
	v1 := bolttest.NewUserRecord(rng, "u1", 1, 1)
	v1.User.FullName = "Old Name"
	if applied, err = db.ApplyUserRecords(ctx, []models.UserRecord{v1}); err != nil || applied[0] {
		t.Fatalf("apply v1 after v2: %v %v", applied, err)
	}
	// Local encodings survive a central update; central ones are replaced.
	local := bolttest.MustAddEncoding(t, db, "u1", bolttest.RandomDescriptor(rng))
	v3 := bolttest.NewUserRecord(rng, "u1", 3, 1)
	v3.User.FullName = "New Name"
	if applied, err = db.ApplyUserRecords(ctx, []models.UserRecord{v3}); err != nil || !applied[0] {
		t.Fatalf("apply v3: %v %v", applied, err)
	}
	encs, err := db.ListEncodings(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range encs {
		ids = append(ids, e.ID+":"+string(e.Source))
	}
	slices.Sort(ids)
	want := []string{local.ID + ":local", "u1-e0:central"}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("encodings after v3 = %v, want %v", ids, want)
	}
	// A tombstone removes the user; an older upsert cannot resurrect it.
	tomb := models.UserRecord{User: models.User{ID: "u1", Version: 4}, Deleted: true}
	if applied, err = db.ApplyUserRecords(ctx, []models.UserRecord{tomb, v3}); err != nil || !applied[0] || applied[1] {
		t.Fatalf("apply tombstone then v3: %v %v", applied, err)
	}
	if _, err := db.GetUser(ctx, "u1"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("GetUser after tombstone: %v", err)
	}
	// A newer upsert does.
	v5 := bolttest.NewUserRecord(rng, "u1", 5, 1)
	if applied, err = db.ApplyUserRecords(ctx, []models.UserRecord{v5}); err != nil || !applied[0] {
		t.Fatalf("apply v5: %v %v", applied, err)
	}
	if u, err := db.GetUser(ctx, "u1"); err != nil || u.Version != 5 {
		t.Fatalf("GetUser after v5: %v %v", u, err)
	}
	if n, _ := db.CountEncodings(ctx); n != 1 {
		t.Fatalf("CountEncodings = %d, want 1 (the local one went with the tombstone)", n)
	}
}

func TestStoreApplyUserRecordsRefusesBadBatch(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 14))
	db := bolttest.MustOpenDB(t)
	good := bolttest.NewUserRecord(rng, "good", 1, 1)
	bad := bolttest.NewUserRecord(rng, "bad", 1, 1)
	bad.User.Email = "not-an-email"
	_, err := db.ApplyUserRecords(ctx, []models.UserRecord{good, bad})
	if models.ErrorCode(err) != models.EINVALID || !strings.Contains(models.ErrorMessage(err), "records[1].email") {
		t.Fatalf("err = %v, want EINVALID naming records[1].email", err)
	}
	if n, _ := db.CountUsers(ctx); n != 0 {
		t.Fatalf("a refused batch wrote %d users", n)
	}
	zero := bolttest.NewUserRecord(rng, "zero", 1, 1)
	zero.Encodings[0].Descriptor = models.Descriptor{}
	if _, err := db.ApplyUserRecords(ctx, []models.UserRecord{zero}); models.ErrorCode(err) != models.EINVALID || !strings.Contains(models.ErrorMessage(err), "descriptor") {
		t.Fatalf("zero descriptor: %v", err)
	}
	// Email held by a user outside the batch: conflict, nothing written.
	bolttest.MustCreateUser(t, db, &models.User{Email: "taken@example.org"})
	clash := bolttest.NewUserRecord(rng, "clash", 1, 1)
	clash.User.Email = "taken@example.org"
	if _, err := db.ApplyUserRecords(ctx, []models.UserRecord{good, clash}); models.ErrorCode(err) != models.ECONFLICT {
		t.Fatalf("clash: %v", err)
	}
	if n, _ := db.CountUsers(ctx); n != 1 {
		t.Fatalf("a conflicting batch wrote users: %d", n)
	}
}

func TestStoreApplyUserRecordsSwapEmails(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(15, 16))
	db := bolttest.MustOpenDB(t)
	a, b := bolttest.NewUserRecord(rng, "a", 1, 1), bolttest.NewUserRecord(rng, "b", 1, 1)
	if _, err := db.ApplyUserRecords(ctx, []models.UserRecord{a, b}); err != nil {
		t.Fatal(err)
	}
	a2, b2 := a, b
	a2.User.Version, b2.User.Version = 2, 2
	a2.User.Email, b2.User.Email = b.User.Email, a.User.Email
	a2.User.ExternalID, b2.User.ExternalID = b.User.ExternalID, a.User.ExternalID
	if _, err := db.ApplyUserRecords(ctx, []models.UserRecord{a2, b2}); err != nil {
		t.Fatalf("swap: %v", err)
	}
	if u, err := db.GetUserByEmail(ctx, a.User.Email); err != nil || u.ID != "b" {
		t.Fatalf("email %s -> %v %v, want b", a.User.Email, u, err)
	}
}

// TestStoreApplyUserRecordsOrderInsensitive applies random permutations,
// with duplicates, of versioned upserts and tombstones and checks they end
// in the state of applying them in version order.
func TestStoreApplyUserRecordsOrderInsensitive(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(17, 18))
	var ops []models.UserRecord
	for u := range 8 {
		id := fmt.Sprintf("user%d", u)
		for v := int64(1); v <= 6; v++ {
			switch rng.IntN(3) {
			case 0:
				ops = append(ops, models.UserRecord{User: models.User{ID: id, Version: v}, Deleted: true})
			default:
				rec := bolttest.NewUserRecord(rng, id, v, rng.IntN(3))
				rec.User.FullName = fmt.Sprintf("User %s v%d", id, v)
				ops = append(ops, rec)
			}
		}
		if u%2 == 0 {
			// Ties go to the tombstone whatever the order.
			ops = append(ops, models.UserRecord{User: models.User{ID: id, Version: 6}, Deleted: true})
		}
	}
	// A record's content is fixed by (id, version): copy so each apply
	// normalizes its own slice.
	clone := func(recs []models.UserRecord) []models.UserRecord {
		out := make([]models.UserRecord, len(recs))
		for i, r := range recs {
			r.Encodings = slices.Clone(r.Encodings)
			out[i] = r
		}
		return out
	}
	inOrder := clone(ops)
	slices.SortStableFunc(inOrder, func(a, b models.UserRecord) int {
		if a.User.Version != b.User.Version {
			return int(a.User.Version - b.User.Version)
		}
		if a.Deleted != b.Deleted { // a tombstone after the upsert of its version
			if a.Deleted {
				return 1
			}
			return -1
		}
		return 0
	})
	ref := bolttest.MustOpenDB(t)
	for _, r := range inOrder {
		if _, err := ref.ApplyUserRecords(ctx, []models.UserRecord{r}); err != nil {
			t.Fatal(err)
		}
	}
	want := ref.DumpForTest()

	for trial := range 10 {
		perm := clone(ops)
		for range len(ops) / 2 { // duplicates
			perm = append(perm, perm[rng.IntN(len(ops))])
		}
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		db := bolttest.MustOpenDB(t)
		// Half the trials in one batch, half in random chunks.
		if trial%2 == 0 {
			if _, err := db.ApplyUserRecords(ctx, clone(perm)); err != nil {
				t.Fatal(err)
			}
		} else {
			for len(perm) > 0 {
				n := min(len(perm), 1+rng.IntN(7))
				if _, err := db.ApplyUserRecords(ctx, clone(perm[:n])); err != nil {
					t.Fatal(err)
				}
				perm = perm[n:]
			}
		}
		if got := db.DumpForTest(); !slices.Equal(got, want) {
			t.Fatalf("trial %d: state differs from in-order application\n got %d lines\nwant %d lines\nfirst diff: %s", trial, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("got %s\nwant %s", a[i], b[i])
		}
	}
	return "(one is a prefix of the other)"
}

func TestStoreReplaceAllUsers(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(19, 20))
	db := bolttest.MustOpenDB(t)
	a, b := bolttest.NewUserRecord(rng, "a", 5, 2), bolttest.NewUserRecord(rng, "b", 5, 2)
	if _, err := db.ApplyUserRecords(ctx, []models.UserRecord{a, b}); err != nil {
		t.Fatal(err)
	}
	local := bolttest.MustCreateUser(t, db, &models.User{FullName: "Enrolled Here"})
	bolttest.MustAddEncoding(t, db, local.ID, bolttest.RandomDescriptor(rng))

	// The snapshot holds an older "a" (authoritative anyway) and a new "c".
	a1, c := bolttest.NewUserRecord(rng, "a", 1, 1), bolttest.NewUserRecord(rng, "c", 1, 1)
	if err := db.ReplaceAllUsers(ctx, []models.UserRecord{a1, c}); err != nil {
		t.Fatal(err)
	}
	users, total, err := db.ListUsers(ctx, models.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	slices.Sort(ids)
	want := []string{"a", "c", local.ID}
	slices.Sort(want)
	if total != 3 || !slices.Equal(ids, want) {
		t.Fatalf("users after snapshot = %v (total %d), want %v", ids, total, want)
	}
	if n, _ := db.CountEncodings(ctx); n != 3 {
		t.Fatalf("CountEncodings = %d, want 3", n)
	}
	// b's tombstone stops an old delta from resurrecting it.
	if applied, err := db.ApplyUserRecords(ctx, []models.UserRecord{b}); err != nil || applied[0] {
		t.Fatalf("old b after snapshot: %v %v", applied, err)
	}
	// A duplicate id refuses the snapshot.
	if err := db.ReplaceAllUsers(ctx, []models.UserRecord{a1, a1}); models.ErrorCode(err) != models.EINVALID {
		t.Fatalf("duplicate ids: %v", err)
	}
}

func TestStoreUpsertLocalUsers(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(21, 22))
	db := bolttest.MustOpenDB(t)
	central := bolttest.NewUserRecord(rng, "central1", 3, 1)
	if _, err := db.ApplyUserRecords(ctx, []models.UserRecord{central}); err != nil {
		t.Fatal(err)
	}
	existing := bolttest.MustCreateUser(t, db, &models.User{FullName: "Old Name", Email: "old@example.org", ExternalID: "E1"})

	d1, d2 := bolttest.RandomDescriptor(rng), bolttest.RandomDescriptor(rng)
	var recs []models.UserRecord
	for i := range 450 { // three transactions
		recs = append(recs, models.UserRecord{
			User:      models.User{FullName: fmt.Sprintf("Imported %d", i), Email: fmt.Sprintf("imp%d@example.org", i), ExternalID: fmt.Sprintf("I%d", i), Role: models.RoleTrainee},
			Encodings: []models.FaceEncoding{{Descriptor: bolttest.RandomDescriptor(rng)}},
		})
	}
	recs = append(recs,
		// Matched by external id: updated.
		models.UserRecord{User: models.User{FullName: "New Name", Email: "new@example.org", ExternalID: "E1", Role: models.RoleTrainer},
			Encodings: []models.FaceEncoding{{Descriptor: d1}, {Descriptor: d1}}},
		// Matched by email: a central user keeps its fields, gains a face.
		models.UserRecord{User: models.User{FullName: "Ignored", Email: central.User.Email, Role: models.RoleTrainee},
			Encodings: []models.FaceEncoding{{Descriptor: d2}}},
		// Refused: bad email; bad descriptor; email taken by another user.
		models.UserRecord{User: models.User{FullName: "X", Email: "nope", Role: models.RoleTrainee}},
		models.UserRecord{User: models.User{FullName: "Y", Email: "y@example.org", Role: models.RoleTrainee},
			Encodings: []models.FaceEncoding{{Descriptor: models.Descriptor{}}}},
		models.UserRecord{User: models.User{FullName: "Z", Email: "imp1@example.org", ExternalID: "I2", Role: models.RoleTrainee}},
	)
	res, err := db.UpsertLocalUsers(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 450 {
		if res[i].Err != nil || !res[i].Created || res[i].UserID == "" {
			t.Fatalf("res[%d] = %+v", i, res[i])
		}
	}
	if r := res[450]; r.Err != nil || r.Created || r.UserID != existing.ID {
		t.Fatalf("update by external id: %+v", r)
	}
	if u, _ := db.GetUser(ctx, existing.ID); u.FullName != "New Name" || u.Email != "new@example.org" {
		t.Fatalf("updated user = %+v", u)
	}
	if encs, _ := db.ListEncodings(ctx, existing.ID); len(encs) != 1 {
		t.Fatalf("duplicate descriptor not skipped: %d encodings", len(encs))
	}
	if r := res[451]; r.Err != nil || r.Created || r.UserID != "central1" {
		t.Fatalf("match central by email: %+v", r)
	}
	if u, _ := db.GetUser(ctx, "central1"); u.FullName != central.User.FullName || u.Version != 3 {
		t.Fatalf("central user's fields changed: %+v", u)
	}
	for i, wantField := range map[int]string{452: "email", 453: "descriptor", 454: "email"} {
		if res[i].Err == nil || !strings.Contains(models.ErrorMessage(res[i].Err), wantField) {
			t.Fatalf("res[%d].Err = %v, want one naming %s", i, res[i].Err, wantField)
		}
	}
	if models.ErrorCode(res[454].Err) != models.ECONFLICT {
		t.Fatalf("res[454] code = %s", models.ErrorCode(res[454].Err))
	}
	if _, err := db.GetUserByEmail(ctx, "y@example.org"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("a refused record wrote its user: %v", err)
	}
	if n, _ := db.CountUsers(ctx); n != 452 {
		t.Fatalf("CountUsers = %d, want 452", n)
	}
	// Re-importing the same rows is idempotent.
	again, err := db.UpsertLocalUsers(ctx, recs[:450])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if r.Err != nil || r.Created || r.UserID != res[i].UserID {
			t.Fatalf("re-import res[%d] = %+v", i, r)
		}
	}
	if n, _ := db.CountEncodings(ctx); n != 450+1+2 {
		t.Fatalf("CountEncodings after re-import = %d", n)
	}
}
