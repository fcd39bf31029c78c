package sync_test

import "github.com/kioskd/kioskd/recognizer"

// newTestMatcher returns the real matcher the kiosks under test keep in step.
func newTestMatcher() *recognizer.Matcher {
	return recognizer.NewMatcher(recognizer.DefaultMatcherConfig())
}
