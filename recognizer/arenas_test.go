package recognizer

import (
	"testing"

	"github.com/kioskd/kioskd/internal/dlib"
)

// TestMallocArenasLimited: the process runs with glibc's two-arena limit,
// set by a C constructor before any thread starts (internal/dlib/arenas.c);
// without it the encoders' resident memory grows with every large photo.
func TestMallocArenasLimited(t *testing.T) {
	if !dlib.ArenasLimited() {
		t.Fatal("glibc malloc arenas are not limited: the constructor in internal/dlib/arenas.c did not run or mallopt refused")
	}
}
