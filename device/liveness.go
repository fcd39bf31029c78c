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

// exprCount is the number of expression measures (see expression).
const exprCount = 5

// exprSample is one frame's expression measures and frame time.
type exprSample struct {
	at time.Time
	v  [exprCount]float64
}

// liveness accumulates evidence that a track's face is a live person: a
// blink (eye aspect ratio open -> closed -> open, after aligning the face on
// its other points) or a change of expression that no motion of a flat or
// folded picture produces (see expression). Each frame's measures are
// median-filtered over three consecutive frames, so one frame the landmark
// predictor gets wrong is not evidence.
type liveness struct {
	blinkEAR float64
	exprMin  float64

	ref       []Point // the track's first shape: eyes are aligned on it
	ears      []float64
	openSeen  bool
	closeSeen bool
	blinked   bool

	raw      []exprSample // the last three frames, unfiltered
	filtered []exprSample // median-filtered, within livenessWindow
	moved    bool
	maxRange float64 // largest change seen within the window, for logs
}

func newLiveness(blinkEAR, exprMin float64) *liveness {
	return &liveness{blinkEAR: blinkEAR, exprMin: exprMin}
}

// add takes one frame's 68 landmarks and its frame time.
func (l *liveness) add(at time.Time, s []Point) {
	if len(s) < lmCount {
		return
	}
	l.addBlink(s)
	l.addExpression(at, s)
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

// addExpression median-filters the expression measures over the last three
// frames and looks for a change larger than exprMin within livenessWindow.
func (l *liveness) addExpression(at time.Time, s []Point) {
	l.raw = append(l.raw, exprSample{at: at, v: expression(s)})
	if len(l.raw) > 3 {
		l.raw = l.raw[1:]
	}
	if len(l.raw) < 3 {
		return
	}
	f := exprSample{at: l.raw[1].at}
	for k := range f.v {
		f.v[k] = median3(l.raw[0].v[k], l.raw[1].v[k], l.raw[2].v[k])
	}
	keep := l.filtered[:0]
	for _, x := range l.filtered {
		if f.at.Sub(x.at) <= livenessWindow {
			keep = append(keep, x)
		}
	}
	l.filtered = append(keep, f)
	for k := 0; k < exprCount; k++ {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range l.filtered {
			lo, hi = min(lo, x.v[k]), max(hi, x.v[k])
		}
		if r := hi - lo; r > l.maxRange {
			l.maxRange = r
		}
	}
	if l.maxRange > l.exprMin {
		l.moved = true
	}
}

// proof returns how liveness was shown, or "" when it was not (yet).
func (l *liveness) proof() string {
	switch {
	case l.blinked:
		return LivenessBlink
	case l.moved:
		return LivenessMotion
	}
	return ""
}

func median3(a, b, c float64) float64 {
	return max(min(a, b), min(max(a, b), c))
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
