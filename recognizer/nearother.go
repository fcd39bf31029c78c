package recognizer

import "math"

// The 1:1 threshold of a user depends on the distance from the user's
// descriptors to the nearest descriptor of any other user. Finding it is a
// 1:N search per descriptor, so it is found once per user, on the user's
// first claim, and then kept exact as the gallery changes: rows added for
// user X can only bring X nearer to the users already known (checked
// against their rows alone), and removing X only affects the users whose
// nearest other was X (they are found again on their next claim). When
// comparing would cost more than nearUpdateMax row pairs (a sync adding
// many users while many are known), everything is forgotten instead: it is
// found again, one user at a time, on the next claims.

// nearUpdateMax bounds the row pairs compared under the write lock when
// rows are added: about the cost of one 1:N search of a 100,000-row
// gallery (a variable so tests can force either path).
var nearUpdateMax = 1 << 14

// nearEntry is a user's known nearest other: its distance, that user's
// slot, and how many rows the user had then (for nearRows).
type nearEntry struct {
	dist float64
	by   int32
	rows int
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
	e := nearEntry{dist: math.Inf(1), by: -1, rows: len(m.users[slot].rows)}
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
				e.dist, e.by = t.d1, t.u1
			}
		case t.r2 >= 0 && t.d2 < e.dist:
			e.dist, e.by = t.d2, m.owner[t.r2]
		}
	}
	if m.near == nil {
		m.near = map[int32]nearEntry{}
	}
	m.near[slot] = e
	m.nearRows += e.rows
	return e.dist
}

// forgetNear drops slot's known nearest other; the caller holds nearMu.
func (m *Matcher) forgetNear(slot int32) {
	if e, ok := m.near[slot]; ok {
		m.nearRows -= e.rows
		delete(m.near, slot)
	}
}

// nearAdded updates the known nearest others after rows were appended for
// slot: slot's own is found again on its next claim, every other known one
// is compared with the new rows. The caller holds the write lock.
func (m *Matcher) nearAdded(slot int32, rows []int32) {
	m.nearMu.Lock()
	defer m.nearMu.Unlock()
	m.forgetNear(slot)
	if m.nearRows*len(rows) > nearUpdateMax {
		clear(m.near)
		m.nearRows = 0
		return
	}
	for u, e := range m.near {
		for _, a := range m.users[u].rows {
			for _, r := range rows {
				// A NaN distance (a non-finite row) compares false: as in
				// the 1:N search, such rows never count.
				if d := m.rowPair(a, r); d < e.dist {
					e.dist, e.by = d, slot
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
	m.forgetNear(slot)
	for u, e := range m.near {
		if e.by == slot {
			m.forgetNear(u)
		}
	}
}
