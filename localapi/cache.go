package localapi

import (
	"sync"
	"time"
)

// respCache holds rendered JSON bodies of hot read endpoints (user lists,
// status) for a short TTL. A kiosk's API is read by many screens and scripts
// at once while the store's list walks every user; serving one rendering per
// TTL keeps latency flat under load. Every write through the API clears it,
// so a technician sees their own change at once; changes from central show
// within the TTL. Concurrent misses for one key compute it once.
type respCache struct {
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	gen      uint64 // bumped by clear: a computation begun before it is not stored
	entries  map[string]cacheEntry
	inflight map[string]*cacheCall
}

type cacheEntry struct {
	body    []byte
	expires time.Time
}

type cacheCall struct {
	done chan struct{}
	body []byte
	err  error
}

// maxCacheEntries bounds the cache; past it, it starts over.
const maxCacheEntries = 512

func newRespCache(ttl time.Duration, now func() time.Time) *respCache {
	return &respCache{ttl: ttl, now: now, entries: map[string]cacheEntry{}, inflight: map[string]*cacheCall{}}
}

// get returns the cached body for key or computes it with fn.
func (c *respCache) get(key string, fn func() ([]byte, error)) ([]byte, error) {
	if c.ttl <= 0 {
		return fn()
	}
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.body, nil
	}
	if call, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		<-call.done
		return call.body, call.err
	}
	call := &cacheCall{done: make(chan struct{})}
	c.inflight[key] = call
	gen := c.gen
	c.mu.Unlock()

	call.body, call.err = fn()

	c.mu.Lock()
	delete(c.inflight, key)
	if call.err == nil && gen == c.gen {
		if len(c.entries) >= maxCacheEntries {
			clear(c.entries)
		}
		c.entries[key] = cacheEntry{body: call.body, expires: c.now().Add(c.ttl)}
	}
	c.mu.Unlock()
	close(call.done)
	return call.body, call.err
}

// clear drops every entry (after a write).
func (c *respCache) clear() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}
