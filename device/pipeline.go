package device

import (
	"context"
	"errors"
	"image"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/internal/ratelog"
	"github.com/kioskd/kioskd/models"
)

// A frame's route: source_loop.go reads it from the source; processLoop
// below hands it to the gates (gate.go) and then to the decider
// (decider.go), which may send a crop to the encoder (encode.go) and, once
// the votes, liveness and cooldown agree, commits the attendance
// (record.go). preview.go and enrol.go take side copies of gated frames;
// qr.go reads ID cards while the decider wants an ID (idface.go).

// FrameGater runs the per-frame gates; *Gater implements it. Probe is the
// idle heartbeat's quick look for any face (idle.go). MeasurePixels says
// whether the next Checks measure how the face's pixels moved
// (FaceQuality.Planarity): only tracks still gathering liveness evidence
// need it.
type FrameGater interface {
	Check(frame gocv.Mat, at time.Time) (Gate, error)
	Probe(frame gocv.Mat) (found bool, err error)
	MeasurePixels(on bool)
}

// FaceEncoder computes descriptors; *recognizer.Encoder implements it.
// EncodeFace describes a face whose box the gates already found with the
// same HOG detector (no second scan); EncodeMat detects and describes every
// face, for enrolment captures.
type FaceEncoder interface {
	EncodeMat(ctx context.Context, m gocv.Mat) ([]models.Face, error)
	EncodeFace(ctx context.Context, m gocv.Mat, box image.Rectangle) (*models.Face, error)
}

// AttendanceRecorder commits attendance and looks users and their last
// event up (so the cooldown survives a restart); *bolt.DB (models/bolt)
// implements it.
type AttendanceRecorder interface {
	RecordAttendance(ctx context.Context, ev *models.AttendanceEvent) error
	GetUser(ctx context.Context, id string) (*models.User, error)
	LastAttendance(ctx context.Context, userID string) (*models.AttendanceEvent, error)
}

// errLogEvery spaces repeated error logs of one kind.
const errLogEvery = 10 * time.Second

// Pipeline runs the kiosk: frames in, gated, tracked, identified, checked for
// liveness, recorded, announced. Create it with NewPipeline, then Start; Close
// stops it.
type Pipeline struct {
	cfg     Config
	gater   FrameGater
	enc     FaceEncoder
	matcher models.Matcher
	store   AttendanceRecorder
	bus     *Bus
	say     *announcer
	logger  *slog.Logger

	// Now returns the current time; tests replace it before Start.
	Now func() time.Time
	// OpenSource opens the frame source; tests replace it before Start.
	OpenSource func(cfg *Config) (FrameSource, error)

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
	previewLast time.Time

	waitMu  sync.Mutex
	waiters map[*captureWaiter]struct{}

	// stateMu guards the decider: the processing goroutine holds it after
	// gating a frame, the encoding goroutine while applying a live result.
	// Gating itself runs unlocked.
	stateMu sync.Mutex
	dec     *decider

	// idle and change decide which frames the gates see while nobody is
	// in view; sawFace: the last gated frame had a face; health tells a
	// black or frozen camera. All belong to the processing goroutine.
	idle    idleGate
	change  *changeMeter
	sawFace bool
	health  cameraHealth

	warn *ratelog.Logger

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

	// users and verifier serve modes id_face and auto (mode.go); qr reads
	// ID cards (qr.go), on the processing goroutine only.
	users    UserFinder
	verifier IDVerifier
	qr       qrReader

	// taken is when the gates last took a frame (unix ns), for LastTaken.
	taken atomic.Int64
}

// trace reports a step to onTrace.
func (p *Pipeline) trace(step string, trackID uint64, seq int) {
	if p.onTrace != nil {
		p.onTrace(step, trackID, seq, time.Now())
	}
}

// NewPipeline returns a pipeline gating frames with gater (which it does
// not own). It does no I/O: Start opens the source. logger may be nil.
func NewPipeline(cfg Config, gater FrameGater, enc FaceEncoder, matcher models.Matcher, store AttendanceRecorder, bus *Bus, logger *slog.Logger) *Pipeline {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if bus == nil {
		bus = NewBus()
	}
	p := &Pipeline{
		cfg: cfg, gater: gater, enc: enc, matcher: matcher, store: store, bus: bus, logger: logger,
		Now:        time.Now,
		OpenSource: OpenSource,
		waiters:    map[*captureWaiter]struct{}{},
		warn:       ratelog.New(logger, errLogEvery, nil),
		done:       make(chan struct{}),
		status:     CameraStatus{State: CameraStarting, Source: redactURL(cfg.Source)},
	}
	p.say = &announcer{bus: bus, now: func() time.Time { return p.Now() }}
	return p
}

// Bus returns the feedback bus.
func (p *Pipeline) Bus() *Bus { return p.bus }

// Start validates the configuration and starts reading frames. A source
// that cannot be opened is not an error: the pipeline keeps retrying and
// reports it in Status.
func (p *Pipeline) Start(ctx context.Context) error {
	if p.started {
		return errors.New("pipeline already started")
	}
	if err := p.cfg.Validate(); err != nil {
		return err
	}
	if p.gater == nil || p.enc == nil || p.matcher == nil || p.store == nil {
		return errors.New("pipeline needs a gater, an encoder, a matcher and a store")
	}
	if p.cfg.Mode != ModeFace && (p.users == nil || p.verifier == nil) {
		return errors.New("pipeline: mode " + string(p.cfg.Mode) + " needs UseIDs before Start")
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.dec = &decider{
		cfg: &p.cfg, store: p.store, say: p.say, logger: p.logger, warn: p.warn.Warn,
		ctx: p.ctx, now: p.Now, count: p.count, onTrace: p.onTrace, onRecord: p.onRecord,
		lastEvents: map[string]lastEvent{}, verify: p.verifyClaim,
	}
	p.idle = idleGate{threshold: p.cfg.IdleChange, heartbeat: p.cfg.IdleHeartbeat}
	p.change = newChangeMeter()
	p.health = cameraHealth{after: p.cfg.CameraCheck}
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

// Close stops the pipeline, waits for its goroutines and frees every Mat.
// It is safe to call twice.
func (p *Pipeline) Close() error {
	if !p.started || p.closed {
		return nil
	}
	p.closed = true
	p.cancel()
	p.wg.Wait()
	p.setState(CameraStopped, "")
	return nil
}

// Done is closed when a file or folder source has been played to its end
// and every frame processed (never for cameras, streams and looping files),
// or after Close.
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
		p.status.Message = cameraMessages[st]
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

// processLoop takes frames from captureLoop (source_loop.go) one at a time.
func (p *Pipeline) processLoop() {
	defer close(p.done)
	defer p.releaseWaiters()
	defer p.qr.close()
	defer p.change.Close()
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

// process gates one frame and moves the decision on. A frame the idle gate
// holds back goes nowhere, not even to the preview: the scene has not
// changed, and the preview refreshes with each heartbeat.
func (p *Pipeline) process(f frame) {
	diff := p.change.measure(f.mat)
	p.checkCamera(f)
	p.stateMu.Lock()
	busy := p.sawFace || p.dec.track != nil
	// The face's pixel motion is measured only while a track gathers
	// liveness evidence (docs/benchmarks.md).
	pixels := p.dec.wantsPixels(f.at)
	p.stateMu.Unlock()
	switch p.admit(f, diff, busy) {
	case admitNone:
		p.count(func(s *CameraStatus) { s.Idle++ })
		return
	case admitProbe:
		p.count(func(s *CameraStatus) { s.Idle++ })
		p.updatePreview(f.mat, &Gate{Problem: models.FeedbackIdle})
		return
	}
	p.trace("gate", 0, f.seq)
	p.gater.MeasurePixels(pixels)
	g, err := p.gater.Check(f.mat, f.at)
	p.trace("gated-frame", 0, f.seq)
	if err != nil {
		p.warn.Warn("gate", "gate frame", "err", err)
		return
	}
	p.sawFace = len(g.Faces) > 0
	p.stateMu.Lock()
	p.advance(f, &g)
	wantID := p.dec.wantsID()
	p.stateMu.Unlock()
	if wantID {
		p.scanID(f)
	}
	p.updatePreview(f.mat, &g)
}

// advance hands one gated frame to the decider and, when it passed, to
// enrolment captures and the encoder; the caller holds stateMu.
func (p *Pipeline) advance(f frame, g *Gate) {
	p.count(func(s *CameraStatus) { s.Processed++ })
	if t := p.dec.gated(f.at, f.captured, f.seq, g); t != nil {
		p.serveCapture(f.mat, t.box, g.Face.Yaw, g.Face.Roll, t.luma)
		if p.dec.encodeDue(t, f.at) {
			if p.queueEncode(f, t) {
				t.lastEncode = f.at
				p.trace("queued", t.id, f.seq)
			} else {
				p.trace("busy", t.id, f.seq)
			}
		}
		p.dec.decide(t, f.at)
	}
	if p.onGate != nil {
		p.onGate(f.at, g, p.dec.track)
	}
}
