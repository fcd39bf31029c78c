//go:build linux

package bolt

import (
	"os"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMapped drops the database file's pages from this process's resident
// set (MADV_DONTNEED on bbolt's read-only shared mapping). The data stays in
// the page cache and is faulted back in on the next read, so nothing changes
// but memory: the consistency check at Open reads the whole file, and without
// this every page of it would stay counted against kioskd's RSS. The caller
// must hold the store so that no write transaction remaps the file meanwhile.
func releaseMapped(b *bbolt.DB, path string) {
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 {
		return
	}
	data := b.Info().Data
	if data == 0 {
		return
	}
	// The mapping is at least as long as the file; a raw syscall keeps the
	// address a uintptr (no unsafe.Pointer round trip).
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, data, uintptr(st.Size()), unix.MADV_DONTNEED)
}
