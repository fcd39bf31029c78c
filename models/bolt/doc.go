// Package bolt implements models.Store on a bbolt file: users, encrypted
// face encodings, attendance, accounts, the outbox and meta values, with the
// key file and sealing, schema migrations, the consistency check, scrubbing
// of deleted bytes, backups and disk-fault reporting.
//
// Only cmd/kioskd imports it in production; other packages take the
// models interfaces. Tests of other packages use it through bolttest.
package bolt
