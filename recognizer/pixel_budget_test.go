package recognizer

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestReservePixelsBoundsConcurrentWork: reservations beyond
// MaxConcurrentPixels wait for a release, a 2x detection counts four times,
// an image above the whole budget runs alone instead of waiting forever,
// and a cancelled context stops the wait.
func TestReservePixelsBoundsConcurrentWork(t *testing.T) {
	cfg := DefaultEncoderConfig()
	cfg.ModelsDir, cfg.MaxConcurrentPixels = t.TempDir(), 1000
	e := NewEncoder(cfg)
	ctx := context.Background()

	first, err := e.reservePixels(ctx, 20, 10, true) // 800 on the 2x copy
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		r, err := e.reservePixels(ctx, 20, 10, false) // 200 more: fits
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	select {
	case r := <-got:
		r()
	case <-time.After(10 * time.Second):
		t.Fatal("a reservation within the budget waited")
	}

	go func() {
		r, err := e.reservePixels(ctx, 30, 10, false) // 300: over 1000 with 800 held
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("a reservation over the budget did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	first()
	select {
	case r := <-got:
		r()
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting reservation was not admitted after the release")
	}

	huge, err := e.reservePixels(ctx, 4000, 3000, true) // 48 MP: above the budget, runs alone
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := e.reservePixels(short, 10, 10, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reserve while a huge image runs = %v, want the context's deadline", err)
	}
	huge()
	r, err := e.reservePixels(ctx, 10, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	r()
}
