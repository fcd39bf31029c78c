package models

// Store is everything kioskd keeps on disk. *DB implements it with bbolt.
type Store interface {
	UserStore
	AttendanceStore
	AccountStore
	Outbox
	MetaStore
}
