package device

import (
	"time"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
)

// qrInterval spaces QR scans of the frames while an ID is wanted: a card
// held up stays in view for a second or more, and a scan of a 640x480 grey
// frame costs a few ms.
const qrInterval = 250 * time.Millisecond

// qrRetry is how long an ID read and refused is not tried again, so a card
// held up is refused once, not four times a second.
const qrRetry = 3 * time.Second

// qrReader reads the QR code of an ID card in a frame with OpenCV's
// detector; used on the processing goroutine only.
type qrReader struct {
	det       gocv.QRCodeDetector
	open      bool
	grey      gocv.Mat
	points    gocv.Mat
	straight  gocv.Mat
	last      time.Time // frame time of the last scan
	refused   string    // last ID refused, and when
	refusedAt time.Time
}

// read returns the text of a QR code in frame, "" when there is none.
func (q *qrReader) read(frame gocv.Mat) string {
	if !q.open {
		q.det, q.grey, q.points, q.straight = gocv.NewQRCodeDetector(), gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
		q.open = true
	}
	src := frame
	if frame.Channels() == 3 {
		gocv.CvtColor(frame, &q.grey, gocv.ColorBGRToGray)
		src = q.grey
	}
	// Detect first: gocv's decoding call keeps its answer's C string for
	// good, so it runs only when a code is in view.
	if !q.det.Detect(src, &q.points) {
		return ""
	}
	return q.det.DetectAndDecode(src, &q.points, &q.straight)
}

func (q *qrReader) close() {
	if q.open {
		q.det.Close()
		q.grey.Close()
		q.points.Close()
		q.straight.Close()
		q.open = false
	}
}

// scanID looks for an ID card's QR code in f, at most every qrInterval of
// frame time, and claims the ID it holds.
func (p *Pipeline) scanID(f frame) {
	q := &p.qr
	if !q.last.IsZero() && f.at.Sub(q.last) < qrInterval && f.at.After(q.last) {
		return
	}
	q.last = f.at
	text := q.read(f.mat)
	if text == "" || (text == q.refused && f.at.Sub(q.refusedAt) < qrRetry) {
		return
	}
	if _, err := p.claim(p.ctx, text, "qr"); err != nil {
		q.refused, q.refusedAt = text, f.at
		if c := models.ErrorCode(err); c != models.ENOTFOUND && c != models.EINVALID {
			p.warn.Warn("qr", "claim id from qr code", "err", err)
		}
	}
}

// verifyClaim is the decider's 1:1 check.
func (p *Pipeline) verifyClaim(userID string, d *models.Descriptor) verdict {
	match, dist, _, enrolled := p.verifier.VerifyUser(userID, d)
	return verdict{match: match, enrolled: enrolled, distance: dist}
}
