package device

import (
	"image"
	"math"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
)

// qrInterval spaces QR scans of the frames while an ID is wanted: a card
// held up stays in view for a second or more, and a scan of a 640x480 grey
// frame costs a few ms.
const qrInterval = 250 * time.Millisecond

// qrRetry is how long an ID read is not claimed again, so a card held up
// is claimed (or refused) once, not four times a second.
const qrRetry = 3 * time.Second

// qrReader reads the QR code of an ID card in a frame: OpenCV's detector
// finds it, gozxing decodes the crop around it (Debian's OpenCV is built
// without the quirc decoder). Used on the processing goroutine only.
type qrReader struct {
	det      gocv.QRCodeDetector
	open     bool
	grey     gocv.Mat
	points   gocv.Mat
	dec      gozxing.Reader
	last     time.Time // frame time of the last scan
	lastText string    // last ID read, and when
	lastAt   time.Time
}

// read returns the text of a QR code in frame, "" when there is none.
func (q *qrReader) read(frame gocv.Mat) string {
	if !q.open {
		q.det, q.grey, q.points = gocv.NewQRCodeDetector(), gocv.NewMat(), gocv.NewMat()
		q.dec, q.open = zxqr.NewQRCodeReader(), true
	}
	src := frame
	if frame.Channels() == 3 {
		gocv.CvtColor(frame, &q.grey, gocv.ColorBGRToGray)
		src = q.grey
	}
	if !q.det.Detect(src, &q.points) {
		return ""
	}
	area, ok := qrArea(q.points, src.Cols(), src.Rows())
	if !ok {
		return ""
	}
	roi := src.Region(area)
	crop := roi.Clone() // ToImage needs continuous pixels
	roi.Close()
	defer crop.Close()
	img, err := crop.ToImage()
	if err != nil {
		return ""
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return ""
	}
	res, err := q.dec.Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		return ""
	}
	return res.GetText()
}

// qrArea is the box around the detector's four corners (a CV_32FC2 Mat),
// with a quarter of its size added on each side for the quiet zone the
// decoder needs, within a w x h frame.
func qrArea(points gocv.Mat, w, h int) (image.Rectangle, bool) {
	if points.Empty() || points.Total() < 4 || points.Type() != gocv.MatTypeCV32FC2 {
		return image.Rectangle{}, false
	}
	xy, err := points.DataPtrFloat32()
	if err != nil || len(xy) < 8 {
		return image.Rectangle{}, false
	}
	x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for i := 0; i+1 < 8; i += 2 {
		x, y := float64(xy[i]), float64(xy[i+1])
		x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
	}
	mx, my := (x1-x0)/4, (y1-y0)/4
	r := image.Rect(int(x0-mx), int(y0-my), int(x1+mx)+1, int(y1+my)+1).Intersect(image.Rect(0, 0, w, h))
	return r, r.Dx() >= 21 && r.Dy() >= 21 // a QR code is at least 21 modules
}

func (q *qrReader) close() {
	if q.open {
		q.det.Close()
		q.grey.Close()
		q.points.Close()
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
	if text == "" || (text == q.lastText && f.at.Sub(q.lastAt) < qrRetry) {
		return
	}
	q.lastText, q.lastAt = text, f.at
	if _, err := p.claim(p.ctx, text, "qr"); err != nil {
		if c := models.ErrorCode(err); c != models.ENOTFOUND && c != models.EINVALID {
			p.warn.Warn("qr", "claim id from qr code", "err", err)
		}
	}
}

// stranger reports whether a face 1:N could not name (m) matches nobody
// even 1:1, in the modes that ask for IDs: no ID can make it anyone.
func (p *Pipeline) stranger(m models.Match) bool {
	return (p.cfg.Mode == ModeIDFace || p.cfg.Mode == ModeAuto) && !p.verifier.Verifiable(m)
}

// verifyClaim is the decider's 1:1 check.
func (p *Pipeline) verifyClaim(userID string, d *models.Descriptor) verdict {
	match, dist, _, enrolled := p.verifier.VerifyUser(userID, d)
	return verdict{match: match, enrolled: enrolled, distance: dist}
}
