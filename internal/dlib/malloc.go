package dlib

// int kd_arenas_were_limited(void);
import "C"

// ArenasLimited reports whether the process runs with at most two glibc
// malloc arenas (false when the C library is not glibc).
//
// arenas.c sets the limit in a C constructor, as the program loads. Why:
// dlib's detector allocates tens of megabytes per photo (the 2x copy, a
// pyramid level or two, their HOG features) from the threads that run it,
// new threads for every call. By default glibc gives threads up to 8
// arenas per core, and each arena keeps what was freed in it: encoding the
// 12 enrolment photos of ../shared/testdata/people 12 times on two workers
// peaked at 500-620 MB and held 420-530 MB afterwards, and it kept climbing
// with more photos. With two arenas: 350-410 MB peak, 240-310 MB
// afterwards, and no measurable change in a 640x480 encode (147 vs 151 ms,
// median of 4). Fixing the mmap threshold instead (mallopt
// M_MMAP_THRESHOLD) saved more memory but cost 25-45 ms per encode in page
// faults.
func ArenasLimited() bool { return C.kd_arenas_were_limited() != 0 }

// init references arenas.c so the linker keeps it, and its constructor.
func init() { _ = ArenasLimited() }
