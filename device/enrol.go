package device

import (
	"context"
	"image"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
)

// captureWaiter is one capture waiting for a gated frame.
type captureWaiter struct {
	ch chan capturedFace
}

// capturedFace is a crop of a gated frame for an enrolment capture.
type capturedFace struct {
	crop   gocv.Mat
	origin image.Point
	scale  float64
	expect image.Rectangle
	jpeg   []byte
	// yaw and roll are the gates' pose of the face (landmarks.go).
	yaw, roll float64
}

// captureSample is one enrolment capture: the face, the frame as JPEG and
// the face's pose.
type captureSample struct {
	face      *models.Face
	jpeg      []byte
	yaw, roll float64
}

// captureOne waits for the next frame with exactly one face that passes
// the gates (liveness is not required: an operator is present) and returns
// that face, with its descriptor and pose, and the frame as JPEG. Errors:
// EUNAVAILABLE (not running), ENOFACE (the encoder did not confirm the
// face), ctx's error.
func (p *Pipeline) captureOne(ctx context.Context) (*captureSample, error) {
	if !p.started {
		return nil, models.Errorf(models.EUNAVAILABLE, "The camera is not running.")
	}
	w := &captureWaiter{ch: make(chan capturedFace, 1)}
	p.waitMu.Lock()
	select {
	case <-p.done:
		p.waitMu.Unlock()
		return nil, models.Errorf(models.EUNAVAILABLE, "The camera is not running.")
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
		return nil, ctx.Err()
	case <-p.done:
		return nil, models.Errorf(models.EUNAVAILABLE, "The camera is not running.")
	}
	defer c.crop.Close()
	faces, err := p.enc.EncodeMat(ctx, c.crop)
	if err != nil {
		return nil, err
	}
	f := bestFace(faces, c.expect)
	if f == nil {
		return nil, models.Errorf(models.ENOFACE, "No face could be encoded. Look at the camera and try again.")
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
	return &captureSample{face: &out, jpeg: c.jpeg, yaw: c.yaw, roll: c.roll}, nil
}

// serveCapture hands a gated frame, its face at box with the pose yaw and
// roll and the face's luma, to waiting captures.
func (p *Pipeline) serveCapture(m gocv.Mat, box image.Rectangle, yaw, roll, faceLuma float64) {
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
		case w.ch <- capturedFace{crop: crop, origin: origin, scale: scale, expect: expect, jpeg: jpeg, yaw: yaw, roll: roll}:
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
