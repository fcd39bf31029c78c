package sync

import (
	gosync "sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// msgQueue hands messages from paho's callback (which must never block) to a
// worker. It is bounded: push refuses a message when full, and the caller
// leaves that message unacknowledged so the broker keeps it (see
// Client.handle). With manual acks the broker never has more unacknowledged
// messages out than its inflight window, so a queue larger than that window
// does not fill in practice.
type msgQueue struct {
	mu     gosync.Mutex
	items  []mqtt.Message
	max    int
	notify chan struct{}
}

func newMsgQueue(max int) *msgQueue {
	return &msgQueue{max: max, notify: make(chan struct{}, 1)}
}

// push appends m unless the queue is full; it never blocks.
func (q *msgQueue) push(m mqtt.Message) bool {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return true
}

// pop removes and returns up to n messages in arrival order.
func (q *msgQueue) pop(n int) []mqtt.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n > len(q.items) {
		n = len(q.items)
	}
	out := make([]mqtt.Message, n)
	copy(out, q.items)
	rest := copy(q.items, q.items[n:])
	clear(q.items[rest:])
	q.items = q.items[:rest]
	return out
}

// len returns the number of queued messages.
func (q *msgQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
