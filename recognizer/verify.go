package recognizer

import (
	"math"

	"github.com/kioskd/kioskd/models"
)

// Verification is the answer of a 1:1 check of a face against one user.
type Verification struct {
	// Enrolled is false when the user has no descriptor in the gallery.
	Enrolled bool `json:"enrolled"`
	// Distance is from the probe to the user's nearest descriptor.
	Distance float64 `json:"distance"`
	// NearestOther is the distance from the user's descriptors to the
	// nearest descriptor of any other user (+Inf when there is none).
	NearestOther float64 `json:"nearest_other"`
	// Threshold is this user's: VerifyThreshold(ceiling, NearestOther, margin).
	Threshold float64 `json:"threshold"`
	// Match is true when Distance is within Threshold.
	Match bool `json:"match"`
}

// Verify checks d against userID's descriptors only (ID + face). The
// user's threshold is the 1:1 ceiling, kept margin under the user's nearest
// other user, so that a classmate enrolled here cannot pass with this
// user's ID. A NaN or infinite probe never matches. It costs O(the user's
// descriptors) once the user's nearest other user is known (nearOther).
func (m *Matcher) Verify(userID string, d *models.Descriptor, ceiling, margin float64) Verification {
	inf := math.Inf(1)
	v := Verification{Distance: inf, NearestOther: inf}
	var q query
	if d == nil || !q.set(d) {
		return v
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	slot, ok := m.index[userID]
	if !ok {
		return v
	}
	v.Enrolled = true
	for _, r := range m.users[slot].rows {
		v.Distance = min(v.Distance, m.rowDistance(d, r))
	}
	v.NearestOther = m.nearOther(slot)
	v.Threshold = VerifyThreshold(ceiling, v.NearestOther, margin)
	v.Match = v.Distance <= v.Threshold
	return v
}

// VerifyThresholdOf is userID's 1:1 threshold, as Verify computes it, and
// whether the user is enrolled.
func (m *Matcher) VerifyThresholdOf(userID string, ceiling, margin float64) (float64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	slot, ok := m.index[userID]
	if !ok {
		return 0, false
	}
	return VerifyThreshold(ceiling, m.nearOther(slot), margin), true
}

// NearestOther returns the user nearest to d other than exclude, and its
// distance, exactly as a brute force finds them; "" and +Inf when there is
// none.
func (m *Matcher) NearestOther(exclude string, d *models.Descriptor) (string, float64) {
	var q query
	if d == nil || !q.set(d) {
		return "", math.Inf(1)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.nearestTwo(d, &q)
	switch {
	case t.r1 < 0:
	case m.users[t.u1].id != exclude:
		return m.users[t.u1].id, t.d1
	case t.r2 >= 0:
		return m.users[m.owner[t.r2]].id, t.d2
	}
	return "", math.Inf(1)
}
