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

// MatcherConfig tunes a Matcher.
type MatcherConfig struct {
	// Threshold is the largest distance that counts as a match; <= 0 means
	// DefaultThreshold.
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
// descriptor lives in one contiguous []float32 (n*128) so a scan streams
// memory linearly; owner maps each row to its user's slot. Removing a user
// moves the last rows into its holes (swap-remove), so the storage never has
// gaps. Safe for concurrent use: Identify takes a read lock, changes a write
// lock.
type Matcher struct {
	threshold float64
	margin    float64

	mu    sync.RWMutex
	vecs  []float32 // len(owner)*dim
	owner []int32   // row -> slot in users
	users []userSlot
	free  []int32 // unused slots in users
	index map[string]int32
}

var _ models.Matcher = (*Matcher)(nil)

// NewMatcher returns an empty Matcher.
func NewMatcher(cfg MatcherConfig) *Matcher {
	if cfg.Threshold <= 0 || math.IsNaN(cfg.Threshold) {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.Margin < 0 || math.IsNaN(cfg.Margin) {
		cfg.Margin = 0
	}
	return &Matcher{threshold: cfg.Threshold, margin: cfg.Margin, index: map[string]int32{}}
}

// Threshold returns the distance threshold in use.
func (m *Matcher) Threshold() float64 { return m.threshold }

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
	m.vecs = slices.Grow(m.vecs, n*dim)
	m.owner = slices.Grow(m.owner, n)
}

// Load replaces the whole gallery with users, allocating the storage once.
func (m *Matcher) Load(users map[string][]models.Descriptor) {
	n := 0
	for id, ds := range users {
		if id != "" {
			n += len(ds)
		}
	}
	vecs := make([]float32, 0, n*dim)
	owner := make([]int32, 0, n)
	slots := make([]userSlot, 0, len(users))
	index := make(map[string]int32, len(users))
	for id, ds := range users {
		if id == "" || len(ds) == 0 {
			continue
		}
		slot := int32(len(slots))
		rows := make([]int32, len(ds))
		for i := range ds {
			rows[i] = int32(len(owner))
			owner = append(owner, slot)
			vecs = append(vecs, ds[i][:]...)
		}
		slots = append(slots, userSlot{id: id, rows: rows})
		index[id] = slot
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vecs, m.owner, m.users, m.free, m.index = vecs, owner, slots, nil, index
}

func (m *Matcher) addLocked(userID string, ds []models.Descriptor) {
	if len(ds) == 0 {
		return
	}
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
	for i := range ds {
		u.rows = append(u.rows, int32(len(m.owner)))
		m.owner = append(m.owner, slot)
		m.vecs = append(m.vecs, ds[i][:]...)
	}
}

func (m *Matcher) removeLocked(userID string) {
	slot, ok := m.index[userID]
	if !ok {
		return
	}
	rows := m.users[slot].rows
	// Highest rows first: then the last row is never one of ours that is
	// still to be removed, unless it is the current one.
	slices.Sort(rows)
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		last := int32(len(m.owner) - 1)
		if r != last {
			copy(m.vecs[int(r)*dim:int(r+1)*dim], m.vecs[int(last)*dim:int(last+1)*dim])
			o := m.owner[last]
			m.owner[r] = o
			moved := m.users[o].rows
			for j := range moved {
				if moved[j] == last {
					moved[j] = r
					break
				}
			}
		}
		m.owner = m.owner[:last]
		m.vecs = m.vecs[:int(last)*dim]
	}
	delete(m.index, userID)
	m.users[slot] = userSlot{}
	m.free = append(m.free, slot)
	// Give memory back when the gallery shrank a lot (a mass removal).
	if cap(m.vecs) > 1024*dim && len(m.vecs) < cap(m.vecs)/4 {
		m.vecs = slices.Clip(slices.Clone(m.vecs))
		m.owner = slices.Clip(slices.Clone(m.owner))
	}
}

// scanBlock is how many rows' squared distances are computed before they are
// ranked: 1 KiB of results that stays in L1 cache.
const scanBlock = 256

// Identify returns the best match for d: the user owning the nearest
// descriptor, its distance, and the distance of the nearest descriptor of any
// other user. Known is true when the distance is within the threshold and the
// runner-up is at least Margin farther. An empty gallery never matches.
func (m *Matcher) Identify(d *models.Descriptor) models.Match {
	inf := math.Inf(1)
	miss := models.Match{Distance: inf, RunnerUpDistance: inf}
	if d == nil {
		return miss
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := len(m.owner)
	if n == 0 {
		return miss
	}
	// best is the nearest row; second the nearest row of any other user.
	best, second := int32(-1), int32(-1)
	bestD, secondD := float32(math.Inf(1)), float32(math.Inf(1))
	bestU := int32(-1)
	var buf [scanBlock]float32
	for start := 0; start < n; start += scanBlock {
		k := min(scanBlock, n-start)
		sqDists(d, m.vecs[start*dim:(start+k)*dim], buf[:k])
		for i, v := range buf[:k] {
			if v >= secondD { // the common case: neither best nor runner-up
				continue
			}
			row := int32(start + i)
			u := m.owner[row]
			switch {
			case v < bestD:
				if u != bestU {
					second, secondD = best, bestD
				}
				best, bestD, bestU = row, v, u
			case u != bestU:
				second, secondD = row, v
			}
		}
	}
	if best < 0 { // every row is NaN or infinite
		return miss
	}
	// Report exact float64 distances for the two rows found.
	match := models.Match{
		Distance:         m.rowDistance(d, best),
		RunnerUpDistance: inf,
		BestUserID:       m.users[bestU].id,
	}
	if second >= 0 {
		match.RunnerUpDistance = m.rowDistance(d, second)
	}
	if match.Distance <= m.threshold && match.RunnerUpDistance-match.Distance >= m.margin {
		match.Known = true
		match.UserID = match.BestUserID
	}
	return match
}

// rowDistance is the float64 Euclidean distance between d and a row.
func (m *Matcher) rowDistance(d *models.Descriptor, row int32) float64 {
	v := m.vecs[int(row)*dim : int(row+1)*dim]
	var s float64
	for i := range v {
		x := float64(d[i]) - float64(v[i])
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
