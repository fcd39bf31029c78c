//go:build !amd64 || purego

package recognizer

// sqDists8 writes the exact int8 squared distance between q and each
// 128-byte row of rows into out (len(rows) >= len(out)*128) and returns the
// smallest (MaxInt32 for no rows).
func sqDists8(q *[dim]int16, rows []int8, out []int32) int32 {
	return sqDists8Generic(q, rows, out)
}
