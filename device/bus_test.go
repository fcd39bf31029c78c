package device

import (
	"sync"
	"testing"

	"github.com/kioskd/kioskd/models"
)

func TestBusDropsOldestForSlowSubscriber(t *testing.T) {
	b := NewBus()
	slow, cancelSlow := b.Subscribe(2)
	defer cancelSlow()
	fast, cancelFast := b.Subscribe(100)
	defer cancelFast()
	for i := 0; i < 5; i++ {
		b.Publish(models.Feedback{Kind: models.FeedbackIdle, Message: string(rune('a' + i))})
	}
	if got := (<-slow).Message + (<-slow).Message; got != "de" {
		t.Errorf("slow subscriber got %q, want the newest two (de)", got)
	}
	if b.Dropped() != 3 {
		t.Errorf("dropped = %d, want 3", b.Dropped())
	}
	if len(fast) != 5 {
		t.Errorf("fast subscriber has %d, want 5", len(fast))
	}
}

func TestBusConcurrentPublishCancel(t *testing.T) {
	b := NewBus()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				b.Publish(models.Feedback{Kind: models.FeedbackIdle})
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				ch, cancel := b.Subscribe(1)
				select {
				case <-ch:
				default:
				}
				cancel()
				cancel() // twice is fine
			}
		}()
	}
	wg.Wait()
	b.mu.Lock()
	left := len(b.subs)
	b.mu.Unlock()
	if left != 0 {
		t.Errorf("subscribers left: %d", left)
	}
}
