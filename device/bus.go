package device

import (
	"sync"
	"sync/atomic"

	"github.com/kioskd/kioskd/models"
)

// Bus fans feedback out to in-process subscribers (the kiosk screen, sync's
// status). Publish never blocks: a subscriber that falls behind loses its
// oldest messages, and the loss is counted.
type Bus struct {
	mu      sync.Mutex
	subs    map[int]chan models.Feedback
	next    int
	dropped atomic.Uint64
}

// NewBus returns an empty bus.
func NewBus() *Bus {
	return &Bus{subs: map[int]chan models.Feedback{}}
}

// Publish sends f to every subscriber without blocking.
func (b *Bus) Publish(f models.Feedback) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range b.subs {
		for {
			select {
			case ch <- f:
			default:
				// Full: drop the oldest message and try again. Publishers
				// hold b.mu, so only the subscriber can race us, and it
				// only ever makes room.
				select {
				case <-ch:
					b.dropped.Add(1)
				default:
				}
				continue
			}
			break
		}
	}
}

// Subscribe returns a channel of feedback holding up to buffer messages
// (at least 1) and a cancel func that closes it. Call cancel when done.
func (b *Bus) Subscribe(buffer int) (<-chan models.Feedback, func()) {
	buffer = max(buffer, 1)
	ch := make(chan models.Feedback, buffer)
	b.mu.Lock()
	id := b.next
	b.next++
	b.subs[id] = ch
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, id)
			b.mu.Unlock()
			close(ch)
		})
	}
}

// Dropped returns how many messages slow subscribers have lost.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }
