package device

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
)

// FaceEncoder computes descriptors for the faces in a BGR frame;
// *recognizer.Encoder implements it.
type FaceEncoder interface {
	EncodeMat(ctx context.Context, m gocv.Mat) ([]models.Face, error)
}

// FaceBoxEncoder is a FaceEncoder that can also describe a face whose box
// is already known, without detecting it again; *recognizer.Encoder
// implements it. The pipeline uses it when the encoder has it: the gates
// found the face with the same HOG detector, so a second scan of the crop
// would only cost time.
type FaceBoxEncoder interface {
	FaceEncoder
	EncodeFace(ctx context.Context, m gocv.Mat, box image.Rectangle) (*models.Face, error)
}

// AttendanceRecorder commits attendance and looks users up; *models.DB
// implements it. When it also has LastAttendance, the cooldown survives a
// restart.
type AttendanceRecorder interface {
	RecordAttendance(ctx context.Context, ev *models.AttendanceEvent) error
	GetUser(ctx context.Context, id string) (*models.User, error)
}

type lastAttendancer interface {
	LastAttendance(ctx context.Context, userID string) (*models.AttendanceEvent, error)
}

// encodeMargin is how much of the face box's width is added on each side of
// the crop handed to the encoder: room for the aligned chip's padding, and
// for dlib to re-detect the face when the encoder is not a FaceBoxEncoder.
const encodeMargin = 0.5

// errLogEvery spaces repeated error logs of one kind.
const errLogEvery = 10 * time.Second

// frame is one frame on its way from the source to the gates.
type frame struct {
	mat      gocv.Mat
	at       time.Time // frame clock: media time for replays, wall clock otherwise
	captured time.Time // wall clock when read
	live     bool      // from a live or paced source: never wait for the encoder
	seq      int       // frame number since the source opened
}

// encodeJob is a crop of a gated frame for the encoder.
type encodeJob struct {
	trackID uint64
	crop    gocv.Mat
	expect  image.Rectangle // the face's box in crop pixels
	at      time.Time
	seq     int
	// live: the encoding goroutine applies the result itself, at once,
	// instead of leaving it for the gates' goroutine to pick up after the
	// frame it is gating (up to a whole gate's time later).
	live bool
}

type encodeResult struct {
	trackID uint64
	seq     int
	vote    vote
	found   bool
	jpeg    []byte // crop, only when unknown faces are kept
	err     error
}

type captureWaiter struct {
	ch chan capturedFace
}

type capturedFace struct {
	crop   gocv.Mat
	origin image.Point
	scale  float64
	expect image.Rectangle
	jpeg   []byte
}

type lastEvent struct {
	at time.Time
	id string
}

// Pipeline runs the kiosk: frames in, gated, tracked, identified, checked for
// liveness, recorded, announced. Create it with NewPipeline, then Start; Close
// stops it.
type Pipeline struct {
	cfg     Config
	enc     FaceEncoder
	matcher models.Matcher
	store   AttendanceRecorder
	bus     *Bus
	logger  *slog.Logger

	// Now returns the current time; tests replace it before Start.
	Now func() time.Time
	// OpenSource opens the frame source; tests replace it before Start.
	OpenSource func(cfg *Config) (FrameSource, error)

	det   *FaceDetector
	shape *ShapePredictor
	gater *Gater

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	frames  chan frame
	jobs    chan encodeJob
	results chan encodeResult
	done    chan struct{}
	// encInflight counts encode jobs queued or running.
	encInflight atomic.Int64
	started     bool
	closed      bool

	mu     sync.Mutex
	status CameraStatus

	previewMu   sync.Mutex
	preview     []byte
	previewSeq  uint64
	previewNext chan struct{} // closed when a new preview is stored
	previewLast time.Time

	waitMu  sync.Mutex
	waiters map[*captureWaiter]struct{}

	// stateMu guards the track, the votes, the decision and the cooldown:
	// the processing goroutine holds it after gating a frame, the encoding
	// goroutine while applying a live result. Gating itself runs unlocked.
	stateMu    sync.Mutex
	track      *track
	nextTrack  uint64
	lastEvents map[string]lastEvent
	kindMu     sync.Mutex
	lastKind   models.FeedbackKind
	errMu      sync.Mutex
	errLogged  map[string]time.Time

	// onRecord, when set (tests, benchmarks), is called after each
	// committed event with the track that earned it and the frame time of
	// the decision.
	onRecord func(ev *models.AttendanceEvent, t *track, at time.Time)
	// onGate, when set (tests), sees every gated frame's verdict.
	onGate func(at time.Time, g *Gate, t *track)
	// onTrace, when set (benchmarks), is called at each step of a track's
	// way to a decision, with the wall time and the frame number the step
	// belongs to. It runs on the pipeline's goroutines.
	onTrace func(step string, trackID uint64, seq int, wall time.Time)

	// taken is when the gates last took a frame (unix ns), for LastTaken.
	taken atomic.Int64
}

// trace reports a step to onTrace.
func (p *Pipeline) trace(step string, trackID uint64, seq int) {
	if p.onTrace != nil {
		p.onTrace(step, trackID, seq, time.Now())
	}
}

// NewPipeline returns a pipeline. It does no I/O: Start loads the models
// and opens the source. logger may be nil.
func NewPipeline(cfg Config, enc FaceEncoder, matcher models.Matcher, store AttendanceRecorder, bus *Bus, logger *slog.Logger) *Pipeline {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if bus == nil {
		bus = NewBus()
	}
	return &Pipeline{
		cfg: cfg, enc: enc, matcher: matcher, store: store, bus: bus, logger: logger,
		Now:         time.Now,
		OpenSource:  OpenSource,
		previewNext: make(chan struct{}),
		waiters:     map[*captureWaiter]struct{}{},
		lastEvents:  map[string]lastEvent{},
		errLogged:   map[string]time.Time{},
		done:        make(chan struct{}),
		status:      CameraStatus{State: CameraStarting, Source: redactURL(cfg.Source)},
	}
}

// Bus returns the feedback bus.
func (p *Pipeline) Bus() *Bus { return p.bus }

// Start validates the configuration, loads the detector and the 68-point
// shape predictor and starts reading frames. A source that cannot be opened
// is not an error: the pipeline keeps retrying and reports it in Status.
func (p *Pipeline) Start(ctx context.Context) error {
	if p.started {
		return errors.New("pipeline already started")
	}
	if err := p.cfg.Validate(); err != nil {
		return err
	}
	if p.enc == nil || p.matcher == nil || p.store == nil {
		return errors.New("pipeline needs an encoder, a matcher and a store")
	}
	shape, err := NewShapePredictor(p.cfg.ShapePredictorPath)
	if err != nil {
		return models.Errorf(models.EUNAVAILABLE, "The landmark model %s cannot be loaded: run `make models`.", p.cfg.ShapePredictorPath).WithDetail("error", err.Error())
	}
	det, err := NewFaceDetector()
	if err != nil {
		shape.Close()
		return err
	}
	gater, err := NewGater(&p.cfg, det, shape)
	if err != nil {
		shape.Close()
		det.Close()
		return err
	}
	p.shape, p.det, p.gater = shape, det, gater
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.frames = make(chan frame, 1)
	p.jobs = make(chan encodeJob, 1)
	p.results = make(chan encodeResult, 4)
	p.started = true
	p.wg.Add(3)
	go func() { defer p.wg.Done(); p.captureLoop() }()
	go func() { defer p.wg.Done(); p.processLoop() }()
	go func() { defer p.wg.Done(); p.encodeLoop() }()
	return nil
}

// Close stops the pipeline, waits for its goroutines and frees every Mat
// and model. It is safe to call twice.
func (p *Pipeline) Close() error {
	if !p.started || p.closed {
		return nil
	}
	p.closed = true
	p.cancel()
	p.wg.Wait()
	p.gater.Close()
	p.det.Close()
	p.shape.Close()
	p.setState(CameraStopped, "")
	return nil
}

// Done is closed when a file or folder source has been played to its end
// and every frame processed (never for cameras and streams), or after Close.
func (p *Pipeline) Done() <-chan struct{} { return p.done }

// LastTaken returns when the gates last took a frame (zero before the
// first): the daemon's watchdog tells a stuck pipeline by it.
func (p *Pipeline) LastTaken() time.Time {
	if n := p.taken.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Status returns a snapshot of the camera and the counters.
func (p *Pipeline) Status() CameraStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.status
	s.FeedbackDropped = p.bus.Dropped()
	return s
}

func (p *Pipeline) setState(st CameraState, lastErr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status.State != st {
		p.status.State = st
		p.status.Since = p.Now()
	}
	if lastErr != "" {
		p.status.LastError = lastErr
	}
}

func (p *Pipeline) count(fn func(s *CameraStatus)) {
	p.mu.Lock()
	fn(&p.status)
	p.mu.Unlock()
}

// captureLoop opens the source, reopening it with capped, jittered backoff
// when it fails, and reads frames as fast as the source gives them.
func (p *Pipeline) captureLoop() {
	defer close(p.frames)
	backoff := p.cfg.ReopenMin
	first := true
	for p.ctx.Err() == nil {
		if !first {
			p.count(func(s *CameraStatus) { s.Reopens++ })
		}
		first = false
		src, err := p.OpenSource(&p.cfg)
		if err != nil {
			p.sourceFailed(err)
			if !p.sleep(jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, p.cfg.ReopenMax)
			continue
		}
		p.setState(CameraRunning, "")
		p.logger.Info("camera source open", "source", redactURL(p.cfg.Source), "live", src.Live(), "fps", src.FPS())
		n, err := p.readFrames(src)
		src.Close()
		if n > 0 {
			backoff = p.cfg.ReopenMin
		}
		switch {
		case p.ctx.Err() != nil:
			return
		case errors.Is(err, io.EOF):
			p.setState(CameraEnded, "")
			p.logger.Info("camera source ended", "source", redactURL(p.cfg.Source), "frames", n)
			return
		default:
			p.sourceFailed(err)
			if !p.sleep(jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, p.cfg.ReopenMax)
		}
	}
}

func (p *Pipeline) sourceFailed(err error) {
	p.setState(CameraReconnecting, err.Error())
	p.logRateLimited("source", "camera source failed; reopening", "err", err)
	p.publish(models.Feedback{Kind: models.FeedbackCameraLost, Message: "Camera unavailable. Please wait or call a technician."})
}

// readFrames reads until the source fails, ends, or the pipeline stops.
func (p *Pipeline) readFrames(src FrameSource) (int, error) {
	live := src.Live()
	fps := src.FPS()
	base := p.Now()
	var n int
	for {
		if p.ctx.Err() != nil {
			return n, p.ctx.Err()
		}
		m := gocv.NewMat()
		if err := src.Read(&m); err != nil {
			m.Close()
			return n, err
		}
		now := p.Now()
		at := now
		if !live && fps > 0 {
			// Unpaced replay: decisions follow the media clock, so the
			// result does not depend on how fast this machine is.
			at = base.Add(time.Duration(float64(n) * float64(time.Second) / fps))
		}
		n++
		p.count(func(s *CameraStatus) { s.Frames++; s.LastFrameAt = now })
		f := frame{mat: m, at: at, captured: now, live: live, seq: n - 1}
		if live {
			p.offerLatest(f)
			continue
		}
		select {
		case p.frames <- f:
		case <-p.ctx.Done():
			m.Close()
			return n, p.ctx.Err()
		}
	}
}

// offerLatest hands f to the gates, replacing (and freeing) a frame still
// waiting: a live source is always drained and the newest frame wins.
func (p *Pipeline) offerLatest(f frame) {
	select {
	case p.frames <- f:
		return
	default:
	}
	select {
	case old := <-p.frames:
		old.mat.Close()
		p.count(func(s *CameraStatus) { s.Dropped++ })
	default:
	}
	select {
	case p.frames <- f:
	default:
		f.mat.Close()
		p.count(func(s *CameraStatus) { s.Dropped++ })
	}
}

func (p *Pipeline) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// jitter returns d plus or minus 20%, so that kiosks sharing a stream server
// do not retry in step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (p *Pipeline) processLoop() {
	defer close(p.done)
	defer p.releaseWaiters()
	for f := range p.frames {
		p.taken.Store(time.Now().UnixNano())
		p.drainResults(false)
		if p.ctx.Err() == nil {
			p.process(f)
		}
		f.mat.Close()
	}
	// Let the last encodings in flight land before reporting done.
	p.drainResults(true)
}

// drainResults applies finished encodings; with wait it also waits until
// none is queued or running.
func (p *Pipeline) drainResults(wait bool) {
	for {
		select {
		case r := <-p.results:
			p.stateMu.Lock()
			p.applyResult(r)
			p.stateMu.Unlock()
			continue
		default:
		}
		if !wait || (len(p.jobs) == 0 && p.inflight() == 0) {
			return
		}
		// Live results are applied by the encoding goroutine, which says
		// so only through the in-flight count: poll it.
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case r := <-p.results:
			p.stateMu.Lock()
			p.applyResult(r)
			p.stateMu.Unlock()
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

func (p *Pipeline) inflight() int64 { return p.encInflight.Load() }

// process gates one frame and moves the track, votes and decision on.
func (p *Pipeline) process(f frame) {
	p.trace("gate", 0, f.seq)
	g, err := p.gater.Check(f.mat)
	p.trace("gated-frame", 0, f.seq)
	if err != nil {
		p.logRateLimited("gate", "gate frame", "err", err)
		return
	}
	p.stateMu.Lock()
	p.advance(f, &g)
	p.stateMu.Unlock()
	p.updatePreview(f.mat, &g)
}

// advance moves the track, votes and decision on with one gated frame; the
// caller holds stateMu.
func (p *Pipeline) advance(f frame, g *Gate) {
	p.count(func(s *CameraStatus) { s.Processed++ })
	now := f.at
	t := p.track
	if t != nil && now.Sub(t.lastSeen) > p.cfg.TrackTimeout {
		t, p.track = nil, nil
	}
	switch {
	case len(g.Faces) > 1:
		// Two people: whatever was gathered for one of them no longer
		// counts, and nothing is encoded.
		p.track = nil
		p.feedback(g.Problem, "One person at a time, please.")
	case g.Face == nil:
		p.feedback(g.Problem, "")
	default:
		box := g.Face.Box
		if t != nil && p.appearanceBreak(t, g.Face.Patch) {
			t, p.track = nil, nil
		}
		if t == nil || iou(t.box, box) < p.cfg.TrackIoU {
			p.nextTrack++
			t = &track{id: p.nextTrack, firstSeen: now, votes: votes{m: p.cfg.ConfirmM},
				live: newLiveness(p.cfg.BlinkEAR, p.cfg.LivenessMotion)}
			p.track = t
		}
		t.box, t.lastSeen = box, now
		if g.Face.Patch != nil {
			t.patch = g.Face.Patch
		}
		if len(g.Face.Landmarks) == lmCount {
			was := t.live.proof()
			t.live.add(now, g.Face.Landmarks)
			if was == "" && t.live.proof() != "" {
				p.trace("live", t.id, f.seq)
			}
		}
		if !g.Passed() {
			msg := ""
			if g.Problem == models.FeedbackTooDark && backlit(g.Face) {
				msg = "Light behind you: turn so the light falls on your face."
			}
			p.feedback(g.Problem, msg)
			// Evidence often comes while the face is turned (a head turn):
			// a track already identified on gated frames may be recorded.
			p.decide(t, now)
			break
		}
		if t.firstGated.IsZero() {
			t.firstGated = f.captured
			if p.onTrace != nil {
				p.onTrace("gated", t.id, f.seq, f.captured)
			}
		}
		t.luma = g.Face.Brightness
		p.serveCapture(f.mat, box, t.luma)
		if !t.decided && (t.lastEncode.IsZero() || now.Sub(t.lastEncode) >= p.cfg.EncodeInterval) {
			if p.queueEncode(f, t) {
				t.lastEncode = now
				p.trace("queued", t.id, f.seq)
			} else {
				p.trace("busy", t.id, f.seq)
			}
		}
		p.decide(t, now)
	}
	if p.onGate != nil {
		p.onGate(f.at, g, p.track)
	}
}

// appearanceBreak reports whether the face in patch no longer looks like
// the track's last one: the same place, but not the same face (see
// continuity.go). The caller holds stateMu.
func (p *Pipeline) appearanceBreak(t *track, patch facePatch) bool {
	// A missing patch compares as 1: nothing to tell the faces apart.
	sim := t.patch.similarity(patch)
	if p.cfg.TrackContinuity <= 0 || sim >= p.cfg.TrackContinuity {
		return false
	}
	p.count(func(s *CameraStatus) { s.AppearanceBreaks++ })
	// Rate-limited: a noisy camera could do this on every frame; the
	// status counts every one.
	p.logRateLimited("appearance", "face changed at once (a photo swapped, or a camera cut); its track starts over",
		"track", t.id, "similarity", sim, "decided", t.decided)
	return true
}

// feedback publishes a gate problem when it differs from the last one.
func (p *Pipeline) feedback(kind models.FeedbackKind, msg string) {
	p.kindMu.Lock()
	same := kind == p.lastKind
	p.kindMu.Unlock()
	if kind == "" || same {
		return
	}
	if msg == "" {
		msg = feedbackMessages[kind]
	}
	p.publish(models.Feedback{Kind: kind, Message: msg})
}

var feedbackMessages = map[models.FeedbackKind]string{
	models.FeedbackIdle:         "Step up to the camera.",
	models.FeedbackOnePerson:    "One person at a time, please.",
	models.FeedbackMoveCloser:   "Please move closer.",
	models.FeedbackTooDark:      "Too dark: face the light.",
	models.FeedbackTooBright:    "Too bright: step out of the glare.",
	models.FeedbackHoldStill:    "Hold still.",
	models.FeedbackLookAtCamera: "Look at the camera.",
}

func (p *Pipeline) publish(f models.Feedback) {
	if f.Time.IsZero() {
		f.Time = p.Now()
	}
	p.kindMu.Lock()
	p.lastKind = f.Kind
	p.kindMu.Unlock()
	p.bus.Publish(f)
}

// cropFor cuts the face with a margin out of frame and scales it so that
// the face is at least EncodeFaceSize wide; a dim face (mean luma faceLuma)
// is lifted as for the landmarks (see liftExposure). It returns the crop,
// its origin in the frame, the scale and the face's box in crop pixels.
func (p *Pipeline) cropFor(frame gocv.Mat, box image.Rectangle, faceLuma float64) (gocv.Mat, image.Point, float64, image.Rectangle) {
	m := int(float64(box.Dx()) * encodeMargin)
	area := image.Rect(box.Min.X-m, box.Min.Y-m, box.Max.X+m, box.Max.Y+m).Intersect(image.Rect(0, 0, frame.Cols(), frame.Rows()))
	roi := frame.Region(area)
	defer roi.Close()
	scale := 1.0
	if box.Dx() < p.cfg.EncodeFaceSize {
		scale = float64(p.cfg.EncodeFaceSize) / float64(box.Dx())
	}
	crop := gocv.NewMat()
	if scale == 1 {
		roi.CopyTo(&crop)
	} else {
		gocv.Resize(roi, &crop, image.Point{}, scale, scale, gocv.InterpolationLinear)
	}
	liftExposure(crop, &crop, faceLuma)
	expect := box.Sub(area.Min)
	expect = image.Rect(int(float64(expect.Min.X)*scale), int(float64(expect.Min.Y)*scale),
		int(float64(expect.Max.X)*scale), int(float64(expect.Max.Y)*scale))
	return crop, area.Min, scale, expect
}

// queueEncode hands a crop of the gated face to the encoder. Replays wait
// for the result (deterministic); live sources skip the frame when the
// encoder is busy, so gating keeps up with the camera.
func (p *Pipeline) queueEncode(f frame, t *track) bool {
	crop, _, _, expect := p.cropFor(f.mat, t.box, t.luma)
	job := encodeJob{trackID: t.id, crop: crop, expect: expect, at: f.at, seq: f.seq, live: f.live}
	p.encInflight.Add(1)
	select {
	case p.jobs <- job:
	default:
		p.encInflight.Add(-1)
		crop.Close()
		return false
	}
	if f.live {
		return true
	}
	select {
	case r := <-p.results:
		p.applyResult(r)
	case <-p.ctx.Done():
	}
	return true
}

// encodeLoop runs encodings one at a time, beside the gates.
func (p *Pipeline) encodeLoop() {
	for {
		select {
		case <-p.ctx.Done():
			// Free crops still queued.
			for {
				select {
				case j := <-p.jobs:
					j.crop.Close()
					p.encInflight.Add(-1)
				default:
					return
				}
			}
		case j := <-p.jobs:
			r := p.encode(j)
			j.crop.Close()
			if j.live {
				p.stateMu.Lock()
				if p.ctx.Err() == nil {
					p.applyResult(r)
				}
				p.stateMu.Unlock()
			} else {
				select {
				case p.results <- r:
				case <-p.ctx.Done():
				}
			}
			p.encInflight.Add(-1)
		}
	}
}

func (p *Pipeline) encode(j encodeJob) encodeResult {
	r := encodeResult{trackID: j.trackID, seq: j.seq}
	p.trace("encode", j.trackID, j.seq)
	f, err := p.encodeCrop(j.crop, j.expect)
	p.trace("encoded", j.trackID, j.seq)
	p.count(func(s *CameraStatus) { s.Encodings++ })
	if err != nil {
		r.err = err
		return r
	}
	if f == nil {
		return r
	}
	m := p.matcher.Identify(&f.Descriptor)
	r.found = true
	r.vote = vote{distance: m.Distance}
	if m.Known {
		r.vote.userID = m.UserID
	} else if p.cfg.UnknownDir != "" {
		if buf, err := gocv.IMEncode(gocv.JPEGFileExt, j.crop); err == nil {
			r.jpeg = append([]byte(nil), buf.GetBytes()...)
			buf.Close()
		}
	}
	return r
}

// encodeCrop describes the face at expect in crop: directly in that box
// when the encoder is a FaceBoxEncoder, else by detecting faces in the
// crop and taking the one overlapping expect (nil when none does).
func (p *Pipeline) encodeCrop(crop gocv.Mat, expect image.Rectangle) (*models.Face, error) {
	if be, ok := p.enc.(FaceBoxEncoder); ok {
		return be.EncodeFace(p.ctx, crop, expect)
	}
	faces, err := p.enc.EncodeMat(p.ctx, crop)
	if err != nil {
		return nil, err
	}
	return bestFace(faces, expect), nil
}

// bestFace returns the face overlapping expect most, nil when none does.
func bestFace(faces []models.Face, expect image.Rectangle) *models.Face {
	var best *models.Face
	var bestIoU float64 = 0.2
	for i := range faces {
		if v := iou(faces[i].Box, expect); v > bestIoU {
			best, bestIoU = &faces[i], v
		}
	}
	return best
}

// applyResult adds an encoding's vote to its track, if that is still the
// current one, and decides; the caller holds stateMu.
func (p *Pipeline) applyResult(r encodeResult) {
	if r.err != nil {
		p.logRateLimited("encode", "encode face", "err", r.err)
		return
	}
	t := p.track
	if t == nil || t.id != r.trackID || !r.found {
		return
	}
	t.votes.add(r.vote)
	if r.vote.userID != "" {
		p.trace("vote", t.id, r.seq)
	} else {
		p.trace("vote-unknown", t.id, r.seq)
	}
	if r.vote.userID == "" && len(r.jpeg) > 0 {
		p.keepUnknown(r.jpeg)
	}
	p.decide(t, t.lastSeen)
}

// decide records attendance once K of the last M encodings agree and the
// face has shown it is alive, and announces it after the commit.
func (p *Pipeline) decide(t *track, now time.Time) {
	if t.decided {
		return
	}
	userID, dist, ok := t.votes.winner(p.cfg.ConfirmK)
	if !ok {
		if t.votes.unknown(p.cfg.ConfirmK) && !t.unknownAnnounce {
			t.unknownAnnounce = true
			p.count(func(s *CameraStatus) { s.Unknown++ })
			p.publish(models.Feedback{Kind: models.FeedbackUnknown, Message: "Face not recognised. Please see an administrator."})
		}
		return
	}
	proof := LivenessOff
	if p.cfg.Liveness {
		proof = t.live.proof()
		if proof == "" {
			if t.recognisedAt.IsZero() {
				t.recognisedAt = now
			}
			// Most people show passive evidence within a second; ask the
			// rest for what a photo cannot do.
			if !t.prompted && now.Sub(t.recognisedAt) >= livenessPromptAfter {
				t.prompted = true
				p.publish(models.Feedback{Kind: models.FeedbackLookAtCamera, Message: "Please blink, or turn your head a little."})
			}
			if !t.livenessFailed && now.Sub(t.recognisedAt) > p.cfg.LivenessTimeout {
				t.livenessFailed = true
				p.count(func(s *CameraStatus) { s.LivenessFailed++ })
				p.logger.Info("liveness not shown", "track", t.id, "expression_change", t.live.maxRange)
				p.publish(models.Feedback{Kind: models.FeedbackLivenessFailed, Message: "Liveness check failed. Please blink or move naturally; photos are not accepted."})
			}
			return
		}
	}
	if last, ok := p.recentEvent(userID, now); ok {
		t.decided = true
		p.publish(models.Feedback{Kind: models.FeedbackRecognised, UserID: userID, EventID: last.id,
			Message: "Already recorded.", Time: p.Now()})
		return
	}
	user, err := p.store.GetUser(p.ctx, userID)
	if err != nil || user.Status != models.UserActive {
		if models.ErrorCode(err) == models.EINTERNAL {
			p.logRateLimited("user", "look up user", "user", userID, "err", err)
			return // try again with the next encoding
		}
		t.decided = true
		p.publish(models.Feedback{Kind: models.FeedbackUnknown, Message: "Face not recognised. Please see an administrator."})
		return
	}
	ev := &models.AttendanceEvent{
		ID:        uuid.NewString(),
		UserID:    userID,
		Time:      p.Now(),
		KioskID:   p.cfg.KioskID,
		Distance:  dist,
		Liveness:  proof,
		SyncState: models.SyncPending,
	}
	p.trace("commit", t.id, -1)
	if err := p.store.RecordAttendance(p.ctx, ev); err != nil {
		// Not committed: say nothing, try again with the next encoding.
		p.logRateLimited("record", "record attendance", "user", userID, "err", err)
		return
	}
	t.decided = true
	p.trace("committed", t.id, -1)
	p.lastEvents[userID] = lastEvent{at: now, id: ev.ID}
	p.pruneEvents(now)
	p.count(func(s *CameraStatus) { s.Events++ })
	p.logger.Info("attendance recorded", "user", userID, "event", ev.ID, "distance", dist, "liveness", proof)
	if p.onRecord != nil {
		p.onRecord(ev, t, now)
	}
	msg := fmt.Sprintf("Welcome, %s - %s", user.FullName, ev.Time.Local().Format("15:04"))
	if pt := ev.PunctualityText(); pt != "" { // the recorder stamps central's class session
		msg += " - " + pt
	}
	p.publish(models.Feedback{Kind: models.FeedbackRecognised, UserID: userID, Name: user.FullName, EventID: ev.ID,
		Time: ev.Time, Message: msg})
}

// recentEvent returns the user's last event when it is within the cooldown,
// asking the store after a restart.
func (p *Pipeline) recentEvent(userID string, now time.Time) (lastEvent, bool) {
	if p.cfg.Cooldown <= 0 {
		return lastEvent{}, false
	}
	if last, ok := p.lastEvents[userID]; ok {
		return last, now.Sub(last.at) < p.cfg.Cooldown
	}
	if la, ok := p.store.(lastAttendancer); ok {
		if ev, err := la.LastAttendance(p.ctx, userID); err == nil && p.Now().Sub(ev.Time) < p.cfg.Cooldown {
			return lastEvent{at: now.Add(-p.Now().Sub(ev.Time)), id: ev.ID}, true
		}
	}
	return lastEvent{}, false
}

// pruneEvents bounds the cooldown map.
func (p *Pipeline) pruneEvents(now time.Time) {
	if len(p.lastEvents) < 4096 {
		return
	}
	for id, e := range p.lastEvents {
		if now.Sub(e.at) >= p.cfg.Cooldown {
			delete(p.lastEvents, id)
		}
	}
}

func (p *Pipeline) keepUnknown(jpeg []byte) {
	name := filepath.Join(p.cfg.UnknownDir, p.Now().UTC().Format("20060102T150405")+"-"+uuid.NewString()[:8]+".jpg")
	if err := os.MkdirAll(p.cfg.UnknownDir, 0o700); err != nil {
		p.logRateLimited("unknown", "keep unknown face", "err", err)
		return
	}
	if err := os.WriteFile(name, jpeg, 0o600); err != nil {
		p.logRateLimited("unknown", "keep unknown face", "err", err)
	}
}

func (p *Pipeline) logRateLimited(key, msg string, args ...any) {
	now := time.Now()
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if last, ok := p.errLogged[key]; ok && now.Sub(last) < errLogEvery {
		return
	}
	p.errLogged[key] = now
	p.logger.Warn(msg, args...)
}

// updatePreview keeps a JPEG of the frame with the faces drawn, at most
// once per PreviewInterval.
func (p *Pipeline) updatePreview(m gocv.Mat, g *Gate) {
	now := time.Now()
	if now.Sub(p.previewLast) < p.cfg.PreviewInterval {
		return
	}
	p.previewLast = now
	for _, d := range g.Faces {
		c := color.RGBA{R: 255, G: 160, B: 0}
		if g.Passed() {
			c = color.RGBA{G: 220, B: 0}
		}
		gocv.Rectangle(&m, d.Box, c, 2)
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, p.cfg.PreviewQuality})
	if err != nil {
		return
	}
	b := append([]byte(nil), buf.GetBytes()...)
	buf.Close()
	p.previewMu.Lock()
	p.preview = b
	p.previewSeq++
	close(p.previewNext)
	p.previewNext = make(chan struct{})
	p.previewMu.Unlock()
}

// LatestJPEG returns the newest preview frame (JPEG, faces boxed) and its
// sequence number; nil and 0 before the first.
func (p *Pipeline) LatestJPEG() ([]byte, uint64) {
	p.previewMu.Lock()
	defer p.previewMu.Unlock()
	return p.preview, p.previewSeq
}

// NextJPEG waits for a preview newer than after and returns it. It returns
// EUNAVAILABLE when the pipeline has stopped.
func (p *Pipeline) NextJPEG(ctx context.Context, after uint64) ([]byte, uint64, error) {
	for {
		p.previewMu.Lock()
		b, seq, next := p.preview, p.previewSeq, p.previewNext
		p.previewMu.Unlock()
		if seq > after {
			return b, seq, nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-p.done:
			return nil, 0, models.Errorf(models.EUNAVAILABLE, "The camera is not running.")
		}
	}
}

// CaptureFace waits for the next frame with exactly one face that passes
// the gates (liveness is not required: an operator is present) and returns
// that face, with its descriptor, and the frame as JPEG. Errors:
// EUNAVAILABLE (not running), ENOFACE (the encoder did not confirm the
// face), ctx's error.
func (p *Pipeline) CaptureFace(ctx context.Context) (*models.Face, []byte, error) {
	if !p.started {
		return nil, nil, models.Errorf(models.EUNAVAILABLE, "The camera is not running.")
	}
	w := &captureWaiter{ch: make(chan capturedFace, 1)}
	p.waitMu.Lock()
	select {
	case <-p.done:
		p.waitMu.Unlock()
		return nil, nil, models.Errorf(models.EUNAVAILABLE, "The camera is not running.")
	default:
	}
	p.waiters[w] = struct{}{}
	p.waitMu.Unlock()
	defer func() {
		p.waitMu.Lock()
		delete(p.waiters, w)
		p.waitMu.Unlock()
		select {
		case c := <-w.ch:
			c.crop.Close()
		default:
		}
	}()
	var c capturedFace
	select {
	case c = <-w.ch:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-p.done:
		return nil, nil, models.Errorf(models.EUNAVAILABLE, "The camera is not running.")
	}
	defer c.crop.Close()
	faces, err := p.enc.EncodeMat(ctx, c.crop)
	if err != nil {
		return nil, nil, err
	}
	f := bestFace(faces, c.expect)
	if f == nil {
		return nil, nil, models.Errorf(models.ENOFACE, "No face could be encoded. Look at the camera and try again.")
	}
	out := *f
	tr := func(q image.Point) image.Point {
		return image.Pt(c.origin.X+int(float64(q.X)/c.scale), c.origin.Y+int(float64(q.Y)/c.scale))
	}
	out.Box = image.Rectangle{Min: tr(f.Box.Min), Max: tr(f.Box.Max)}
	out.Landmarks = make([]image.Point, len(f.Landmarks))
	for i, q := range f.Landmarks {
		out.Landmarks[i] = tr(q)
	}
	return &out, c.jpeg, nil
}

// serveCapture hands a gated frame to CaptureFace callers.
func (p *Pipeline) serveCapture(m gocv.Mat, box image.Rectangle, faceLuma float64) {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	if len(p.waiters) == 0 {
		return
	}
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, m)
	if err != nil {
		return
	}
	jpeg := append([]byte(nil), buf.GetBytes()...)
	buf.Close()
	for w := range p.waiters {
		crop, origin, scale, expect := p.cropFor(m, box, faceLuma)
		select {
		case w.ch <- capturedFace{crop: crop, origin: origin, scale: scale, expect: expect, jpeg: jpeg}:
		default:
			crop.Close()
		}
		delete(p.waiters, w)
	}
}

func (p *Pipeline) releaseWaiters() {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	for w := range p.waiters {
		delete(p.waiters, w)
	}
}
