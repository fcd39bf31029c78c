package device

import (
	"image/color"
	"time"

	"gocv.io/x/gocv"
)

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
	p.previewMu.Unlock()
}

// LatestJPEG returns the newest preview frame (JPEG, faces boxed) and its
// sequence number; nil and 0 before the first.
func (p *Pipeline) LatestJPEG() ([]byte, uint64) {
	p.previewMu.Lock()
	defer p.previewMu.Unlock()
	return p.preview, p.previewSeq
}
