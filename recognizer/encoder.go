package recognizer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"gocv.io/x/gocv"
	"golang.org/x/sync/semaphore"

	"github.com/kioskd/kioskd/internal/dlib"
	"github.com/kioskd/kioskd/models"
)

// Encoder defaults.
const (
	// DefaultMaxPixels refuses images above 40 megapixels: more than any
	// phone camera an enrolment photo comes from, and ~120 MB once decoded.
	DefaultMaxPixels = 40_000_000
	// DefaultMaxBytes refuses files above 20 MiB before looking at them.
	DefaultMaxBytes = 20 << 20
	// DefaultMinFaceSize is the smallest face box (its shorter side, in
	// pixels) EncodeOne accepts for enrolment. dlib's HOG detector finds
	// faces from 80 px, and from about 40 px on a 2x upscaled image; a 40 px
	// box is a face about 16 px between the eyes, which the ResNet model (fed
	// 150 px chips) sees as a blur. 50 px keeps enrolment descriptors usable
	// while still accepting a face that fills a quarter of a 320x240 photo.
	DefaultMinFaceSize = 50
	// DefaultUpsampleMaxPixels bounds the images Encode detects on a 2x
	// copy, as face_recognition always does: up to 6 MP (a 2x copy of 24 MP,
	// the whole DefaultMaxConcurrentPixels) our descriptors are
	// face_recognition's. Larger images are detected at native size (faces
	// from 80 px): the 2x pass costs about four native ones, and above the
	// budget it would run alone past it (docs/benchmarks.md, make abuse).
	DefaultUpsampleMaxPixels = DefaultMaxConcurrentPixels / 4
	// DefaultMaxConcurrentPixels bounds the pixels dlib works on at once
	// across concurrent encodes. Detection holds about 13 bytes per pixel it
	// scans (the 2x copy, a pyramid level or two, their HOG features), so 24
	// MP keeps the encoders' working memory near 300 MB: two ~2 MP photos
	// (8.5 MP each on the 2x copy) run side by side, a 6 MP one runs alone.
	DefaultMaxConcurrentPixels = 24_000_000
	// maxDetectThreads is dlib.Recognize's cap on DetectThreads.
	maxDetectThreads = 8
	// maxDefaultPool caps the default pool: each pooled dlib recognizer
	// holds the models (~35 MB) and dlib already uses a core per call.
	maxDefaultPool = 4
	// maxDefaultDetectThreads caps the default DetectThreads: a second
	// thread nearly halves detection, more gain little while taking cores
	// from other encodes (docs/benchmarks.md).
	maxDefaultDetectThreads = 2
)

// modelFiles are the files loaded from ModelsDir.
var modelFiles = []string{
	"shape_predictor_5_face_landmarks.dat",
	"dlib_face_recognition_resnet_model_v1.dat",
}

// EncoderConfig configures an Encoder. Start from DefaultEncoderConfig and
// override fields: NewEncoder uses the values as given, and Open refuses a
// missing ModelsDir or a size, pool or thread count below 1.
type EncoderConfig struct {
	// ModelsDir holds dlib's model files (`make models` puts them in var/models).
	ModelsDir string
	// MaxPixels refuses images with more pixels, read from the header
	// before decoding (ETOOLARGE).
	MaxPixels int
	// MaxBytes refuses larger files (ETOOLARGE).
	MaxBytes int64
	// MinFaceSize is the smallest face box side, in pixels, EncodeOne
	// accepts (EFACESMALL below it).
	MinFaceSize int
	// PoolSize is how many dlib recognizers run in parallel; each holds its
	// own copy of the models (about 35 MB).
	PoolSize int
	// DetectThreads is how many threads one encode's HOG face detection
	// uses (1 to 8, more is capped at 8; 1 is dlib's own single-threaded
	// detector). The faces
	// found are the same, bit for bit, for any value: only the time
	// changes. It cuts the latency of a single encode (an enrolment, a
	// frame); under full load (PoolSize encodes at once) it gains nothing.
	DetectThreads int
	// UpsampleMaxPixels is the largest image (in pixels) Encode detects on
	// a 2x copy, finding faces down to ~40 px as face_recognition does;
	// larger ones are detected at native size (faces from ~80 px).
	UpsampleMaxPixels int
	// MaxConcurrentPixels bounds the pixels being worked on at once by all
	// concurrent encodes together, counting an image detected on its 2x copy
	// four times: memory, not cores, limits how many large photos a bulk
	// import can encode side by side. An image larger than the budget runs
	// alone.
	MaxConcurrentPixels int
	// UpsampleFrames makes EncodeMat detect on a 2x copy too. Off by
	// default: detection at 2x costs about four native ones per frame, and a
	// person standing at the kiosk shows a face well above 80 px.
	UpsampleFrames bool
	// Logger receives debug timings and warnings; nil discards them.
	Logger *slog.Logger
}

// DefaultEncoderConfig returns the defaults, with ModelsDir var/models.
func DefaultEncoderConfig() EncoderConfig {
	return EncoderConfig{
		ModelsDir:           filepath.Join("var", "models"),
		MaxPixels:           DefaultMaxPixels,
		MaxBytes:            DefaultMaxBytes,
		MinFaceSize:         DefaultMinFaceSize,
		UpsampleMaxPixels:   DefaultUpsampleMaxPixels,
		MaxConcurrentPixels: DefaultMaxConcurrentPixels,
		PoolSize:            min(runtime.NumCPU(), maxDefaultPool),
		DetectThreads:       min(runtime.NumCPU(), maxDefaultDetectThreads),
	}
}

// Encoder finds faces and computes dlib ResNet descriptors, implementing
// models.Encoder. Create it with NewEncoder, then Open; it is safe for
// concurrent use, running up to PoolSize images at once.
//
// It runs dlib's pipeline the way face_recognition (the central registry's
// library) does: HOG detection on a 2x copy, 5-point landmarks and the
// ResNet descriptor on the original pixels. It hands dlib decoded pixels,
// never a re-encoded JPEG, so PNG, grey and CMYK inputs lose nothing.
type Encoder struct {
	cfg    EncoderConfig
	logger *slog.Logger

	pixels *semaphore.Weighted // MaxConcurrentPixels

	mu     sync.Mutex
	pool   chan *dlib.Recognizer
	opened int
	done   chan struct{} // closed by Close
}

var _ models.Encoder = (*Encoder)(nil)

// NewEncoder returns an Encoder using cfg as given (DetectThreads capped at
// 8); start from DefaultEncoderConfig. It does no I/O: Open checks cfg and
// loads the models.
func NewEncoder(cfg EncoderConfig) *Encoder {
	cfg.DetectThreads = min(cfg.DetectThreads, maxDetectThreads)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Encoder{cfg: cfg, logger: logger, pixels: semaphore.NewWeighted(int64(max(cfg.MaxConcurrentPixels, 0)))}
}

// validate returns an EINVALID error naming the first field Open cannot
// run with.
func (c *EncoderConfig) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxPixels", int64(c.MaxPixels)},
		{"MaxBytes", c.MaxBytes},
		{"MinFaceSize", int64(c.MinFaceSize)},
		{"PoolSize", int64(c.PoolSize)},
		{"DetectThreads", int64(c.DetectThreads)},
		{"UpsampleMaxPixels", int64(c.UpsampleMaxPixels)},
		{"MaxConcurrentPixels", int64(c.MaxConcurrentPixels)},
	} {
		if f.v < 1 {
			return models.Errorf(models.EINVALID, "encoder config: %s is %d, must be at least 1 (start from recognizer.DefaultEncoderConfig)", f.name, f.v)
		}
	}
	if c.ModelsDir == "" {
		return models.Errorf(models.EINVALID, "encoder config: ModelsDir is empty (start from recognizer.DefaultEncoderConfig)")
	}
	return nil
}

// Config returns the configuration in use.
func (e *Encoder) Config() EncoderConfig { return e.cfg }

// Open loads PoolSize copies of the models. An invalid configuration gives
// an EINVALID error naming the field; a missing model file an EUNAVAILABLE
// error naming it and the command that fetches it.
func (e *Encoder) Open() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pool != nil {
		return errors.New("encoder: already open")
	}
	if err := e.cfg.validate(); err != nil {
		return err
	}
	for _, f := range modelFiles {
		p := filepath.Join(e.cfg.ModelsDir, f)
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			return models.Errorf(models.EUNAVAILABLE, "dlib model file %s is missing: run `make models` (or point the models directory at a folder holding it)", p).
				WithDetail("file", p)
		}
	}
	start := time.Now()
	pool := make(chan *dlib.Recognizer, e.cfg.PoolSize)
	for i := 0; i < e.cfg.PoolSize; i++ {
		rec, err := dlib.Open(e.cfg.ModelsDir)
		if err != nil {
			close(pool)
			for r := range pool {
				r.Close()
			}
			return models.Errorf(models.EUNAVAILABLE, "dlib models in %s cannot be loaded (%v): run `make models` to fetch and check them", e.cfg.ModelsDir, err)
		}
		pool <- rec
	}
	e.pool, e.opened, e.done = pool, e.cfg.PoolSize, make(chan struct{})
	e.logger.Info("face encoder ready", "models", e.cfg.ModelsDir, "pool", e.cfg.PoolSize, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Close waits for running encodes to finish and frees the models. Calls
// waiting for a recognizer get EUNAVAILABLE. Safe to call twice.
func (e *Encoder) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pool == nil {
		return nil
	}
	close(e.done)
	for i := 0; i < e.opened; i++ {
		(<-e.pool).Close()
	}
	e.pool = nil
	return nil
}

// ready returns EUNAVAILABLE unless the encoder is open: checked before
// decoding, so a closed encoder does not spend work on a doomed image.
func (e *Encoder) ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pool == nil {
		return models.Errorf(models.EUNAVAILABLE, "The face encoder is not running.")
	}
	return nil
}

// acquire takes a recognizer from the pool, honouring ctx and Close.
func (e *Encoder) acquire(ctx context.Context) (*dlib.Recognizer, chan *dlib.Recognizer, error) {
	e.mu.Lock()
	pool, done := e.pool, e.done
	e.mu.Unlock()
	if pool == nil {
		return nil, nil, models.Errorf(models.EUNAVAILABLE, "The face encoder is not running.")
	}
	select {
	case rec := <-pool:
		select {
		case <-done:
			pool <- rec
			return nil, nil, models.Errorf(models.EUNAVAILABLE, "The face encoder is shutting down.")
		default:
		}
		return rec, pool, nil
	case <-done:
		return nil, nil, models.Errorf(models.EUNAVAILABLE, "The face encoder is shutting down.")
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// recognize runs dlib over BGR pixels.
func (e *Encoder) recognize(ctx context.Context, img *bgrImage, upsample bool) ([]models.Face, error) {
	rec, pool, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { pool <- rec }()
	n, faces, err := rec.Recognize(img.pix, img.w, img.h, upsample, e.cfg.DetectThreads)
	if err != nil {
		return nil, fmt.Errorf("recognize: %w", err)
	}
	if n > len(faces) {
		e.logger.Warn("too many faces in one image; describing the first ones", "found", n, "described", len(faces))
	}
	return convertFaces(faces, img.w, img.h), nil
}

// result is what one encode found, with what EncodeOne needs to explain it.
type result struct {
	faces     []models.Face
	w, h      int  // upright image size
	upsampled bool // faces were found on the 2x image
}

// Encode decodes img and returns every face with its descriptor, left to
// right. Images too small to hold a detectable face (a side under 40 px)
// give no faces. Errors: EBADIMAGE, ETOOLARGE, EUNAVAILABLE, ctx's error.
func (e *Encoder) Encode(ctx context.Context, img []byte) ([]models.Face, error) {
	r, err := e.encode(ctx, img)
	if err != nil {
		return nil, err
	}
	return r.faces, nil
}

func (e *Encoder) encode(ctx context.Context, img []byte) (*result, error) {
	start := time.Now()
	if err := e.ready(); err != nil {
		return nil, err
	}
	h, err := readHeader(img, e.limits())
	if err != nil {
		return nil, err
	}
	w, ht := h.size()
	res := &result{w: w, h: ht}
	if min(w, ht) < minImageSide {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.upsampled = e.canUpsample(w, ht)
	release, err := e.reservePixels(ctx, w, ht, res.upsampled)
	if err != nil {
		return nil, err
	}
	defer release()
	px, err := decodePixels(img, h)
	if err != nil {
		return nil, err
	}
	if res.faces, err = e.recognize(ctx, px, res.upsampled); err != nil {
		return nil, err
	}
	e.logger.Debug("encoded image", "format", h.format, "width", w, "height", ht, "orientation", int(h.orientation),
		"faces", len(res.faces), "upsampled", res.upsampled, "took", time.Since(start))
	return res, nil
}

// reservePixels waits until the w x h image (four times that when detected
// on its 2x copy) fits in MaxConcurrentPixels, before it is decoded; an
// image above the whole budget waits for all others and runs alone.
// Errors: ctx's error.
func (e *Encoder) reservePixels(ctx context.Context, w, h int, upsample bool) (release func(), err error) {
	n := int64(w) * int64(h)
	if upsample {
		n *= 4
	}
	n = max(1, min(n, int64(e.cfg.MaxConcurrentPixels)))
	if err := e.pixels.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { e.pixels.Release(n) }, nil
}

// canUpsample reports whether a w x h image is detected on a 2x copy.
func (e *Encoder) canUpsample(w, h int) bool {
	px := int64(w) * int64(h)
	return px <= int64(e.cfg.UpsampleMaxPixels) && 4*px <= int64(e.cfg.MaxPixels)
}

// convertFaces turns dlib's faces into models.Face: boxes made half-open
// (dlib's right/bottom are inclusive) and clipped to the image, as
// face_recognition's face_locations trims them, sorted left to right.
func convertFaces(faces []dlib.Face, w, h int) []models.Face {
	out := make([]models.Face, 0, len(faces))
	bounds := image.Rect(0, 0, w, h)
	for _, f := range faces {
		r := f.Rect
		box := image.Rect(r.Min.X, r.Min.Y, r.Max.X+1, r.Max.Y+1).Intersect(bounds)
		out = append(out, models.Face{Box: box, Landmarks: f.Landmarks, Descriptor: models.Descriptor(f.Descriptor)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Box.Min.X < out[j].Box.Min.X })
	return out
}

// EncodeOne applies the one-face rule to img: exactly one face, at least
// MinFaceSize across. Errors: as Encode, plus ENOFACE, EMULTIFACE
// (Details["count"]) and EFACESMALL (Details["size"], Details["min"]).
func (e *Encoder) EncodeOne(ctx context.Context, img []byte) (*models.Face, error) {
	r, err := e.encode(ctx, img)
	if err != nil {
		return nil, err
	}
	return e.oneFace(r)
}

func (e *Encoder) oneFace(r *result) (*models.Face, error) {
	switch n := len(r.faces); {
	case n == 0 && min(r.w, r.h) < minImageSide:
		return nil, models.Errorf(models.ENOFACE, "No face found: the image is only %dx%d pixels; use a photo where the face is at least %d pixels across.", r.w, r.h, e.cfg.MinFaceSize).
			WithDetail("width", r.w).WithDetail("height", r.h)
	case n == 0:
		return nil, models.Errorf(models.ENOFACE, "No face found: photograph one person facing the camera, face fully visible and well lit.")
	case n > 1:
		return nil, models.Errorf(models.EMULTIFACE, "%d faces found: photograph one person at a time.", n).WithDetail("count", n)
	}
	f := &r.faces[0]
	if size := min(f.Box.Dx(), f.Box.Dy()); size < e.cfg.MinFaceSize {
		return nil, models.Errorf(models.EFACESMALL, "The face is too small (%d pixels across; at least %d needed): move closer or use a larger photo.", size, e.cfg.MinFaceSize).
			WithDetail("size", size).WithDetail("min", e.cfg.MinFaceSize)
	}
	return f, nil
}

// EncodeMat finds faces in a BGR 8UC3 frame (the camera pipeline's), left to
// right, detecting at native size (faces from ~80 px) unless UpsampleFrames
// is set. Errors: EBADIMAGE (empty or not 8UC3), ETOOLARGE, EUNAVAILABLE,
// ctx's error.
func (e *Encoder) EncodeMat(ctx context.Context, m gocv.Mat) ([]models.Face, error) {
	w, h, err := e.checkFrame(m)
	if err != nil {
		return nil, err
	}
	if min(w, h) < minImageSide {
		return nil, nil
	}
	upsample := e.cfg.UpsampleFrames && e.canUpsample(w, h)
	release, err := e.reservePixels(ctx, w, h, upsample)
	if err != nil {
		return nil, err
	}
	defer release()
	px, err := bgrOfMat(m)
	if err != nil {
		return nil, err
	}
	return e.recognize(ctx, px, upsample)
}

// checkFrame returns m's size once the encoder is open and m is a BGR
// 8UC3 frame within MaxPixels. Errors: EUNAVAILABLE, EBADIMAGE, ETOOLARGE.
func (e *Encoder) checkFrame(m gocv.Mat) (w, h int, err error) {
	if err := e.ready(); err != nil {
		return 0, 0, err
	}
	if m.Empty() || m.Type() != gocv.MatTypeCV8UC3 || m.Channels() != 3 {
		return 0, 0, models.Errorf(models.EBADIMAGE, "The frame is empty or not 8-bit BGR.")
	}
	w, h = m.Cols(), m.Rows()
	if int64(w)*int64(h) > int64(e.cfg.MaxPixels) {
		return 0, 0, models.Errorf(models.ETOOLARGE, "The frame is %dx%d; the limit is %.1f megapixels.", w, h, float64(e.cfg.MaxPixels)/1e6)
	}
	return w, h, nil
}

// EncodeFace computes the descriptor of the face in box (half-open, in m's
// pixels) of a BGR 8UC3 frame without detecting it again: for callers that
// already found the face with dlib's HOG detector, as the kiosk's gates do.
// It runs the 5-point landmarks and the ResNet descriptor exactly as Encode
// and EncodeMat do on the face they detect; given the box one of them
// returned, the descriptor is the same, bit for bit. The returned face's box
// is box clipped to the frame. Errors: EBADIMAGE (empty or not 8UC3, or box
// outside the frame), ETOOLARGE, EUNAVAILABLE, ctx's error.
func (e *Encoder) EncodeFace(ctx context.Context, m gocv.Mat, box image.Rectangle) (*models.Face, error) {
	w, h, err := e.checkFrame(m)
	if err != nil {
		return nil, err
	}
	if box.Dx() < 2 || box.Dy() < 2 || !box.Overlaps(image.Rect(0, 0, w, h)) {
		return nil, models.Errorf(models.EBADIMAGE, "The face box %v is empty or outside the %dx%d frame.", box, w, h)
	}
	px, err := bgrOfMat(m)
	if err != nil {
		return nil, err
	}
	rec, pool, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { pool <- rec }()
	// dlib's rectangles include their right and bottom edges.
	f, err := rec.EncodeFace(px.pix, px.w, px.h, image.Rect(box.Min.X, box.Min.Y, box.Max.X-1, box.Max.Y-1))
	if err != nil {
		return nil, fmt.Errorf("encode face: %w", err)
	}
	return &convertFaces([]dlib.Face{f}, w, h)[0], nil
}

func (e *Encoder) limits() limits {
	return limits{maxBytes: e.cfg.MaxBytes, maxPixels: e.cfg.MaxPixels}
}
