package models

// Store is everything kioskd keeps on disk; models/bolt implements it.
type Store interface {
	UserStore
	EnrolmentStore
	AttendanceStore
	AccountStore
	Outbox
	MetaStore
}
