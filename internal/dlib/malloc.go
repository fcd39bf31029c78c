package dlib

// int kd_arenas_were_limited(void);
import "C"

// ArenasLimited reports whether the process runs with at most two glibc
// malloc arenas (false when the C library is not glibc). arenas.c sets the
// limit as the program loads: otherwise every arena dlib's detector threads
// land in keeps what was freed in it and the resident set climbs with each
// photo (figures and the rejected mmap threshold: docs/benchmarks.md).
func ArenasLimited() bool { return C.kd_arenas_were_limited() != 0 }

// init references arenas.c so the linker keeps it, and its constructor.
func init() { _ = ArenasLimited() }
