package recognizer

import (
	"context"
	"image"
	"os"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// benchImagePath is where BenchmarkEncode640x480 leaves its input, for
// scripts/peer_bench.py to time face_recognition on the very same bytes.
func benchImagePath() string {
	return filepath.Join(recognizertest.RepoRoot(), "var", "bench", "encode640x480.jpg")
}

// bench640x480 makes a 640x480 JPEG holding one face (about 180 px) from
// people/obama/1.jpg: the top 4:3 part of the portrait, scaled down.
func bench640x480(b *testing.B) []byte {
	b.Helper()
	src := mustDecodeFile(b, recognizertest.Testdata(b, "people/obama/1.jpg"))
	sb := src.Bounds()
	top := crop(src, image.Rect(0, 0, sb.Dx(), sb.Dx()*3/4))
	img := jpegOf(b, resizeBox(top, 640, 480), 95)
	p := benchImagePath()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
		_ = os.WriteFile(p, img, 0o644)
	}
	return img
}

// benchEncoder opens a one-recognizer Encoder with cfg on the real models.
func benchEncoder(b *testing.B, cfg EncoderConfig) *Encoder {
	b.Helper()
	cfg.ModelsDir = recognizertest.ModelsDir(b)
	cfg.PoolSize = 1
	enc := NewEncoder(cfg)
	if err := enc.Open(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { enc.Close() })
	return enc
}

// BenchmarkEncode640x480: EncodeOne on a 640x480 JPEG with one face, the
// face_recognition-compatible path (decode, HOG on the 2x copy, landmarks,
// descriptor), one call at a time. Compare with `make bench-peer`.
func BenchmarkEncode640x480(b *testing.B) {
	img := bench640x480(b)
	enc := benchEncoder(b, DefaultEncoderConfig())
	ctx := context.Background()
	if _, err := enc.EncodeOne(ctx, img); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := enc.EncodeOne(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode640x480OneThread: BenchmarkEncode640x480 with dlib's own
// single-threaded detector (DetectThreads 1), the baseline of the
// multi-threaded replica.
func BenchmarkEncode640x480OneThread(b *testing.B) {
	img := bench640x480(b)
	cfg := DefaultEncoderConfig()
	cfg.DetectThreads = 1
	enc := benchEncoder(b, cfg)
	ctx := context.Background()
	for b.Loop() {
		if _, err := enc.EncodeOne(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeMat640x480: the camera path, a decoded BGR frame detected
// at native size (UpsampleFrames off).
func BenchmarkEncodeMat640x480(b *testing.B) {
	img := bench640x480(b)
	m, err := gocv.IMDecode(img, gocv.IMReadColor)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	enc := benchEncoder(b, DefaultEncoderConfig())
	ctx := context.Background()
	for b.Loop() {
		faces, err := enc.EncodeMat(ctx, m)
		if err != nil || len(faces) != 1 {
			b.Fatalf("%d faces, %v", len(faces), err)
		}
	}
}

// BenchmarkEncodeFaceCrop and BenchmarkEncodeMatCrop: the kiosk's encode of
// a face crop (the face 150 px wide with half its width of margin on each
// side, about 300x300), given the gate's box or detecting the face again.
func BenchmarkEncodeFaceCrop(b *testing.B) { benchmarkCrop(b, true) }

// BenchmarkEncodeMatCrop: see BenchmarkEncodeFaceCrop.
func BenchmarkEncodeMatCrop(b *testing.B) { benchmarkCrop(b, false) }

func benchmarkCrop(b *testing.B, given bool) {
	src := gocv.IMRead(recognizertest.Testdata(b, "people/obama/1.jpg"), gocv.IMReadColor)
	defer src.Close()
	enc := benchEncoder(b, DefaultEncoderConfig())
	ctx := context.Background()
	faces, err := enc.EncodeMat(ctx, src)
	if err != nil || len(faces) != 1 {
		b.Fatalf("%d faces, %v", len(faces), err)
	}
	box := faces[0].Box
	mg := box.Dx() / 2
	area := image.Rect(box.Min.X-mg, box.Min.Y-mg, box.Max.X+mg, box.Max.Y+mg).Intersect(image.Rect(0, 0, src.Cols(), src.Rows()))
	roi := src.Region(area)
	s := 150.0 / float64(box.Dx())
	m := gocv.NewMat()
	defer m.Close()
	gocv.Resize(roi, &m, image.Point{}, s, s, gocv.InterpolationArea)
	roi.Close()
	in := box.Sub(area.Min)
	in = image.Rect(int(float64(in.Min.X)*s), int(float64(in.Min.Y)*s), int(float64(in.Max.X)*s), int(float64(in.Max.Y)*s))
	for b.Loop() {
		if given {
			if _, err := enc.EncodeFace(ctx, m, in); err != nil {
				b.Fatal(err)
			}
		} else if faces, err := enc.EncodeMat(ctx, m); err != nil || len(faces) != 1 {
			b.Fatalf("%d faces, %v", len(faces), err)
		}
	}
}
