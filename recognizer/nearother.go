package recognizer

import "math"

// The 1:1 threshold of a user depends on the distance from the user's
// descriptors to the nearest descriptor of any other user. Finding it is a
// 1:N search per descriptor, so it is found once per user, on the user's
// first claim, and then kept exact as the gallery changes: rows added for
// user X can only bring X nearer to the users already known (checked
// against their rows alone), and removing X only affects the users whose
// nearest other was X (they are found again on their next claim).

// nearEntry is a user's known nearest other: its distance and that user's
// slot.
type nearEntry struct {
	dist float64
	by   int32
}

// nearOther returns the distance from slot's rows to the nearest row of
// another user (+Inf when there is none), finding it on first use. The
// caller holds the read lock; nearMu serialises the cache among readers.
func (m *Matcher) nearOther(slot int32) float64 {
	m.nearMu.Lock()
	defer m.nearMu.Unlock()
	if e, ok := m.near[slot]; ok {
		return e.dist
	}
	e := nearEntry{dist: math.Inf(1), by: -1}
	for _, r := range m.users[slot].rows {
		rd := m.rowDescriptor(r)
		var rq query
		if !rq.set(rd) {
			continue
		}
		t := m.nearestTwo(rd, &rq)
		switch {
		case t.r1 < 0:
		case t.u1 != slot:
			if t.d1 < e.dist {
				e = nearEntry{dist: t.d1, by: t.u1}
			}
		case t.r2 >= 0 && t.d2 < e.dist:
			e = nearEntry{dist: t.d2, by: m.owner[t.r2]}
		}
	}
	if m.near == nil {
		m.near = map[int32]nearEntry{}
	}
	m.near[slot] = e
	return e.dist
}

// nearAdded updates the known nearest others after rows were appended for
// slot: slot's own is found again on its next claim, every other known one
// is compared with the new rows. The caller holds the write lock.
func (m *Matcher) nearAdded(slot int32, rows []int32) {
	m.nearMu.Lock()
	defer m.nearMu.Unlock()
	delete(m.near, slot)
	for u, e := range m.near {
		for _, a := range m.users[u].rows {
			for _, r := range rows {
				// A NaN distance (a non-finite row) compares false: as in
				// the 1:N search, such rows never count.
				if d := m.rowPair(a, r); d < e.dist {
					e = nearEntry{dist: d, by: slot}
				}
			}
		}
		m.near[u] = e
	}
}

// nearRemoved forgets slot's nearest other and those of the users whose
// nearest other was slot. The caller holds the write lock.
func (m *Matcher) nearRemoved(slot int32) {
	m.nearMu.Lock()
	defer m.nearMu.Unlock()
	delete(m.near, slot)
	for u, e := range m.near {
		if e.by == slot {
			delete(m.near, u)
		}
	}
}
