package device

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// Scenario videos are written by the tests with OpenCV's VideoWriter from the
// shared photos: a person is their photo's face region pasted on a plain
// background, so every frame goes through real JPEG/MJPEG coding, real HOG
// detection and real encoding.

const (
	scenW, scenH = 640, 480
	scenFPS      = 15.0
)

// person is a face cut from a photo, scaled so the face is faceW wide.
type person struct {
	img  gocv.Mat // head and shoulders
	face image.Rectangle
}

// mustPerson cuts the face (with margin) out of a shared photo.
func mustPerson(tb testing.TB, rel string, faceW int) *person {
	tb.Helper()
	src := gocv.IMRead(recognizertest.Testdata(tb, rel), gocv.IMReadColor)
	defer src.Close()
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(src, &gray, gocv.ColorBGRToGray)
	// Scan at a size where the face is certainly above 80 px.
	s := 640.0 / float64(src.Cols())
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(gray, &small, image.Point{}, s, s, gocv.InterpolationArea)
	b := mustOneFace(tb, small, rel)
	box := image.Rect(int(float64(b.Min.X)/s), int(float64(b.Min.Y)/s), int(float64(b.Max.X)/s), int(float64(b.Max.Y)/s))
	m := box.Dx() * 6 / 10
	area := image.Rect(box.Min.X-m, box.Min.Y-m, box.Max.X+m, box.Max.Y+m*2).Intersect(image.Rect(0, 0, src.Cols(), src.Rows()))
	roi := src.Region(area)
	defer roi.Close()
	k := float64(faceW) / float64(box.Dx())
	out := gocv.NewMat()
	gocv.Resize(roi, &out, image.Point{}, k, k, gocv.InterpolationArea)
	face := box.Sub(area.Min)
	face = image.Rect(int(float64(face.Min.X)*k), int(float64(face.Min.Y)*k), int(float64(face.Max.X)*k), int(float64(face.Max.Y)*k))
	p := &person{img: out, face: face}
	tb.Cleanup(func() { p.img.Close() })
	return p
}

// mustOneFace returns the box of the one face HOG finds in gray; what
// names the image in the failure.
func mustOneFace(tb testing.TB, gray gocv.Mat, what string) image.Rectangle {
	tb.Helper()
	ds := mustDetect(tb, gray)
	if len(ds) != 1 {
		tb.Fatalf("%s: want one face, got %d", what, len(ds))
	}
	return ds[0].Box
}

// background returns a plain, slightly textured frame (an office wall).
func background() gocv.Mat {
	bg := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(150, 160, 170, 0), scenH, scenW, gocv.MatTypeCV8UC3)
	gocv.Rectangle(&bg, image.Rect(0, 360, scenW, scenH), gocvColor(90, 80, 70), -1)
	return bg
}

// paste draws p on dst with its face centred at (cx, cy), clipped to dst.
func paste(dst *gocv.Mat, p *person, cx, cy int) {
	fc := image.Pt((p.face.Min.X+p.face.Max.X)/2, (p.face.Min.Y+p.face.Max.Y)/2)
	at := image.Pt(cx-fc.X, cy-fc.Y)
	r := image.Rect(at.X, at.Y, at.X+p.img.Cols(), at.Y+p.img.Rows())
	clip := r.Intersect(image.Rect(0, 0, dst.Cols(), dst.Rows()))
	if clip.Empty() {
		return
	}
	src := p.img.Region(clip.Sub(at))
	d := dst.Region(clip)
	src.CopyTo(&d)
	src.Close()
	d.Close()
}

// mustOnePersonFrame returns a kiosk frame with one person (Obama's photo,
// face 160 px) at its centre, freed when the test ends.
func mustOnePersonFrame(tb testing.TB) gocv.Mat {
	tb.Helper()
	f := background()
	tb.Cleanup(func() { f.Close() })
	paste(&f, mustPerson(tb, "people/obama/1.jpg", 160), scenW/2, scenH/2)
	return f
}

// scene is one segment of a scenario: n frames drawn by draw(i).
type scene struct {
	frames int
	draw   func(dst *gocv.Mat, i int)
}

// mustWriteVideo writes the scenes to an MJPEG AVI in a temp folder.
func mustWriteVideo(tb testing.TB, name string, scenes ...scene) string {
	tb.Helper()
	return mustWriteVideoAt(tb, name, scenFPS, scenes...)
}

// mustWriteVideoAt is mustWriteVideo at fps frames per second.
func mustWriteVideoAt(tb testing.TB, name string, fps float64, scenes ...scene) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name+".avi")
	vw, err := gocv.VideoWriterFile(path, "MJPG", fps, scenW, scenH, true)
	if err != nil || !vw.IsOpened() {
		tb.Fatalf("video writer: %v", err)
	}
	for _, s := range scenes {
		for i := 0; i < s.frames; i++ {
			f := background()
			if s.draw != nil {
				s.draw(&f, i)
			}
			if err := vw.Write(f); err != nil {
				tb.Fatal(err)
			}
			f.Close()
		}
	}
	if err := vw.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

func secs(s float64) int { return int(math.Round(s * scenFPS)) }

// still draws p fixed at the centre.
func still(p *person) func(dst *gocv.Mat, i int) {
	return func(dst *gocv.Mat, i int) { paste(dst, p, scenW/2, scenH/2-20) }
}

// shifted draws p moving rigidly a few pixels per frame (a photo held by a
// slightly shaking hand).
func shifted(p *person) func(dst *gocv.Mat, i int) {
	return func(dst *gocv.Mat, i int) {
		dx := int(12 * math.Sin(float64(i)*0.5))
		dy := int(8 * math.Cos(float64(i)*0.35))
		paste(dst, p, scenW/2+dx, scenH/2-20+dy)
	}
}

// tilted draws p as a flat photo turned and tilted in 3D (a perspective
// warp that changes every frame): rigid for a plane, not for a head.
func tilted(p *person) func(dst *gocv.Mat, i int) {
	return func(dst *gocv.Mat, i int) {
		w, h := float64(p.img.Cols()), float64(p.img.Rows())
		a := 0.06 * math.Sin(float64(i)*0.4)
		b := 0.05 * math.Cos(float64(i)*0.3)
		src := gocv.NewPointVectorFromPoints([]image.Point{{0, 0}, {int(w), 0}, {int(w), int(h)}, {0, int(h)}})
		dstPts := gocv.NewPointVectorFromPoints([]image.Point{
			{int(w * a), int(h * b)}, {int(w * (1 - a)), int(-h * b)},
			{int(w * (1 + a)), int(h * (1 + b))}, {int(-w * a), int(h * (1 - b))}})
		m := gocv.GetPerspectiveTransform(src, dstPts)
		warped := gocv.NewMat()
		gocv.WarpPerspective(p.img, &warped, m, image.Pt(p.img.Cols(), p.img.Rows()))
		q := &person{img: warped, face: p.face}
		paste(dst, q, scenW/2, scenH/2-20)
		warped.Close()
		m.Close()
		src.Close()
		dstPts.Close()
	}
}

// pair draws a and b side by side.
func pair(a, b *person) func(dst *gocv.Mat, i int) {
	return func(dst *gocv.Mat, i int) {
		paste(dst, a, scenW/4+10, scenH/2-20)
		paste(dst, b, 3*scenW/4-10, scenH/2-20)
	}
}

// swapping draws a and b in turn at the same place, changing every n
// frames: one photo swapped for another in front of the camera.
func swapping(a, b *person, n int) func(dst *gocv.Mat, i int) {
	return func(dst *gocv.Mat, i int) {
		p := a
		if (i/n)%2 == 1 {
			p = b
		}
		paste(dst, p, scenW/2, scenH/2-20)
	}
}

// camera darkens what draw draws by gain (0 or 1 keeps it) and adds
// Gaussian sensor noise of sigma grey levels to every pixel, new in each
// frame: a real webcam, whose gain in dim light raises the noise.
func camera(draw func(dst *gocv.Mat, i int), gain, sigma float64) func(dst *gocv.Mat, i int) {
	return func(dst *gocv.Mat, i int) {
		draw(dst, i)
		sensor(dst, i, gain, sigma)
	}
}

// sensor scales the 8-bit colour frame m by gain (0 keeps it) and adds
// Gaussian noise of sigma grey levels to every pixel and channel. The noise
// is a window of one seeded sequence at an offset set by frame: every run
// gives a frame the same noise, and no two frames the same.
func sensor(m *gocv.Mat, frame int, gain, sigma float64) {
	if gain <= 0 {
		gain = 1
	}
	if gain == 1 && sigma <= 0 {
		return
	}
	px, err := m.DataPtrUint8()
	if err != nil || !m.IsContinuous() {
		panic(fmt.Sprintf("sensor: want a continuous 8-bit frame: %v", err))
	}
	off := (frame * 7919 * 3) % noisePeriod
	noise := unitNoise(off + len(px))[off:]
	for i, v := range px {
		f := float64(v)*gain + sigma*float64(noise[i])
		px[i] = uint8(max(0, min(255, math.Round(f))))
	}
}

// noisePeriod bounds the offsets sensor takes windows of the noise at.
const noisePeriod = 1_000_003

// noiseSeq is the seeded sequence of unit Gaussian samples sensor reads.
var noiseSeq struct {
	sync.Mutex
	rng *rand.Rand
	buf []float32
}

// unitNoise returns at least n samples of the sequence; the same every run.
func unitNoise(n int) []float32 {
	noiseSeq.Lock()
	defer noiseSeq.Unlock()
	if noiseSeq.rng == nil {
		noiseSeq.rng = rand.New(rand.NewPCG(7, 11))
	}
	for len(noiseSeq.buf) < n {
		noiseSeq.buf = append(noiseSeq.buf, float32(noiseSeq.rng.NormFloat64()))
	}
	return noiseSeq.buf[:n]
}

// folded draws p as a printed photo folded along a vertical line through
// the nose, both halves turned back by an angle rocking between 0 and maxDeg
// from frame to frame, seen in perspective from dist photo widths away: each
// half is flat, but the two together are not one plane (the classic attack
// on a check for non-planar motion).
func folded(p *person, maxDeg, dist float64) func(dst *gocv.Mat, i int) {
	return func(dst *gocv.Mat, i int) {
		w, h := p.img.Cols(), p.img.Rows()
		th := maxDeg * math.Pi / 180 * (0.5 + 0.5*math.Sin(float64(i)*0.6))
		mapx := gocv.NewMatWithSize(h, w, gocv.MatTypeCV32F)
		mapy := gocv.NewMatWithSize(h, w, gocv.MatTypeCV32F)
		defer mapx.Close()
		defer mapy.Close()
		fx := float64(p.face.Min.X+p.face.Max.X) / 2
		cy := float64(h) / 2
		D := dist * float64(w)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				u := float64(x) - fx
				au := math.Abs(u)
				s := au * D / (D*math.Cos(th) - au*math.Sin(th))
				Z := s * math.Sin(th)
				v := (float64(y) - cy) * (D + Z) / D
				if u < 0 {
					s = -s
				}
				mapx.SetFloatAt(y, x, float32(s+fx))
				mapy.SetFloatAt(y, x, float32(v+cy))
			}
		}
		warped := gocv.NewMat()
		gocv.Remap(p.img, &warped, &mapx, &mapy, gocv.InterpolationLinear, gocv.BorderReplicate, gocvColor(0, 0, 0))
		q := &person{img: warped, face: p.face}
		paste(dst, q, scenW/2, scenH/2-20)
		warped.Close()
	}
}
