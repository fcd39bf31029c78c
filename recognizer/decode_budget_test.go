package recognizer

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// TestHeaderBoundsDecodedBytes: with the default limits a 6000x6000 16-bit
// RGBA PNG (288 MB decoded; it peaked at 1.1 GB) is refused from its header,
// while the same size at 8 bits, and a 16-bit image of half the pixels, pass.
func TestHeaderBoundsDecodedBytes(t *testing.T) {
	lim := limits{maxBytes: DefaultMaxBytes, maxPixels: DefaultMaxPixels}
	cases := []struct {
		w, h             int
		depth, colorType byte
		refused          bool
	}{
		{6000, 6000, 16, 6, true},  // RGBA 16-bit: 8 B/px
		{6000, 6000, 16, 2, true},  // RGB 16-bit: decoded as RGBA64
		{6000, 6000, 8, 6, false},  // RGBA 8-bit: 4 B/px
		{6000, 6000, 16, 0, false}, // gray 16-bit: 2 B/px
		{4000, 4000, 16, 6, false}, // 16 MP at 8 B/px = 128 MB
	}
	for _, c := range cases {
		_, err := readHeader(recognizertest.PNGHeader(c.w, c.h, c.depth, c.colorType), lim)
		if got := models.ErrorCode(err) == models.ETOOLARGE; got != c.refused {
			t.Errorf("%dx%d depth %d type %d: %v, refused=%v", c.w, c.h, c.depth, c.colorType, err, c.refused)
		}
	}
	// A real encoded 16-bit PNG goes the same way under a small limit.
	img := image.NewNRGBA64(image.Rect(0, 0, 800, 800))
	img.Set(1, 1, color.NRGBA64{R: 0xffff, A: 0xffff})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if _, err := readHeader(buf.Bytes(), limits{maxPixels: 1_000_000}); models.ErrorCode(err) != models.ETOOLARGE {
		t.Fatalf("800x800 16-bit PNG under a 1 MP limit: %v, want ETOOLARGE", err)
	} else {
		t.Log(models.ErrorMessage(err))
	}
}
