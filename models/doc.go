// Package models is kioskd's domain package: the types every subsystem shares
// (users, face encodings, attendance events, local accounts, outbox messages),
// the coded error vocabulary and the interfaces between subsystems. It uses
// the standard library only.
//
// Implementations live in subpackages: models/bolt is the bbolt store (with
// its key-file crypto), models/password hashes and checks account passwords.
// Only cmd/kioskd wires them in; recognizer knows nothing of bbolt, sync
// nothing of dlib.
package models
