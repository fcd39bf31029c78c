package device

import "slices"

// Liveness methods, as recorded in AttendanceEvent.Liveness.
const (
	LivenessBlink  = "blink"
	LivenessMotion = "motion"
	LivenessOff    = "off"
)

// livenessWindow is how many recent landmark sets a track keeps.
const livenessWindow = 30

// livenessMotionFrames is how many frames must show non-rigid motion above
// the threshold: one outlier from the landmark predictor is not enough.
const livenessMotionFrames = 3

// liveness accumulates evidence that a track's face is a live person: a
// blink (eye aspect ratio open -> closed -> open, after aligning the face on
// its other points) or non-rigid motion of the inner landmarks that no
// motion of a flat picture (a homography) explains.
type liveness struct {
	blinkEAR  float64
	motionMin float64

	shapes    [][]Point
	ears      []float64
	openSeen  bool
	closeSeen bool
	blinked   bool
	moving    int     // frames whose residual exceeded motionMin
	maxMotion float64 // largest residual seen, for logs
}

func newLiveness(blinkEAR, motionMin float64) *liveness {
	return &liveness{blinkEAR: blinkEAR, motionMin: motionMin}
}

// add takes one frame's 68 landmarks.
func (l *liveness) add(s []Point) {
	if len(s) < lmCount {
		return
	}
	// Blink: the eyes must be seen open, then closed, then open again.
	// "Closed" is relative to this face's own open eyes (EAR differs from
	// person to person, and jitters by a few hundredths): below BlinkEAR
	// and below 65% of the open level; open again above 85% of it.
	ear := meanEAR(s)
	if len(l.shapes) > 0 {
		ear = alignedEAR(l.shapes[0], s)
	}
	l.ears = append(l.ears, ear)
	if len(l.ears) > livenessWindow {
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
	// Motion: compare with every earlier shape in the window, so that slow
	// changes count as well as fast ones.
	var best float64
	for _, prev := range l.shapes {
		if r := planarResidual(prev, s); r > best {
			best = r
		}
	}
	if best > l.maxMotion {
		l.maxMotion = best
	}
	if best > l.motionMin {
		l.moving++
	}
	if len(l.shapes) == livenessWindow {
		copy(l.shapes, l.shapes[1:])
		l.shapes = l.shapes[:livenessWindow-1]
	}
	l.shapes = append(l.shapes, s)
}

// proof returns how liveness was shown, or "" when it was not (yet).
func (l *liveness) proof() string {
	switch {
	case l.blinked:
		return LivenessBlink
	case l.moving >= livenessMotionFrames:
		return LivenessMotion
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
