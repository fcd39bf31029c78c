//go:build !linux

package models

import bolt "go.etcd.io/bbolt"

// releaseMapped is a no-op where MADV_DONTNEED is not available.
func releaseMapped(*bolt.DB, string) {}
