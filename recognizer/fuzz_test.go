package recognizer

import (
	"encoding/binary"
	"hash/crc32"
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/kioskd/kioskd/models"
)

// nilTB lets fixture builders run outside a test (fuzz seeds, helpers).
type nilTB struct{ testing.TB }

func (nilTB) Helper()                   {}
func (nilTB) Fatal(args ...any)         { panic(args) }
func (nilTB) Fatalf(f string, a ...any) { panic(f) }

func putBE32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// FuzzDecode feeds arbitrary bytes to the decode path (sniffing, header
// limits, EXIF orientation, pixel decoding): it must return an image of the
// size the header announced or a coded error, never panic, and never decode
// past the pixel limit.
func FuzzDecode(f *testing.F) {
	small := gradient(48, 40)
	f.Add(jpegOf(nilTB{}, small, 80))
	f.Add(pngOf(nilTB{}, small))
	f.Add(withOrientation(jpegOf(nilTB{}, small, 80), 6))
	f.Add(withOrientation(jpegOf(nilTB{}, small, 80), 3))
	f.Add(pngOf(nilTB{}, image.NewGray(image.Rect(0, 0, 1, 1))))
	f.Add(hugePNGHeader(50000, 50000))
	if b, err := os.ReadFile(filepath.Join("testdata", "decode", "cmyk", "cmyk.jpg")); err == nil {
		f.Add(b)
	}
	lim := limits{maxBytes: 1 << 20, maxPixels: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := readHeader(b, lim)
		if err != nil {
			if code := errCode(err); code != "bad_image" && code != "too_large" {
				t.Fatalf("readHeader error %v has code %q", err, code)
			}
			return
		}
		if h.width*h.height > lim.maxPixels {
			t.Fatalf("accepted %dx%d over the limit", h.width, h.height)
		}
		img, err := decodePixels(b, h)
		if err != nil {
			if code := errCode(err); code != "bad_image" {
				t.Fatalf("decodePixels error %v has code %q", err, code)
			}
			return
		}
		w, ht := h.size()
		if img.w != w || img.h != ht || len(img.pix) != w*ht*3 {
			t.Fatalf("decoded %dx%d (%d bytes), header said %dx%d", img.w, img.h, len(img.pix), w, ht)
		}
	})
}

// FuzzOrientation: the EXIF parsers return 1..8 for any input.
func FuzzOrientation(f *testing.F) {
	f.Add(withOrientation(jpegOf(nilTB{}, gradient(8, 8), 80), 6))
	f.Add([]byte("MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x08\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, o := range []Orientation{jpegOrientation(b), pngOrientation(b), tiffOrientation(b)} {
			if o < 1 || o > 8 {
				t.Fatalf("orientation %d", o)
			}
		}
	})
}

func errCode(err error) string { return models.ErrorCode(err) }
