// Package models is kioskd's domain package: the types every subsystem shares
// (users, face encodings, attendance events, local accounts, outbox messages),
// the coded error vocabulary, the interfaces between subsystems, and the bbolt
// implementation of the store.
//
// Other packages depend on these types and interfaces, never on each other's
// internals: recognizer knows nothing of bbolt, sync knows nothing of dlib.
package models
