// Package encodertest gives tests of other packages one real dlib encoder.
// (It is not in recognizertest because recognizer's own tests import that
// package, and this one imports recognizer.)
package encodertest

import (
	"sync"
	"testing"

	"github.com/kioskd/kioskd/recognizer"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

var (
	once sync.Once
	enc  *recognizer.Encoder
	err  error
)

// MustEncoder returns an encoder on the real models, opened once per test
// binary (loading dlib's models takes about a second) and never closed: the
// process exit frees it.
func MustEncoder(tb testing.TB) *recognizer.Encoder {
	tb.Helper()
	dir := recognizertest.ModelsDir(tb)
	once.Do(func() {
		cfg := recognizer.DefaultEncoderConfig()
		cfg.ModelsDir = dir
		enc = recognizer.NewEncoder(cfg)
		err = enc.Open()
	})
	if err != nil {
		tb.Fatalf("open encoder: %v", err)
	}
	return enc
}
