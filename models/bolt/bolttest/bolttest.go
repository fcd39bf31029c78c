// Package bolttest provides test helpers for the bbolt store: a real
// database in a temporary directory, checked for consistency and closed
// when the test ends, and builders for users and descriptors.
package bolttest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
)

// FixedNow is the time MustOpenDB's clock starts at.
var FixedNow = time.Date(2025, 3, 14, 8, 0, 0, 0, time.UTC)

// Clock is an injectable, settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// MustOpenDB opens a new store in tb.TempDir() with NoSync and a clock fixed
// at FixedNow (see MustOpenDBWith to change it). At cleanup it runs Check,
// failing the test when the store is inconsistent, then Close.
func MustOpenDB(tb testing.TB) *bolt.DB {
	tb.Helper()
	return MustOpenDBWith(tb, nil)
}

// MustOpenDBWith is MustOpenDB with a hook that configures the DB (Now,
// Logger, ScrubDelay, ...) before Open.
func MustOpenDBWith(tb testing.TB, configure func(db *bolt.DB)) *bolt.DB {
	tb.Helper()
	db := bolt.NewDB(filepath.Join(tb.TempDir(), "kioskd.db"))
	db.NoSync = true
	db.Now = NewClock(FixedNow).Now
	if configure != nil {
		configure(db)
	}
	if err := db.Open(); err != nil {
		tb.Fatalf("open store: %v", err)
	}
	registerCleanup(tb, db)
	return db
}

// MustReopenDB closes db and opens the same file again with the same
// settings, returning the new DB (also checked and closed at cleanup).
func MustReopenDB(tb testing.TB, db *bolt.DB) *bolt.DB {
	tb.Helper()
	if err := db.Close(); err != nil {
		tb.Fatalf("close store: %v", err)
	}
	db2 := bolt.NewDB(db.Path())
	db2.KeyPath, db2.Now, db2.Logger, db2.NoSync, db2.ScrubDelay = db.KeyPath, db.Now, db.Logger, db.NoSync, db.ScrubDelay
	if err := db2.Open(); err != nil {
		tb.Fatalf("reopen store: %v", err)
	}
	registerCleanup(tb, db2)
	return db2
}

func registerCleanup(tb testing.TB, db *bolt.DB) {
	tb.Cleanup(func() {
		if err := db.Check(); err != nil && !errors.Is(err, bolt.ErrClosed) {
			tb.Errorf("store consistency check: %v", err)
		}
		if err := db.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
}

var userSeq atomic.Int64

// MustCreateUser creates u, filling an empty FullName, Email and Role with
// unique test values, and fails the test on error. It returns u (with its
// ID and UpdatedAt set).
func MustCreateUser(tb testing.TB, db *bolt.DB, u *models.User) *models.User {
	tb.Helper()
	if u == nil {
		u = &models.User{}
	}
	n := userSeq.Add(1)
	if u.FullName == "" {
		u.FullName = fmt.Sprintf("Test User %d", n)
	}
	if u.Email == "" {
		u.Email = fmt.Sprintf("user%d@example.org", n)
	}
	if u.Role == "" {
		u.Role = models.RoleTrainee
	}
	if err := db.CreateUser(context.Background(), u); err != nil {
		tb.Fatalf("create user %q: %v", u.Email, err)
	}
	return u
}

// MustAddEncoding stores descriptor d for userID and fails the test on error.
func MustAddEncoding(tb testing.TB, db *bolt.DB, userID string, d models.Descriptor) *models.FaceEncoding {
	tb.Helper()
	enc := &models.FaceEncoding{UserID: userID, Descriptor: d}
	if err := db.AddEncoding(context.Background(), enc); err != nil {
		tb.Fatalf("add encoding for %q: %v", userID, err)
	}
	return enc
}

// RandomDescriptor returns a uniformly random descriptor of norm 1.
func RandomDescriptor(rng *rand.Rand) models.Descriptor {
	var d models.Descriptor
	for {
		var sum float64
		for i := range d {
			v := rng.NormFloat64()
			d[i] = float32(v)
			sum += v * v
		}
		if sum == 0 {
			continue
		}
		inv := 1 / math.Sqrt(sum)
		for i := range d {
			d[i] = float32(float64(d[i]) * inv)
		}
		return d
	}
}

// NewUserRecord returns a valid central record for user id at version with
// nEnc random encodings (ids id+"-e0", id+"-e1", ...).
func NewUserRecord(rng *rand.Rand, id string, version int64, nEnc int) models.UserRecord {
	rec := models.UserRecord{User: models.User{
		ID:         id,
		ExternalID: "X" + id,
		Email:      id + "@example.org",
		FullName:   "User " + id,
		Role:       models.RoleTrainee,
		Status:     models.UserActive,
		Version:    version,
	}}
	for i := range nEnc {
		rec.Encodings = append(rec.Encodings, models.FaceEncoding{
			ID:         fmt.Sprintf("%s-e%d", id, i),
			UserID:     id,
			Descriptor: RandomDescriptor(rng),
			Source:     models.SourceCentral,
			Model:      models.DefaultModelName,
			CreatedAt:  FixedNow,
		})
	}
	return rec
}
