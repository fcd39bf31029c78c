package bolt_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// TestStoreConcurrent runs writers, readers, deletions and background
// scrubs (which swap the file under the store's lock) at the same time.
func TestStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	db := bolttest.MustOpenDBWith(t, func(db *bolt.DB) { db.ScrubDelay = 5 * time.Millisecond })
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for i := range 40 {
				u := &models.User{FullName: fmt.Sprintf("W%d U%d", w, i), Email: fmt.Sprintf("w%du%d@example.org", w, i), Role: models.RoleTrainee}
				if err := db.CreateUser(ctx, u); err != nil {
					errs <- err
					return
				}
				if err := db.AddEncoding(ctx, &models.FaceEncoding{UserID: u.ID, Descriptor: bolttest.RandomDescriptor(rng)}); err != nil {
					errs <- err
					return
				}
				if err := db.RecordAttendance(ctx, &models.AttendanceEvent{UserID: u.ID, Time: bolttest.FixedNow.Add(time.Duration(i) * time.Second), KioskID: "k"}); err != nil {
					errs <- err
					return
				}
				if i%3 == 0 {
					if err := db.DeleteUser(ctx, u.ID); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // central sync
		defer wg.Done()
		rng := rand.New(rand.NewPCG(7, 7))
		for v := int64(1); v <= 20; v++ {
			recs := []models.UserRecord{bolttest.NewUserRecord(rng, "c1", v, 2), {User: models.User{ID: "c2", Version: v}, Deleted: v%2 == 0}}
			if v%2 == 1 {
				recs[1] = bolttest.NewUserRecord(rng, "c2", v, 1)
			}
			if _, err := db.ApplyUserRecords(ctx, recs); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range 2 {
		wg.Add(1)
		go func() { // the matcher loader and the API
			defer wg.Done()
			for range 30 {
				if err := db.ForEachEncoding(ctx, func(e *models.FaceEncoding) error {
					if e.Descriptor.Validate() != nil {
						return fmt.Errorf("bad descriptor for %s", e.UserID)
					}
					return nil
				}); err != nil {
					errs <- err
					return
				}
				if _, _, err := db.ListUsers(ctx, models.UserFilter{Query: "w1"}); err != nil {
					errs <- err
					return
				}
				if _, err := db.PendingOutbox(ctx, 0, 10); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	users, _ := db.CountUsers(ctx)
	encs, _ := db.CountEncodings(ctx)
	if users != 4*26+1 || encs != 4*26+2 {
		t.Fatalf("users %d encodings %d, want %d and %d", users, encs, 4*26+1, 4*26+2)
	}
}
