// Package password hashes device account passwords (argon2id), verifies the
// Django formats central pushes, bounds their cost before any work, and
// checks new passwords against Django's rules and common-password list.
package password
