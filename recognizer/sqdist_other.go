//go:build !amd64 || purego

package recognizer

import "github.com/kioskd/kioskd/models"

const haveAVX2 = false

// sqDists writes the squared Euclidean distance between q and each 128-float
// row of rows into out (len(rows) == len(out)*128).
func sqDists(q *models.Descriptor, rows []float32, out []float32) {
	sqDistsGeneric(q, rows, out)
}

// streamSum sums rows: a plain streaming read, the floor for the matcher's
// scan in BenchmarkStream1M.
func streamSum(rows []float32) float32 {
	var s float32
	for _, v := range rows {
		s += v
	}
	return s
}
