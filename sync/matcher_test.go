package sync_test

import "github.com/kioskd/kioskd/recognizer"

// newTestMatcher returns the matcher the kiosks under test keep in step:
// the real one (synctest.Matcher serves the subprocess kiosk only).
func newTestMatcher() testMatcher { return recognizer.NewMatcher(recognizer.DefaultMatcherConfig()) }
