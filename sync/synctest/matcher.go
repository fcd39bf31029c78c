package synctest

import (
	"math"
	gosync "sync"

	"github.com/kioskd/kioskd/models"
)

// Matcher is a brute-force models.Matcher for tests that only check which
// descriptors the sync client keeps (recognizer.Matcher is the real one).
type Matcher struct {
	mu    gosync.RWMutex
	users map[string][]models.Descriptor
}

// NewMatcher returns an empty Matcher.
func NewMatcher() *Matcher { return &Matcher{users: map[string][]models.Descriptor{}} }

// SetUser replaces userID's descriptors.
func (m *Matcher) SetUser(userID string, ds []models.Descriptor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(ds) == 0 {
		delete(m.users, userID)
		return
	}
	m.users[userID] = append([]models.Descriptor(nil), ds...)
}

// RemoveUser drops userID.
func (m *Matcher) RemoveUser(userID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.users, userID)
}

// Len returns the number of descriptors.
func (m *Matcher) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, ds := range m.users {
		n += len(ds)
	}
	return n
}

// Users returns the number of users.
func (m *Matcher) Users() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.users)
}

// Identify returns the nearest user at threshold 0.6.
func (m *Matcher) Identify(d *models.Descriptor) models.Match {
	m.mu.RLock()
	defer m.mu.RUnlock()
	best := models.Match{Distance: math.Inf(1), RunnerUpDistance: math.Inf(1)}
	for id, ds := range m.users {
		u := math.Inf(1)
		for i := range ds {
			u = min(u, models.Distance(d, &ds[i]))
		}
		if u < best.Distance {
			best.RunnerUpDistance, best.Distance, best.BestUserID = best.Distance, u, id
		} else if u < best.RunnerUpDistance {
			best.RunnerUpDistance = u
		}
	}
	if best.Distance <= 0.6 {
		best.Known, best.UserID = true, best.BestUserID
	}
	return best
}
