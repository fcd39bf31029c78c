//go:build !linux

package bolt

import "go.etcd.io/bbolt"

// releaseMapped is a no-op where MADV_DONTNEED is not available.
func releaseMapped(*bbolt.DB, string) {}
