package recognizer

import (
	"context"
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// TestEncodePeopleMatchOwnPhotosOnly enrols every photo in people/ with the
// one-face rule and checks that each matches the same person's other photos
// and nobody else's at the default threshold.
func TestEncodePeopleMatchOwnPhotosOnly(t *testing.T) {
	enc := sharedEncoder(t)
	files, _ := filepath.Glob(filepath.Join(recognizertest.TestdataDir(t), "people", "*", "*"))
	type photo struct {
		person, file string
		d            models.Descriptor
	}
	var photos []photo
	for _, f := range files {
		face, err := enc.EncodeOne(context.Background(), mustReadFile(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		photos = append(photos, photo{filepath.Base(filepath.Dir(f)), f, face.Descriptor})
	}
	if len(photos) < 4 {
		t.Fatalf("only %d photos in people/", len(photos))
	}
	for i, a := range photos {
		for _, b := range photos[i+1:] {
			d := models.Distance(&a.d, &b.d)
			same := a.person == b.person
			if same != (d < DefaultThreshold) {
				t.Errorf("%s vs %s: distance %.3f (same person: %v)", a.file, b.file, d, same)
			}
		}
	}
	// The same through the Matcher (default threshold and margin): each
	// photo against all the others.
	for i, probe := range photos {
		m := NewMatcher(DefaultMatcherConfig())
		for j, p := range photos {
			if j != i {
				m.AddDescriptors(p.person, p.d)
			}
		}
		_, enrolled := m.index[probe.person]
		got := m.Identify(&probe.d)
		if got.Known != enrolled || (enrolled && got.UserID != probe.person) {
			t.Errorf("%s (enrolled elsewhere: %v) identified as %+v", probe.file, enrolled, got)
		}
	}
}

// TestEncodeOneSeveralFaces: a photo of two people is refused with the count.
func TestEncodeOneSeveralFaces(t *testing.T) {
	enc := sharedEncoder(t)
	inputs := map[string][]byte{}
	if recognizertest.HasSharedTestdata(t) {
		inputs["multi/two_people.jpg"] = mustReadFile(t, recognizertest.Testdata(t, "multi/two_people.jpg"))
	}
	// Two enrolment photos side by side: works on the fallback set too.
	a := mustDecodeFile(t, recognizertest.Testdata(t, "people/obama/1.jpg"))
	b := mustDecodeFile(t, recognizertest.Testdata(t, "people/biden/1.jpg"))
	b = resizeBox(b, b.Bounds().Dx()*a.Bounds().Dy()/b.Bounds().Dy(), a.Bounds().Dy())
	inputs["obama beside biden"] = jpegOf(t, sideBySide(a, b), 95)
	for name, img := range inputs {
		_, err := enc.EncodeOne(context.Background(), img)
		wantCode(t, err, models.EMULTIFACE)
		if n := models.ErrorDetails(err)["count"]; n != 2 {
			t.Errorf("%s: count %v, want 2", name, n)
		}
		if msg := models.ErrorMessage(err); !strings.Contains(msg, "2 faces found") || !strings.Contains(msg, "one person at a time") {
			t.Errorf("%s: message %q", name, msg)
		}
		faces, err := enc.Encode(context.Background(), img)
		if err != nil || len(faces) != 2 || faces[0].Box.Min.X > faces[1].Box.Min.X {
			t.Errorf("%s: Encode = %d faces (%v), want 2 left to right", name, len(faces), err)
		}
	}
}

// TestEncodePhotos pins, per photo of photos/ (one person each), what the
// encoder finds. None may be refused over a phantom second face.
func TestEncodePhotos(t *testing.T) {
	if !recognizertest.HasSharedTestdata(t) {
		// The fallback set has two partial-face photos instead.
		for _, f := range []string{"partial/obama_partial_face.jpg", "partial/obama_partial_face2.jpg"} {
			faces, err := sharedEncoder(t).Encode(context.Background(), mustReadFile(t, recognizertest.Testdata(t, f)))
			if err != nil || len(faces) > 1 {
				t.Errorf("%s: %d faces, %v", f, len(faces), err)
			}
		}
		return
	}
	tests := []struct {
		file  string
		faces int
		why   string // why no face is found
	}{
		{"bona.jpg", 1, ""},
		{"bona2.jpg", 1, ""},
		{"bona3.jpg", 1, ""},
		{"bona4.jpg", 1, ""},
		{"eunseo.jpg", 0, "three-quarter view, head turned and tilted up, chin on hand: outside the frontal HOG detector's range"},
		{"eunseo2.jpg", 1, ""},
		{"eunseo3.jpg", 1, ""},
		{"jimin3.jpg", 0, "profile view (looking left): the frontal HOG detector does not see profiles"},
		{"jimin5.jpg", 1, ""},
		{"jimin6.jpg", 1, ""},
		{"jimin7.jpg", 1, ""},
		{"luda.jpg", 1, ""},
		{"tzuyu.jpg", 1, ""},
	}
	enc := sharedEncoder(t)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			face, err := enc.EncodeOne(context.Background(), mustReadFile(t, recognizertest.Testdata(t, "photos/"+tt.file)))
			switch tt.faces {
			case 0:
				wantCode(t, err, models.ENOFACE)
			case 1:
				if err != nil {
					t.Fatalf("EncodeOne: %v", err)
				}
				if err := face.Descriptor.Validate(); err != nil || len(face.Landmarks) != 5 {
					t.Fatalf("face %+v: %v", face.Box, err)
				}
			}
		})
	}
}

func TestEncodeOneNoFace(t *testing.T) {
	enc := sharedEncoder(t)
	img := jpegOf(t, gradient(640, 480), 90)
	faces, err := enc.Encode(context.Background(), img)
	if err != nil || len(faces) != 0 {
		t.Fatalf("Encode(gradient) = %d faces, %v", len(faces), err)
	}
	_, err = enc.EncodeOne(context.Background(), img)
	wantCode(t, err, models.ENOFACE)
	if !strings.Contains(models.ErrorMessage(err), "one person") {
		t.Errorf("message %q", models.ErrorMessage(err))
	}
}

// libjpegPixels decodes a JPEG with libjpeg (OpenCV), as the encoder and
// Pillow do, into an RGBA image.
func libjpegPixels(t *testing.T, path string) *image.RGBA {
	t.Helper()
	m := gocv.IMRead(path, gocv.IMReadColor)
	defer m.Close()
	if m.Empty() {
		t.Fatalf("imread %s failed", path)
	}
	img := image.NewRGBA(image.Rect(0, 0, m.Cols(), m.Rows()))
	pix := m.ToBytes()
	for i := 0; i < m.Rows()*m.Cols(); i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = pix[3*i+2], pix[3*i+1], pix[3*i], 255
	}
	return img
}

// withPNGOrientation inserts an eXIf chunk carrying orientation o after a
// PNG's IHDR chunk.
func withPNGOrientation(p []byte, o Orientation) []byte {
	tiff := []byte{'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, byte(o), 0, 0, 0, 0, 0, 0}
	chunk := make([]byte, 8, 12+len(tiff))
	putBE32(chunk, uint32(len(tiff)))
	copy(chunk[4:], "eXIf")
	chunk = append(chunk, tiff...)
	var crc [4]byte
	putBE32(crc[:], crc32IEEE(chunk[4:]))
	chunk = append(chunk, crc[:]...)
	const ihdrEnd = 8 + 8 + 13 + 4
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}

// TestEncodeFormats: the same pixels as PNG (RGB, RGBA, 16-bit) give the
// JPEG's descriptor exactly (dlib gets decoded pixels, nothing is
// re-encoded); grey versions and EXIF-rotated ones find the same person at
// the same place.
func TestEncodeFormats(t *testing.T) {
	enc := sharedEncoder(t)
	path := recognizertest.Testdata(t, "people/obama/1.jpg")
	ref, err := enc.EncodeOne(context.Background(), mustReadFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	rgba := libjpegPixels(t, path)
	b := rgba.Bounds()
	gray := image.NewGray(b)
	gray16 := image.NewGray16(b)
	rgba64 := image.NewRGBA64(b)
	nrgba := image.NewNRGBA(b)
	pal := image.NewPaletted(b, grayPalette())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := rgba.RGBAAt(x, y)
			gray.Set(x, y, c)
			gray16.Set(x, y, c)
			rgba64.Set(x, y, c)
			pal.Set(x, y, c)
			// Half-transparent: Pillow's convert("RGB") keeps the colour.
			nrgba.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, 128})
		}
	}
	tests := []struct {
		name    string
		img     []byte
		maxDist float64 // to the original JPEG's descriptor
	}{
		{"png rgb", pngOf(t, rgba), 1e-4},
		{"png rgba half transparent", pngOf(t, nrgba), 1e-4},
		{"png 16-bit", pngOf(t, rgba64), 1e-4},
		{"png exif orientation 6", withPNGOrientation(pngOf(t, rotateCCW(rgba)), 6), 1e-4},
		{"png palette grey", pngOf(t, pal), 0.3},
		{"png grey", pngOf(t, gray), 0.3},
		{"png grey 16-bit", pngOf(t, gray16), 0.3},
		{"jpeg grey", jpegOf(t, gray, 95), 0.3},
		{"jpeg exif orientation 6", withOrientation(jpegOf(t, rotateCCW(rgba), 95), 6), 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			face, err := enc.EncodeOne(context.Background(), tt.img)
			if err != nil {
				t.Fatalf("EncodeOne: %v", err)
			}
			if d := models.Distance(&face.Descriptor, &ref.Descriptor); d > tt.maxDist {
				t.Errorf("descriptor %.4f from the JPEG original's (limit %g)", d, tt.maxDist)
			}
			if off := face.Box.Min.Sub(ref.Box.Min); abs(off.X) > 8 || abs(off.Y) > 8 {
				t.Errorf("box %v, original's %v", face.Box, ref.Box)
			}
		})
	}
}

func grayPalette() color.Palette {
	p := make(color.Palette, 256)
	for i := range p {
		p[i] = color.Gray{uint8(i)}
	}
	return p
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestEncodeCMYKFixture decodes an authored, face-free CMYK JPEG (Adobe
// inverted CMYK, as Photoshop writes it) to the colours it was made with.
func TestEncodeCMYKFixture(t *testing.T) {
	b := mustReadFile(t, filepath.Join("testdata", "decode", "cmyk", "cmyk.jpg"))
	h, err := readHeader(b, limits{maxPixels: DefaultMaxPixels})
	if err != nil || h.model != color.CMYKModel {
		t.Fatalf("header %+v, %v", h, err)
	}
	bgr, err := decodePixels(b, h)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's left half is red, right half blue (see its README).
	at := func(x, y int) (r, g, b int) {
		i := (y*bgr.w + x) * 3
		return int(bgr.pix[i+2]), int(bgr.pix[i+1]), int(bgr.pix[i])
	}
	if r, g, bl := at(bgr.w/4, bgr.h/2); r < 200 || g > 60 || bl > 60 {
		t.Errorf("left half decodes to %d,%d,%d, want red", r, g, bl)
	}
	if r, g, bl := at(3*bgr.w/4, bgr.h/2); r > 60 || g > 60 || bl < 200 {
		t.Errorf("right half decodes to %d,%d,%d, want blue", r, g, bl)
	}
	enc := sharedEncoder(t)
	_, err = enc.EncodeOne(context.Background(), b)
	wantCode(t, err, models.ENOFACE)
}

// TestEncodeBadInputs: each bad input gives its coded error, without a crash
// or a large allocation.
func TestEncodeBadInputs(t *testing.T) {
	enc := sharedEncoder(t)
	photo := mustReadFile(t, recognizertest.Testdata(t, "people/obama/1.jpg"))
	onePixel := pngOf(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	tests := []struct {
		name string
		img  []byte
		code string
	}{
		{"empty", nil, models.EBADIMAGE},
		{"text", []byte("hello, this is not an image"), models.EBADIMAGE},
		{"jpeg magic only", []byte{0xFF, 0xD8, 0xFF}, models.EBADIMAGE},
		{"truncated jpeg", photo[:len(photo)/2], models.EBADIMAGE},
		{"truncated png", pngOf(t, gradient(200, 200))[:300], models.EBADIMAGE},
		{"png claiming 50000x50000", hugePNGHeader(50000, 50000), models.ETOOLARGE},
		{"1x1 png", onePixel, models.ENOFACE},
		{"oversized file", append(append([]byte{}, photo...), make([]byte, DefaultMaxBytes)...), models.ETOOLARGE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := enc.EncodeOne(context.Background(), tt.img)
			runtime.ReadMemStats(&after)
			wantCode(t, err, tt.code)
			if models.ErrorMessage(err) == "" {
				t.Error("no message")
			}
			// A truncated photo is decoded by libjpeg in C (not counted
			// here); Go-side allocations must stay small for every case.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
				t.Errorf("allocated %d MB", grew>>20)
			}
		})
	}
	// Encode (no one-face rule) gives no faces and no error for 1x1.
	if faces, err := enc.Encode(context.Background(), onePixel); err != nil || len(faces) != 0 {
		t.Errorf("Encode(1x1) = %v, %v", faces, err)
	}
}

// hugePNGHeader is a PNG signature and IHDR claiming w x h RGB pixels,
// followed by a tiny IDAT: the header alone must be refused.
func hugePNGHeader(w, h uint32) []byte {
	small := pngOf(nilTB{}, image.NewRGBA(image.Rect(0, 0, 1, 1)))
	b := append([]byte{}, small...)
	// IHDR data starts at 16: width, height (big endian); fix its CRC.
	putBE32(b[16:], w)
	putBE32(b[20:], h)
	putBE32(b[29:], crc32IEEE(b[12:29]))
	return b
}

// TestEncodeSmallFaces: faces under dlib's native 80 px are found on the
// 2x copy, as face_recognition finds them; EncodeOne refuses those under
// MinFaceSize.
func TestEncodeSmallFaces(t *testing.T) {
	enc := sharedEncoder(t)
	ctx := context.Background()
	if recognizertest.HasSharedTestdata(t) {
		// people/obama/3_small.jpg is 320x240 with a ~105 px face.
		face, err := enc.EncodeOne(ctx, mustReadFile(t, recognizertest.Testdata(t, "people/obama/3_small.jpg")))
		if err != nil || face.Box.Dx() < 80 {
			t.Fatalf("3_small.jpg: %+v, %v", face, err)
		}
	}
	full := mustDecodeFile(t, recognizertest.Testdata(t, "people/obama/1.jpg"))
	ref, err := enc.EncodeOne(ctx, mustReadFile(t, recognizertest.Testdata(t, "people/obama/1.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	fb := full.Bounds()
	tests := []struct {
		name       string
		div        int
		code       string
		nativeMiss bool // native-size detection misses it
	}{
		{"fifth (~54 px face)", 5, "", false},
		{"seventh (~39 px face)", 7, models.EFACESMALL, true},
	}
	cfg := DefaultEncoderConfig()
	cfg.ModelsDir, cfg.PoolSize, cfg.UpsampleMaxPixels = enc.cfg.ModelsDir, 1, 1
	native := NewEncoder(cfg)
	if err := native.Open(); err != nil {
		t.Fatal(err)
	}
	defer native.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := jpegOf(t, resizeBox(full, fb.Dx()/tt.div, fb.Dy()/tt.div), 95)
			r, err := enc.encode(ctx, img)
			if err != nil || len(r.faces) != 1 || !r.upsampled {
				t.Fatalf("encode: %d faces upsampled=%v, %v", len(r.faces), r.upsampled, err)
			}
			f := r.faces[0]
			// The box is in the small image's coordinates.
			want := ref.Box.Min.Div(tt.div)
			if off := f.Box.Min.Sub(want); abs(off.X) > 6 || abs(off.Y) > 6 {
				t.Errorf("box %v, want near %v", f.Box, want)
			}
			for _, p := range f.Landmarks {
				if !p.In(f.Box) {
					t.Errorf("landmark %v outside box %v", p, f.Box)
				}
			}
			if d := models.Distance(&f.Descriptor, &ref.Descriptor); d > 0.45 {
				t.Errorf("descriptor %.3f from the full-size photo's", d)
			}
			_, err = enc.EncodeOne(ctx, img)
			if tt.code == "" && err != nil {
				t.Fatalf("EncodeOne: %v", err)
			}
			if tt.code != "" {
				wantCode(t, err, tt.code)
				det := models.ErrorDetails(err)
				if det["min"] != DefaultMinFaceSize || det["size"].(int) >= DefaultMinFaceSize {
					t.Errorf("details %v", det)
				}
			}
			// Detected at native size only, the smallest face is missed.
			if faces, err := native.Encode(ctx, img); tt.nativeMiss && (err != nil || len(faces) != 0) {
				t.Errorf("native-size detection: %d faces, %v", len(faces), err)
			}
		})
	}
}

func TestEncodeMatFrame(t *testing.T) {
	enc := sharedEncoder(t)
	m := gocv.IMRead(recognizertest.Testdata(t, "people/obama/1.jpg"), gocv.IMReadColor)
	defer m.Close()
	faces, err := enc.EncodeMat(context.Background(), m)
	if err != nil || len(faces) != 1 {
		t.Fatalf("EncodeMat = %d faces, %v", len(faces), err)
	}
	ref, err := enc.EncodeOne(context.Background(), mustReadFile(t, recognizertest.Testdata(t, "people/obama/1.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	// Native-size detection boxes the face a little differently from the
	// 2x one Encode uses: the descriptor moves, far less than a threshold.
	if d := models.Distance(&faces[0].Descriptor, &ref.Descriptor); d > 0.15 {
		t.Errorf("frame descriptor %.4f from the file's", d)
	}
	cfg := DefaultEncoderConfig()
	cfg.ModelsDir, cfg.PoolSize, cfg.UpsampleFrames = enc.cfg.ModelsDir, 1, true
	up := NewEncoder(cfg)
	if err := up.Open(); err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	faces, err = up.EncodeMat(context.Background(), m)
	if err != nil || len(faces) != 1 {
		t.Fatalf("EncodeMat with UpsampleFrames = %d faces, %v", len(faces), err)
	}
	if d := models.Distance(&faces[0].Descriptor, &ref.Descriptor); d > 1e-4 {
		t.Errorf("frame descriptor with UpsampleFrames %.5f from the file's (same pixels, same pipeline)", d)
	}
	empty := gocv.NewMat()
	defer empty.Close()
	_, err = enc.EncodeMat(context.Background(), empty)
	wantCode(t, err, models.EBADIMAGE)
	grey := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8U)
	defer grey.Close()
	_, err = enc.EncodeMat(context.Background(), grey)
	wantCode(t, err, models.EBADIMAGE)
}

// TestEncodeHonoursContext: a caller waiting for a busy pool gives up when
// its context ends; Close makes waiting callers fail with EUNAVAILABLE.
func TestEncodeHonoursContext(t *testing.T) {
	cfg := DefaultEncoderConfig()
	cfg.ModelsDir, cfg.PoolSize = recognizertest.ModelsDir(t), 1
	enc := NewEncoder(cfg)
	if err := enc.Open(); err != nil {
		t.Fatal(err)
	}
	rec, pool, err := enc.acquire(context.Background()) // the only recognizer
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = enc.Encode(ctx, jpegOf(t, gradient(100, 100), 90))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Encode with a busy pool = %v, want deadline exceeded", err)
	}
	pool <- rec
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = enc.Encode(context.Background(), jpegOf(t, gradient(100, 100), 90))
	wantCode(t, err, models.EUNAVAILABLE)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEncodeParallelCallers runs more callers than pool members.
func TestEncodeParallelCallers(t *testing.T) {
	enc := sharedEncoder(t)
	img := mustReadFile(t, recognizertest.Testdata(t, "people/obama/1.jpg"))
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			_, err := enc.EncodeOne(context.Background(), img)
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestEncoderOpenRefusesInvalidConfig: NewEncoder takes cfg as given, so a
// zero pool or size is an EINVALID error from Open naming the field, before
// any model is read.
func TestEncoderOpenRefusesInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*EncoderConfig)
	}{
		{"PoolSize", func(c *EncoderConfig) { c.PoolSize = 0 }},
		{"MaxPixels", func(c *EncoderConfig) { c.MaxPixels = -1 }},
		{"DetectThreads", func(c *EncoderConfig) { c.DetectThreads = 0 }},
		{"ModelsDir", func(c *EncoderConfig) { c.ModelsDir = "" }},
	} {
		cfg := DefaultEncoderConfig()
		cfg.ModelsDir = t.TempDir() // no models: a config error must come first
		tc.edit(&cfg)
		err := NewEncoder(cfg).Open()
		wantCode(t, err, models.EINVALID)
		if msg := models.ErrorMessage(err); !strings.Contains(msg, tc.field) {
			t.Errorf("%s: message %q does not name it", tc.field, msg)
		}
	}
}

func TestOpenNamesMissingModel(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultEncoderConfig()
	cfg.ModelsDir = dir
	enc := NewEncoder(cfg)
	err := enc.Open()
	wantCode(t, err, models.EUNAVAILABLE)
	msg := models.ErrorMessage(err)
	if !strings.Contains(msg, "make models") || !strings.Contains(msg, "shape_predictor_5_face_landmarks.dat") {
		t.Errorf("message %q", msg)
	}
	_, err = enc.Encode(context.Background(), []byte{1})
	wantCode(t, err, models.EUNAVAILABLE)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Fatal("unexpected file")
	}
}

// TestEncodeFaceSameAsDetected: EncodeFace on the box EncodeMat found gives
// the very same landmarks and descriptor (same pixels, same rectangle, same
// models); only the detection is skipped. Bad inputs get EBADIMAGE.
func TestEncodeFaceSameAsDetected(t *testing.T) {
	enc := sharedEncoder(t)
	ctx := context.Background()
	files, _ := filepath.Glob(filepath.Join(recognizertest.TestdataDir(t), "people", "*", "*"))
	files = append(files, recognizertest.Testdata(t, "multi/two_people.jpg"))
	checked := 0
	for _, f := range files {
		m := gocv.IMRead(f, gocv.IMReadColor)
		if m.Empty() {
			t.Fatalf("read %s", f)
		}
		faces, err := enc.EncodeMat(ctx, m)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, want := range faces {
			if want.Box.Min.X == 0 || want.Box.Min.Y == 0 || want.Box.Max.X == m.Cols() || want.Box.Max.Y == m.Rows() {
				continue // clipped to the image: not dlib's own rectangle
			}
			got, err := enc.EncodeFace(ctx, m, want.Box)
			if err != nil {
				t.Fatalf("%s: EncodeFace: %v", f, err)
			}
			if got.Box != want.Box || got.Descriptor != want.Descriptor || !slices.Equal(got.Landmarks, want.Landmarks) {
				t.Errorf("%s: EncodeFace differs from EncodeMat's face: distance %.6f", f, models.Distance(&got.Descriptor, &want.Descriptor))
			}
			checked++
		}
		m.Close()
	}
	if checked < 5 {
		t.Fatalf("only %d faces checked", checked)
	}
	m := gocv.IMRead(recognizertest.Testdata(t, "people/obama/1.jpg"), gocv.IMReadColor)
	defer m.Close()
	for _, box := range []image.Rectangle{{}, image.Rect(-50, -50, -10, -10), image.Rect(m.Cols(), 0, m.Cols()+40, 40)} {
		_, err := enc.EncodeFace(ctx, m, box)
		wantCode(t, err, models.EBADIMAGE)
	}
	grey := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8U)
	defer grey.Close()
	_, err := enc.EncodeFace(ctx, grey, image.Rect(10, 10, 100, 100))
	wantCode(t, err, models.EBADIMAGE)
}
