package recognizer

import (
	"math"
	"slices"
	"sync"

	"github.com/kioskd/kioskd/models"
)

// dim is the number of float32s per descriptor row.
const dim = models.DescriptorSize

// DefaultThreshold is the largest Euclidean distance accepted as the same
// person: the dlib / face_recognition convention, at which dlib's model is
// 99.38% accurate on LFW.
const DefaultThreshold = 0.6

// DefaultMargin is how much farther the second-best user must be than the
// best one for a match to count. Between two frames of the same person dlib
// distances wander by about 0.02-0.05, so when two enrolled users are within
// 0.03 of the probe, which of them wins is noise: refusing costs one more
// frame, accepting risks recording the wrong person.
const DefaultMargin = 0.03

// MatcherConfig tunes a Matcher. Start from DefaultMatcherConfig and
// override fields; NewMatcher uses the values as given.
type MatcherConfig struct {
	// Threshold is the largest distance that counts as a match; it must be
	// above 0.
	Threshold float64
	// Margin is the smallest gap between the best and the runner-up user's
	// distances for a match to count; 0 disables the check.
	Margin float64
}

// DefaultMatcherConfig returns the defaults: threshold 0.6, margin 0.03.
func DefaultMatcherConfig() MatcherConfig {
	return MatcherConfig{Threshold: DefaultThreshold, Margin: DefaultMargin}
}

// userSlot is one user's entry: its id and the rows holding its descriptors.
type userSlot struct {
	id   string
	rows []int32
}

// Matcher is an in-memory 1:N gallery implementing models.Matcher. Every
// descriptor lives in one contiguous []float32 (n*128), the source of truth,
// with a parallel int8 copy (n*128 bytes) that Identify scans first; owner
// maps each row to its user's slot. Removing a user moves the last rows into
// its holes (swap-remove), so the storage never has gaps. Safe for
// concurrent use: Identify takes a read lock, changes a write lock.
type Matcher struct {
	threshold float64
	margin    float64

	mu      sync.RWMutex
	version uint64 // counts changes, for Calibrator
	rowStore
	users []userSlot
	free  []int32 // unused slots in users
	index map[string]int32

	// near caches users' nearest other users for 1:1 thresholds
	// (nearother.go); nearMu guards it among readers.
	nearMu   sync.Mutex
	near     map[int32]nearEntry
	nearRows int // rows of the users in near
}

var _ models.Matcher = (*Matcher)(nil)

// NewMatcher returns an empty Matcher using cfg as given, without correcting
// it: callers with outside input validate it first (cmd/kioskd's
// Config.Validate does), as a NaN Threshold or Margin matches no one.
func NewMatcher(cfg MatcherConfig) *Matcher {
	return &Matcher{threshold: cfg.Threshold, margin: cfg.Margin, index: map[string]int32{}}
}

// Threshold returns the distance threshold in use.
func (m *Matcher) Threshold() float64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.threshold
}

// SetThreshold changes the distance threshold (a calibration applies its
// operating point); a value <= 0 or NaN is ignored.
func (m *Matcher) SetThreshold(t float64) {
	if !(t > 0) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.threshold = t
}

// Version counts the changes to the gallery: equal versions, same gallery.
func (m *Matcher) Version() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.version
}

// Margin returns the runner-up margin in use.
func (m *Matcher) Margin() float64 { return m.margin }

// Len returns the number of descriptors held.
func (m *Matcher) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.owner)
}

// Users returns the number of users held.
func (m *Matcher) Users() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.index)
}

// SetUser replaces every descriptor of userID with ds; an empty ds removes
// the user. An empty userID is ignored: "" means "unknown" in a Match.
func (m *Matcher) SetUser(userID string, ds []models.Descriptor) {
	if userID == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(userID)
	m.addLocked(userID, ds)
}

// AddDescriptors appends ds to userID's descriptors (creating the user):
// the bulk path for loading the gallery at startup one user at a time.
func (m *Matcher) AddDescriptors(userID string, ds ...models.Descriptor) {
	if userID == "" || len(ds) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addLocked(userID, ds)
}

// RemoveUser drops every descriptor of userID.
func (m *Matcher) RemoveUser(userID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(userID)
}

// Grow makes room for n more descriptors, so that loading a gallery one
// descriptor at a time (AddDescriptors from a store walk) allocates the
// contiguous storage once instead of doubling it along the way.
func (m *Matcher) Grow(n int) {
	if n <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grow(n)
}

func (m *Matcher) addLocked(userID string, ds []models.Descriptor) {
	if len(ds) == 0 {
		return
	}
	m.version++
	slot, ok := m.index[userID]
	if !ok {
		if k := len(m.free); k > 0 {
			slot = m.free[k-1]
			m.free = m.free[:k-1]
			m.users[slot] = userSlot{id: userID}
		} else {
			slot = int32(len(m.users))
			m.users = append(m.users, userSlot{id: userID})
		}
		m.index[userID] = slot
	}
	u := &m.users[slot]
	first := len(u.rows)
	for i := range ds {
		u.rows = append(u.rows, int32(len(m.owner)))
		m.appendRow(&ds[i], slot)
	}
	m.nearAdded(slot, u.rows[first:])
}

func (m *Matcher) removeLocked(userID string) {
	slot, ok := m.index[userID]
	if !ok {
		return
	}
	m.version++
	m.nearRemoved(slot)
	rows := m.users[slot].rows
	// Highest rows first: then the last row is never one of ours that is
	// still to be removed, unless it is the current one.
	slices.Sort(rows)
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		if last := m.removeRow(r); r != last {
			moved := m.users[m.owner[r]].rows
			for j := range moved {
				if moved[j] == last {
					moved[j] = r
					break
				}
			}
		}
	}
	delete(m.index, userID)
	m.users[slot] = userSlot{}
	m.free = append(m.free, slot)
	// Give memory back when the gallery shrank a lot (a mass removal).
	if cap(m.vecs) > 1024*dim && len(m.vecs) < cap(m.vecs)/4 {
		m.clip()
	}
}

// rowDescriptor returns a copy of a row.
func (m *Matcher) rowDescriptor(row int32) *models.Descriptor {
	var d models.Descriptor
	copy(d[:], m.vecs[int(row)*dim:int(row+1)*dim])
	return &d
}

// rowDistance is the float64 Euclidean distance between d and a row.
func (m *Matcher) rowDistance(d *models.Descriptor, row int32) float64 {
	return dist64(d[:], m.vecs[int(row)*dim:int(row+1)*dim])
}

// dist64 is the float64 Euclidean distance between two 128-float vectors:
// the reference sum every exact answer is ranked by.
func dist64(a, v []float32) float64 {
	var s float64
	for i := range v {
		x := float64(a[i]) - float64(v[i])
		s += x * x
	}
	return math.Sqrt(s)
}

// sqDistsGeneric writes the squared Euclidean distance between q and each
// 128-float row of rows into out, accumulating in float32 in 8 independent
// lanes so the loop is not bound by the latency of one running sum.
func sqDistsGeneric(q *models.Descriptor, rows []float32, out []float32) {
	for r := range out {
		v := rows[r*dim : r*dim+dim : r*dim+dim]
		var s0, s1, s2, s3, s4, s5, s6, s7 float32
		for i := 0; i < dim; i += 8 {
			d0 := v[i] - q[i]
			d1 := v[i+1] - q[i+1]
			d2 := v[i+2] - q[i+2]
			d3 := v[i+3] - q[i+3]
			d4 := v[i+4] - q[i+4]
			d5 := v[i+5] - q[i+5]
			d6 := v[i+6] - q[i+6]
			d7 := v[i+7] - q[i+7]
			s0 += d0 * d0
			s1 += d1 * d1
			s2 += d2 * d2
			s3 += d3 * d3
			s4 += d4 * d4
			s5 += d5 * d5
			s6 += d6 * d6
			s7 += d7 * d7
		}
		out[r] = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
	}
}
