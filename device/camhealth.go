package device

import (
	"time"

	"gocv.io/x/gocv"
)

// Thresholds of a camera that delivers nothing usable, on the 80x60 grey
// copy the change detector already takes (idle.go): black is a mean luma
// under blackMean with a standard deviation under blackStd (a capped lens
// or a dead sensor; a dark room with a person still varies more); frozen
// is a frame identical to the previous one, which a live sensor's noise
// never gives for seconds.
const (
	blackMean = 12.0
	blackStd  = 4.0
)

// Camera problems, with what the technician should check.
const (
	msgBlack  = "The camera delivers black frames: check the lens cover, the lighting and the cable."
	msgFrozen = "The camera delivers the same frame over and over: unplug and replug it, check its driver (dmesg) and the USB port."
)

// cameraHealth tells a black or frozen camera from frame measures: a
// problem holds once every frame for `after` showed it, and clears with
// the first frame that does not. Pure logic, driven with made-up measures
// in tests.
type cameraHealth struct {
	after       time.Duration // 0: never report
	blackSince  time.Time
	frozenSince time.Time
}

// observe takes one frame's measures (mean and standard deviation of its
// grey copy, and whether the copy equals the previous frame's) and returns
// the camera's problem: CameraBlack, CameraFrozen or "" (none).
func (h *cameraHealth) observe(now time.Time, mean, std float64, same bool) CameraState {
	if h.after <= 0 {
		return ""
	}
	since := func(t *time.Time, cond bool) bool {
		if !cond {
			*t = time.Time{}
			return false
		}
		if t.IsZero() || now.Before(*t) {
			*t = now
		}
		return now.Sub(*t) >= h.after
	}
	black := since(&h.blackSince, mean < blackMean && std < blackStd)
	frozen := since(&h.frozenSince, same)
	switch {
	case black:
		return CameraBlack
	case frozen:
		return CameraFrozen
	}
	return ""
}

var cameraMessages = map[CameraState]string{CameraBlack: msgBlack, CameraFrozen: msgFrozen}

// checkCamera judges the frame the change meter just measured and moves the
// camera's state to or from black or frozen (only from running: a source
// failing or ending says more); it runs on the processing goroutine.
func (p *Pipeline) checkCamera(f frame) {
	mean, std, same := p.change.stats(f.mat)
	problem := p.health.observe(f.at, mean, std, same)
	p.mu.Lock()
	cur := p.status.State
	cleared := problem == "" && (cur == CameraBlack || cur == CameraFrozen)
	if cleared || problem != "" && problem != cur && (cur == CameraRunning || cur == CameraBlack || cur == CameraFrozen) {
		next := problem
		if cleared {
			next = CameraRunning
		}
		p.status.State, p.status.Since, p.status.Message = next, p.Now(), cameraMessages[problem]
	}
	p.mu.Unlock()
	switch {
	case problem != "":
		p.warn.Warn("camera-"+string(problem), cameraMessages[problem], "source", redactURL(p.cfg.Source))
	case cleared:
		p.logger.Info("camera frames usable again", "source", redactURL(p.cfg.Source))
	}
}

// CheckFrames judges at least three frames read in a row from one source
// (kioskd doctor): CameraBlack or CameraFrozen, with what to check, when
// every one is black or equal to the one before; "" otherwise.
func CheckFrames(frames []gocv.Mat) (CameraState, string) {
	if len(frames) < 3 {
		return "", ""
	}
	c := newChangeMeter()
	defer c.Close()
	// One frame a nanosecond: a problem shown by every frame holds.
	h := cameraHealth{after: time.Duration(len(frames) - 2)}
	t0 := time.Unix(0, 0)
	var st CameraState
	for i, m := range frames {
		c.measure(m)
		mean, std, same := c.stats(m)
		st = h.observe(t0.Add(time.Duration(i)), mean, std, same)
	}
	return st, cameraMessages[st]
}
