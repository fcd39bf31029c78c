package device

import (
	"bytes"
	"image"
	"time"

	"gocv.io/x/gocv"
)

// thumbW and thumbH are the size of the grey copy the change detector
// compares: small enough to cost well under a millisecond a frame, large
// enough that a face of MinFaceSize (90 px at 640) covers whole cells.
const thumbW, thumbH = 80, 60

// admission is what the idle gate lets a frame through to.
type admission int

const (
	admitNone  admission = iota // held back: the scene has not changed
	admitFull                   // the whole gate: first frame, change, or a face in view
	admitProbe                  // the heartbeat: a quick scan (Gater.Probe) first
)

// idleGate decides which frames the face detector sees: every frame while
// a face is in view or tracked; otherwise only a frame that differs from the
// one last given to the detector, plus one per heartbeat so a face that
// arrived without visible change (a slow approach, a motionless person) is
// still found within a heartbeat. It is pure logic, driven with made-up
// differences in tests.
type idleGate struct {
	threshold float64       // mean absolute grey difference (0-255) that counts as change
	heartbeat time.Duration // 0: every frame goes to the detector
	last      time.Time     // frame time of the last frame admitted
}

// admit says whether the frame at now, differing by diff from the last
// admitted one, goes to the detector; busy means a face is in view or
// tracked. When it lets the frame through, the caller makes this frame the
// reference.
func (g *idleGate) admit(now time.Time, diff float64, busy bool) admission {
	switch {
	case g.heartbeat <= 0 || busy || g.last.IsZero() || diff >= g.threshold || now.Before(g.last):
		g.last = now
		return admitFull
	case now.Sub(g.last) >= g.heartbeat:
		g.last = now
		return admitProbe
	}
	return admitNone
}

// changeMeter measures how much a frame differs from the reference frame
// (the one last given to the detector) on small grey copies. It owns its
// Mats and is used by the processing goroutine only.
type changeMeter struct {
	small, grey, ref, diff gocv.Mat
	mean, std              gocv.Mat // MeanStdDev's outputs
	prev                   []byte   // the previous frame's pixels, whole
	prevRows, prevCols     int
	haveRef                bool
}

func newChangeMeter() *changeMeter {
	return &changeMeter{small: gocv.NewMat(), grey: gocv.NewMat(), ref: gocv.NewMat(), diff: gocv.NewMat(),
		mean: gocv.NewMat(), std: gocv.NewMat()}
}

// measure returns the mean absolute difference (0-255) between m's small
// grey copy and the reference; 255 when there is no reference yet.
func (c *changeMeter) measure(m gocv.Mat) float64 {
	gocv.Resize(m, &c.small, image.Pt(thumbW, thumbH), 0, 0, gocv.InterpolationArea)
	if c.small.Channels() == 3 {
		gocv.CvtColor(c.small, &c.grey, gocv.ColorBGRToGray)
	} else {
		c.small.CopyTo(&c.grey)
	}
	if !c.haveRef {
		return 255
	}
	gocv.AbsDiff(c.grey, c.ref, &c.diff)
	return c.diff.Mean().Val1
}

// stats returns the mean and standard deviation of the small grey copy of
// m, the frame last measured, and whether m equals the previous frame to
// the last pixel (a live sensor's noise never gives that; the small copy
// could, for a quiet camera); m becomes the previous frame (camhealth.go).
func (c *changeMeter) stats(m gocv.Mat) (mean, std float64, same bool) {
	gocv.MeanStdDev(c.grey, &c.mean, &c.std)
	mean, std = c.mean.GetDoubleAt(0, 0), c.std.GetDoubleAt(0, 0)
	// A byte comparison of the whole frame costs ~0.1 ms at 640x480, a
	// fraction of cv::norm's.
	var px []byte
	if m.IsContinuous() {
		px, _ = m.DataPtrUint8()
	}
	if px == nil {
		px = m.ToBytes()
	}
	same = c.prev != nil && c.prevRows == m.Rows() && c.prevCols == m.Cols() && bytes.Equal(px, c.prev)
	c.prev = append(c.prev[:0], px...)
	c.prevRows, c.prevCols = m.Rows(), m.Cols()
	return mean, std, same
}

// keep makes the frame last measured the reference.
func (c *changeMeter) keep() {
	c.grey.CopyTo(&c.ref)
	c.haveRef = true
}

// Close frees the Mats.
func (c *changeMeter) Close() {
	for _, m := range []*gocv.Mat{&c.small, &c.grey, &c.ref, &c.diff, &c.mean, &c.std} {
		m.Close()
	}
}

// admit says where f, differing by diff from the reference, goes (see
// idleGate; busy: a face is in view or tracked); it runs on the processing
// goroutine. A heartbeat frame goes to the whole gate only when the probe
// finds a face in it; otherwise admit answers admitProbe (idle, but the
// preview may refresh).
func (p *Pipeline) admit(f frame, diff float64, busy bool) admission {
	if p.idle.heartbeat <= 0 {
		return admitFull
	}
	a := p.idle.admit(f.at, diff, busy)
	if a == admitNone {
		return admitNone
	}
	p.change.keep()
	if a == admitProbe && p.cfg.IdleProbeWidth > 0 {
		found, err := p.gater.Probe(f.mat)
		if err != nil {
			p.warn.Warn("gate", "probe frame", "err", err)
		}
		if !found {
			return admitProbe
		}
	}
	return admitFull
}

// Probe reports whether a quick scan of a BGR or grey frame, downscaled to
// IdleProbeWidth, finds any face: the heartbeat's look at a still scene,
// at a fraction of the full scan's cost (faces from about
// 80*width/IdleProbeWidth px are found; smaller ones when they move).
func (g *Gater) Probe(frame gocv.Mat) (bool, error) {
	dets, _, err := g.scan(frame, g.cfg.IdleProbeWidth)
	return len(dets) > 0, err
}
