package recognizer

import "math"

// sqDists8Generic writes the squared Euclidean distance between the int16
// query codes q and each 128-byte int8 row of rows into out: exact integers,
// at most 128*254^2 = 8,258,048, so int32 never overflows. It returns the
// smallest (MaxInt32 for no rows).
func sqDists8Generic(q *[dim]int16, rows []int8, out []int32) int32 {
	lo := int32(math.MaxInt32)
	for r := range out {
		v := (*[dim]int8)(rows[r*dim:])
		var s0, s1, s2, s3 int32
		for i := 0; i < dim; i += 4 {
			d0 := int32(v[i]) - int32(q[i])
			d1 := int32(v[i+1]) - int32(q[i+1])
			d2 := int32(v[i+2]) - int32(q[i+2])
			d3 := int32(v[i+3]) - int32(q[i+3])
			s0 += d0 * d0
			s1 += d1 * d1
			s2 += d2 * d2
			s3 += d3 * d3
		}
		out[r] = (s0 + s1) + (s2 + s3)
		lo = min(lo, out[r])
	}
	return lo
}
