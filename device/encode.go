package device

import (
	"image"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"gocv.io/x/gocv"
)

// encodeMargin is how much of the face box's width is added on each side of
// the crop handed to the encoder: room for the aligned chip's padding, and
// for enrolment captures, which detect the face again.
const encodeMargin = 0.5

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
	f, err := p.enc.EncodeFace(p.ctx, j.crop, j.expect)
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
	r.vote = vote{distance: m.Distance, desc: &f.Descriptor}
	if m.Known {
		r.vote.userID = m.UserID
	} else {
		r.vote.stranger = p.stranger(m)
	}
	if !m.Known && p.cfg.UnknownDir != "" {
		if buf, err := gocv.IMEncode(gocv.JPEGFileExt, j.crop); err == nil {
			r.jpeg = append([]byte(nil), buf.GetBytes()...)
			buf.Close()
		}
	}
	return r
}

// applyResult adds an encoding's vote to its track, if that is still the
// current one, and decides; the caller holds stateMu.
func (p *Pipeline) applyResult(r encodeResult) {
	if r.err != nil {
		p.warn.Warn("encode", "encode face", "err", r.err)
		return
	}
	t := p.dec.current(r.trackID)
	if t == nil || !r.found {
		return
	}
	p.dec.vote(t, r.vote, r.seq)
	if r.vote.userID == "" && len(r.jpeg) > 0 {
		p.keepUnknown(r.jpeg)
	}
	p.dec.decide(t, t.lastSeen)
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

// keepUnknown saves the crop of an unknown face in UnknownDir.
func (p *Pipeline) keepUnknown(jpeg []byte) {
	name := filepath.Join(p.cfg.UnknownDir, p.Now().UTC().Format("20060102T150405")+"-"+uuid.NewString()[:8]+".jpg")
	if err := os.MkdirAll(p.cfg.UnknownDir, 0o700); err != nil {
		p.warn.Warn("unknown", "keep unknown face", "err", err)
		return
	}
	if err := os.WriteFile(name, jpeg, 0o600); err != nil {
		p.warn.Warn("unknown", "keep unknown face", "err", err)
	}
}
