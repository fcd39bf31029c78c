// Caps glibc's malloc arenas for the whole process; see malloc.go.
#include <stdlib.h>  // defines __GLIBC__ on glibc
#ifdef __GLIBC__
#include <malloc.h>

static int kd_arenas_limited;

// Runs as the program loads, before the Go runtime starts a thread: glibc
// creates arenas freely until the limit is set, so setting it later (from
// Go) leaves the arenas already made (5-9 seen) in place.
__attribute__((constructor)) static void kd_limit_arenas(void) {
	kd_arenas_limited = mallopt(M_ARENA_MAX, 2);
}

int kd_arenas_were_limited(void) { return kd_arenas_limited; }
#else
int kd_arenas_were_limited(void) { return 0; }
#endif
