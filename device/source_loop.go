package device

import (
	"errors"
	"io"
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/internal/backoff"
	"github.com/kioskd/kioskd/models"
)

// frame is one frame on its way from the source to the gates.
type frame struct {
	mat      gocv.Mat
	at       time.Time // frame clock: media time for replays, wall clock otherwise
	captured time.Time // wall clock when read
	live     bool      // from a live or paced source: never wait for the encoder
	seq      int       // frame number since the source opened
}

// captureLoop opens the source, reopening it with capped, jittered backoff
// when it fails, and reads frames as fast as the source gives them.
func (p *Pipeline) captureLoop() {
	defer close(p.frames)
	retry := backoff.Backoff{Min: p.cfg.ReopenMin, Max: p.cfg.ReopenMax}
	first := true
	for p.ctx.Err() == nil {
		if !first {
			p.count(func(s *CameraStatus) { s.Reopens++ })
		}
		first = false
		src, err := p.OpenSource(&p.cfg)
		if err != nil {
			p.sourceFailed(err)
			if !p.sleep(retry.Next()) {
				return
			}
			continue
		}
		p.setState(CameraRunning, "")
		p.logger.Info("camera source open", "source", redactURL(p.cfg.Source), "live", src.Live(), "fps", src.FPS())
		n, err := p.readFrames(src)
		src.Close()
		if n > 0 {
			retry.Reset()
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
			if !p.sleep(retry.Next()) {
				return
			}
		}
	}
}

func (p *Pipeline) sourceFailed(err error) {
	p.setState(CameraReconnecting, err.Error())
	p.warn.Warn("source", "camera source failed; reopening", "err", err)
	p.say.publish(models.Feedback{Kind: models.FeedbackCameraLost, Message: "Camera unavailable. Please wait or call a technician."})
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
