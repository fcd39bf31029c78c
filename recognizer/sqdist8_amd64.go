//go:build amd64 && !purego

package recognizer

// sqDists8AVX2 computes the int8 squared distances of blocks*8 rows of 128
// bytes against the int16 query q into out and returns the smallest. See
// sqdist8_amd64.s.
//
//go:noescape
func sqDists8AVX2(q *int16, rows *int8, out *int32, blocks int) int32

// sqDists8 writes the exact int8 squared distance between q and each
// 128-byte row of rows into out (len(rows) >= len(out)*128) and returns the
// smallest (MaxInt32 for no rows): whole blocks of 8 rows in assembly, the
// rest (at most 7) in Go. Both give the same exact integers.
func sqDists8(q *[dim]int16, rows []int8, out []int32) int32 {
	if len(rows) < len(out)*dim {
		panic("recognizer: sqDists8: rows shorter than out*128")
	}
	if k := len(out) &^ 7; haveAVX2 && k > 0 {
		lo := sqDists8AVX2(&q[0], &rows[0], &out[0], k/8)
		return min(lo, sqDists8Generic(q, rows[k*dim:], out[k:]))
	}
	return sqDists8Generic(q, rows, out)
}
