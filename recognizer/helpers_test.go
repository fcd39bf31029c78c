package recognizer

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"os"
	"sync"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

var (
	sharedOnce sync.Once
	sharedEnc  *Encoder
	sharedErr  error
)

// sharedEncoder returns one open Encoder for the whole test binary: loading
// dlib's models takes about a second per pool member.
func sharedEncoder(tb testing.TB) *Encoder {
	tb.Helper()
	dir := recognizertest.ModelsDir(tb)
	sharedOnce.Do(func() {
		cfg := DefaultEncoderConfig()
		cfg.ModelsDir, cfg.PoolSize = dir, 2
		sharedEnc = NewEncoder(cfg)
		sharedErr = sharedEnc.Open()
	})
	if sharedErr != nil {
		tb.Fatalf("open encoder: %v", sharedErr)
	}
	return sharedEnc
}

func mustReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// mustDecodeFile decodes a photo with Go's decoders.
func mustDecodeFile(tb testing.TB, path string) image.Image {
	tb.Helper()
	img, _, err := image.Decode(bytes.NewReader(mustReadFile(tb, path)))
	if err != nil {
		tb.Fatalf("decode %s: %v", path, err)
	}
	return img
}

// resizeBox scales img to w x h by averaging source blocks (a box filter,
// like a camera's downscale), returning RGBA.
func resizeBox(img image.Image, w, h int) *image.RGBA {
	src := toRGBA(img)
	sb := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		y0, y1 := y*sb.Dy()/h, max((y+1)*sb.Dy()/h, y*sb.Dy()/h+1)
		for x := 0; x < w; x++ {
			x0, x1 := x*sb.Dx()/w, max((x+1)*sb.Dx()/w, x*sb.Dx()/w+1)
			var r, g, b, n int
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					i := src.PixOffset(sb.Min.X+sx, sb.Min.Y+sy)
					r, g, b, n = r+int(src.Pix[i]), g+int(src.Pix[i+1]), b+int(src.Pix[i+2]), n+1
				}
			}
			j := dst.PixOffset(x, y)
			dst.Pix[j], dst.Pix[j+1], dst.Pix[j+2], dst.Pix[j+3] = uint8(r/n), uint8(g/n), uint8(b/n), 255
		}
	}
	return dst
}

func toRGBA(img image.Image) *image.RGBA {
	if m, ok := img.(*image.RGBA); ok {
		return m
	}
	b := img.Bounds()
	m := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(m, m.Bounds(), img, b.Min, draw.Src)
	return m
}

// crop returns a copy of r of img.
func crop(img image.Image, r image.Rectangle) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(m, m.Bounds(), img, r.Min, draw.Src)
	return m
}

func jpegOf(tb testing.TB, img image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func pngOf(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// gradient is a face-free synthetic image.
func gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	return m
}

// sideBySide places a and b next to each other on a grey canvas.
func sideBySide(a, b image.Image) *image.RGBA {
	ab, bb := a.Bounds(), b.Bounds()
	m := image.NewRGBA(image.Rect(0, 0, ab.Dx()+bb.Dx(), max(ab.Dy(), bb.Dy())))
	draw.Draw(m, m.Bounds(), image.NewUniform(color.Gray{128}), image.Point{}, draw.Src)
	draw.Draw(m, image.Rect(0, 0, ab.Dx(), ab.Dy()), a, ab.Min, draw.Src)
	draw.Draw(m, image.Rect(ab.Dx(), 0, ab.Dx()+bb.Dx(), bb.Dy()), b, bb.Min, draw.Src)
	return m
}

// withOrientation inserts an EXIF APP1 segment carrying orientation o right
// after a JPEG's SOI marker.
func withOrientation(jpg []byte, o Orientation) []byte {
	tiff := []byte{'I', 'I', 42, 0, 8, 0, 0, 0, // header, IFD0 at 8
		1, 0, // one entry
		0x12, 0x01, 3, 0, 1, 0, 0, 0, byte(o), 0, 0, 0, // orientation SHORT 1
		0, 0, 0, 0} // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out := append([]byte{}, jpg[:2]...)
	out = append(out, app1...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// rotateCCW returns img turned 90 degrees counter-clockwise: what a phone
// stores, with EXIF orientation 6, for a picture shown upright.
func rotateCCW(img image.Image) *image.RGBA {
	src := toRGBA(img)
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			dst.Set(y, b.Dx()-1-x, src.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return dst
}

// wantCode fails unless err carries the coded error code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := models.ErrorCode(err); got != code {
		tb.Fatalf("error code %q (%v), want %q", got, err, code)
	}
}

// loadGallery fills m with users as the daemon does at start: Grow once,
// then AddDescriptors per user.
func loadGallery(m *Matcher, users map[string][]models.Descriptor) {
	n := 0
	for _, ds := range users {
		n += len(ds)
	}
	m.Grow(n)
	for id, ds := range users {
		m.AddDescriptors(id, ds...)
	}
}
