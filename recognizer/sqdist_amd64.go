//go:build amd64 && !purego

package recognizer

import (
	"golang.org/x/sys/cpu"

	"github.com/kioskd/kioskd/models"
)

// haveAVX2 selects the assembly kernel; the OS must also save YMM state,
// which x/sys/cpu checks.
var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// sqDistsAVX2 is sqDists in AVX2/FMA assembly: n rows of 128 float32s from
// rows, results to out. See sqdist_amd64.s.
//
//go:noescape
func sqDistsAVX2(q *float32, rows *float32, out *float32, n int)

// sqDists writes the squared Euclidean distance between q and each 128-float
// row of rows into out (len(rows) == len(out)*128).
func sqDists(q *models.Descriptor, rows []float32, out []float32) {
	if len(out) == 0 {
		return
	}
	if len(rows) < len(out)*dim {
		panic("recognizer: sqDists: rows shorter than out*128")
	}
	if haveAVX2 {
		sqDistsAVX2(&q[0], &rows[0], &out[0], len(out))
		return
	}
	sqDistsGeneric(q, rows, out)
}

// sumAVX2 sums n rows of 128 float32s (see sqdist_amd64.s).
//
//go:noescape
func sumAVX2(p *float32, n int) float32

// streamSum sums rows (whole 128-float rows): a plain streaming read of the
// gallery, the floor for the matcher's scan in BenchmarkStream1M.
func streamSum(rows []float32) float32 {
	if len(rows) < dim {
		return 0
	}
	if haveAVX2 {
		return sumAVX2(&rows[0], len(rows)/dim)
	}
	var s float32
	for _, v := range rows {
		s += v
	}
	return s
}
