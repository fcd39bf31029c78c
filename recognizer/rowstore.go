package recognizer

import (
	"math"
	"slices"

	"github.com/kioskd/kioskd/models"
)

// rowStore holds the descriptor rows. Every slice has one entry (or 128) per
// row, in the same order.
type rowStore struct {
	vecs  []float32 // the descriptors, len(owner)*dim
	codes []int8    // their int8 quantisation (see quantize), len(owner)*dim
	// errs bounds each row's quantisation error from above; +Inf for rows
	// the int8 pass does not prune: non-finite rows (never matched) and
	// wide rows (listed in wide).
	errs  []float32
	owner []int32 // row -> slot in users
	// wide lists the finite rows whose quantisation error exceeds maxRowErr
	// (heavily clamped): Identify reranks them exactly on every query.
	wide []int32
	// errMax is at least errs[r] for every row the int8 pass prunes, so the
	// hot loop can test all rows against one integer limit. It only grows
	// (a bound that stays valid after removals) and never exceeds maxRowErr.
	errMax float32
}

// appendRow adds d as the last row, owned by slot.
func (s *rowStore) appendRow(d *models.Descriptor, slot int32) {
	row := int32(len(s.owner))
	var c [dim]int8
	e, ok := quantize(d, &c)
	switch {
	case !ok:
		e = float32(math.Inf(1))
	case e > maxRowErr:
		e = float32(math.Inf(1))
		s.wide = append(s.wide, row)
	default:
		s.errMax = max(s.errMax, e)
	}
	s.vecs = append(s.vecs, d[:]...)
	s.codes = append(s.codes, c[:]...)
	s.errs = append(s.errs, e)
	s.owner = append(s.owner, slot)
}

// removeRow drops row r by moving the last row into its place. It returns
// the last row's index (equal to r when r was the last) so the caller can
// renumber the moved row in its user's list.
func (s *rowStore) removeRow(r int32) (last int32) {
	last = int32(len(s.owner) - 1)
	if i := slices.Index(s.wide, r); i >= 0 {
		s.wide = slices.Delete(s.wide, i, i+1)
	}
	if r != last {
		copy(s.vecs[int(r)*dim:int(r+1)*dim], s.vecs[int(last)*dim:])
		copy(s.codes[int(r)*dim:int(r+1)*dim], s.codes[int(last)*dim:])
		s.errs[r] = s.errs[last]
		s.owner[r] = s.owner[last]
		if i := slices.Index(s.wide, last); i >= 0 {
			s.wide[i] = r
		}
	}
	s.vecs = s.vecs[:int(last)*dim]
	s.codes = s.codes[:int(last)*dim]
	s.errs = s.errs[:last]
	s.owner = s.owner[:last]
	return last
}

// grow makes room for n more rows.
func (s *rowStore) grow(n int) {
	s.vecs = slices.Grow(s.vecs, n*dim)
	s.codes = slices.Grow(s.codes, n*dim)
	s.errs = slices.Grow(s.errs, n)
	s.owner = slices.Grow(s.owner, n)
}

// clip reallocates the storage to its length: memory back after a mass
// removal.
func (s *rowStore) clip() {
	s.vecs = slices.Clip(slices.Clone(s.vecs))
	s.codes = slices.Clip(slices.Clone(s.codes))
	s.errs = slices.Clip(slices.Clone(s.errs))
	s.owner = slices.Clip(slices.Clone(s.owner))
}
