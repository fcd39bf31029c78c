package models

import (
	"fmt"
	"unicode/utf8"
)

// checkText refuses what must not be in a name or other free text shown on
// screens, sheets and logs: invalid UTF-8, control characters (NUL, ESC,
// DEL, C1) and the bidirectional overrides, embeddings, isolates and marks
// that make text display in another order than it is stored (U+202E shows
// "gpj.exe" as "exe.jpg"), plus the line and paragraph separators. Both the
// API and central's pushes pass through User.Validate, so both refuse them.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, "%s: not valid UTF-8", field).WithDetail("field", field)
	}
	for i, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || isBidiControl(r) || r == 0x2028 || r == 0x2029 {
			return Errorf(EINVALID, "%s: contains the control character %s at byte %d; remove it", field, runeName(r), i).
				WithDetail("field", field)
		}
	}
	return nil
}

// CheckText is the free-text rule of User.Validate for text that names a
// user from outside (an ID typed on the kiosk or read from a card): an
// EINVALID error naming field, or nil.
func CheckText(field, s string) error { return checkText(field, s) }

// isBidiControl reports the Unicode bidirectional formatting characters.
func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

func runeName(r rune) string { return fmt.Sprintf("U+%04X", r) }
