package device

import (
	"math"
	"slices"
	"time"
)

// Liveness methods, as recorded in AttendanceEvent.Liveness.
const (
	LivenessBlink  = "blink"
	LivenessMotion = "motion"
	LivenessDepth  = "depth"
	LivenessOff    = "off"
)

// livenessEARWindow is how many recent eye aspect ratios a track keeps to
// know its own open-eye level.
const livenessEARWindow = 30

// livenessWindow is how far back a face's expression is compared: changes
// slower than this (a photo drifting in perspective over seconds) do not
// add up.
const livenessWindow = time.Second

// livenessPromptAfter is how long a recognised face may wait for passive
// evidence before the screen asks for a blink or a small head turn.
const livenessPromptAfter = time.Second

// flatMinDeform is how much a face must change shape in the image within
// livenessWindow (the sum of the tracked pixels' deformation, beyond
// moving, in inter-ocular distances; see planarity) before its pixels can
// tell a picture from a face. Under it the face hardly moved, and the
// expression cue decides alone (a still photo shows no expression change).
const flatMinDeform = 0.05

// flatMaxResidual is the largest ratio of the halves' homography residual
// to the deformation, summed over livenessWindow, of a flat picture: a
// picture, held, tilted or folded along a line near the nose, moves as one
// homography per half (residual at tracking noise); a face has depth and
// changes shape. Measured (docs/liveness.md): folded photos up to 0.25,
// live faces 0.73 and up, a small stage face 0.46.
const flatMaxResidual = 0.4

// flatMaxCoherent is the largest ratio of the halves' coherent residual
// (planarity.Coherent) to the deformation, summed over livenessWindow, of
// a flat picture: with a camera's sensor noise the raw residual of a
// folded photo rises past flatMaxResidual, its coherent residual much less.
// Measured (docs/liveness.md): folded photos 0.14 at most as drawn, 0.27
// with 4 grey levels of noise; live faces 0.34 and up.
const flatMaxCoherent = 0.3

// depthMinDeform is how much a face must change shape in the image within
// livenessWindow (as for flatMinDeform) before its pixels can show depth:
// a still photo, a shaken one and a live face that holds still stay under
// it, and tracking noise alone does not reach it.
const depthMinDeform = 0.03

// depthNoise is the coherent residual (planarity.Coherent) one frame pair
// of a picture shows from tracking alone, in inter-ocular distances
// (docs/liveness.md): depth subtracts it per pair, so that a picture whose
// residual is mostly noise does not look deep.
const depthNoise = 0.001

// depthMinResidual is the least ratio of the halves' coherent residual,
// less depthNoise per pair, to the deformation, both summed over
// livenessWindow, that shows a face with depth (see depth). The coherent
// residual averages each point's residual with its neighbours': parallax
// moves neighbouring points alike, a camera's sensor noise does not.
// Measured (docs/liveness.md), photos held, shaken, tilted or folded, with
// sensor noise of up to 8 grey levels, stay under it with a margin.
const depthMinResidual = 0.45

// depthDimMinDeform and depthDimMinResidual replace depthMinDeform and
// depthMinResidual when the face was dim (planarity.Dim) within
// livenessWindow: lifted, its grain and compression noise are amplified
// with it, so a photo in dim light needs more (docs/liveness.md).
const (
	depthDimMinDeform   = 0.08
	depthDimMinResidual = 1.0
)

// depthMinPairs is how many pixel measures within livenessWindow the depth
// cue needs, so that one frame pair's tracking error is not evidence.
const depthMinPairs = 3

// exprCount is the number of expression measures (see expression).
const exprCount = 5

// exprFilter is how many consecutive frames each expression measure is
// median-filtered over: a camera's sensor noise moves the landmarks of a
// photo from frame to frame, an expression holds for several frames
// (docs/liveness.md).
const exprFilter = 5

// exprSample is one frame's expression measures and frame time.
type exprSample struct {
	at time.Time
	v  [exprCount]float64
}

// planarSample is one frame's planarity and frame time.
type planarSample struct {
	at time.Time
	p  planarity
}

// liveness accumulates evidence that a track's face is a live person: a
// blink (eye aspect ratio open -> closed -> open, after aligning the face on
// its other points), a change of expression that no motion of a flat or
// folded picture produces (see expression), or pixels that move with depth
// (see depth). Each frame's expression measures are median-filtered over
// exprFilter consecutive frames, so a frame or two the landmark predictor
// gets wrong is not evidence. A change of expression does not
// count while the face's pixels move as a flat picture's (see flat): on a
// blurred picture folded and rocked, the landmark predictor misplaces
// points as much as a live face moves them.
type liveness struct {
	blinkEAR float64
	exprMin  float64

	ref       []Point // the track's first shape: eyes are aligned on it
	ears      []float64
	openSeen  bool
	closeSeen bool
	blinked   bool

	raw      []exprSample // the last exprFilter frames, unfiltered
	filtered []exprSample // median-filtered, within livenessWindow
	planar   []planarSample
	moved    bool
	deep     bool    // the pixels showed depth (see depth)
	maxRange float64 // largest change seen within the window, for logs
	// maxDepth is the highest depth score seen (see depthScore), as a
	// fraction of the threshold that applied, for logs and tests.
	maxDepth float64
	// vetoed counts frames whose change of expression exceeded exprMin
	// while the face moved as a flat picture, for logs and tests.
	vetoed int
}

func newLiveness(blinkEAR, exprMin float64) *liveness {
	return &liveness{blinkEAR: blinkEAR, exprMin: exprMin}
}

// add takes one frame's 68 landmarks, its frame time and the face's
// planarity (nil when not measured).
func (l *liveness) add(at time.Time, s []Point, pl *planarity) {
	if len(s) < lmCount {
		return
	}
	keep := l.planar[:0]
	for _, x := range l.planar {
		if at.Sub(x.at) < livenessWindow {
			keep = append(keep, x)
		}
	}
	l.planar = keep
	if pl != nil {
		l.planar = append(l.planar, planarSample{at: at, p: *pl})
		l.deep = l.deep || l.depth()
	}
	l.addBlink(s)
	l.addExpression(at, s)
}

// flat reports whether, within livenessWindow, the face changed shape in
// the image enough to tell and its pixels stayed on one homography per
// half (raw or, through sensor noise, coherent residual): a picture, flat
// or folded.
func (l *liveness) flat() bool {
	def, res, coh := l.planarSums()
	return def >= flatMinDeform && (res < flatMaxResidual*def || coh < flatMaxCoherent*def)
}

// depth reports whether, within livenessWindow, the face changed shape in
// the image enough to tell and its pixels strayed from one homography per
// half as only a surface with depth (nose, cheeks, eye sockets) or a
// changing face makes them: a head that turns, nods or speaks, even a
// little, before its expression changes. A dim face needs more (see
// depthDimMinDeform).
func (l *liveness) depth() bool {
	score, minRes := l.depthScore()
	l.maxDepth = max(l.maxDepth, score/minRes)
	return score >= minRes
}

// depthScore returns the coherent residual, less depthNoise per pair, over
// the deformation, both summed within livenessWindow (0 when the face
// deformed too little or there were too few measures), and the threshold
// that applies to it.
func (l *liveness) depthScore() (score, threshold float64) {
	minDef, minRes := depthMinDeform, depthMinResidual
	for _, x := range l.planar {
		if x.p.Dim {
			minDef, minRes = depthDimMinDeform, depthDimMinResidual
		}
	}
	def, _, coh := l.planarSums()
	n := len(l.planar)
	if n < depthMinPairs || def < minDef {
		return 0, minRes
	}
	return (coh - float64(n)*depthNoise) / def, minRes
}

// planarSums returns the deformation, the residual and the coherent
// residual summed over the planarity measures within livenessWindow.
func (l *liveness) planarSums() (def, res, coh float64) {
	for _, x := range l.planar {
		def += x.p.Deform
		res += x.p.Residual
		coh += x.p.Coherent
	}
	return def, res, coh
}

// addBlink: the eyes must be seen open, then closed, then open again.
// "Closed" is relative to this face's own open eyes (EAR differs from
// person to person, and jitters by a few hundredths): below BlinkEAR and
// below 65% of the open level; open again above 85% of it.
func (l *liveness) addBlink(s []Point) {
	ear := meanEAR(s)
	if l.ref == nil {
		l.ref = s
	} else {
		ear = alignedEAR(l.ref, s)
	}
	l.ears = append(l.ears, ear)
	if len(l.ears) > livenessEARWindow {
		l.ears = l.ears[1:]
	}
	openLevel := percentile(l.ears, 0.75)
	switch {
	case ear < l.blinkEAR && ear < 0.65*openLevel:
		if l.openSeen {
			l.closeSeen = true
		}
	case ear > 0.85*openLevel:
		if l.closeSeen {
			l.blinked = true
		}
		l.openSeen = true
	}
}

// addExpression median-filters the expression measures over the last exprFilter
// frames and looks for a change larger than exprMin within livenessWindow.
func (l *liveness) addExpression(at time.Time, s []Point) {
	l.raw = append(l.raw, exprSample{at: at, v: expression(s)})
	if len(l.raw) > exprFilter {
		l.raw = l.raw[1:]
	}
	if len(l.raw) < exprFilter {
		return
	}
	f := exprSample{at: l.raw[exprFilter/2].at}
	var xs [exprFilter]float64
	for k := range f.v {
		for i, x := range l.raw {
			xs[i] = x.v[k]
		}
		slices.Sort(xs[:]) // in place: no allocation per frame
		f.v[k] = xs[exprFilter/2]
	}
	keep := l.filtered[:0]
	for _, x := range l.filtered {
		if f.at.Sub(x.at) <= livenessWindow {
			keep = append(keep, x)
		}
	}
	l.filtered = append(keep, f)
	var change float64
	for k := 0; k < exprCount; k++ {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range l.filtered {
			lo, hi = min(lo, x.v[k]), max(hi, x.v[k])
		}
		change = max(change, hi-lo)
	}
	l.maxRange = max(l.maxRange, change)
	if change > l.exprMin {
		if l.flat() {
			l.vetoed++
		} else {
			l.moved = true
		}
	}
}

// proof returns how liveness was shown, or "" when it was not (yet).
func (l *liveness) proof() string {
	switch {
	case l.blinked:
		return LivenessBlink
	case l.moved:
		return LivenessMotion
	case l.deep:
		return LivenessDepth
	}
	return ""
}

// percentile returns the p-quantile of xs (nearest rank), 0 for none.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1)+0.5)]
}
