package device

import (
	"image"
	"time"

	"github.com/kioskd/kioskd/models"
)

// iou returns the intersection over union of two boxes.
func iou(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	ia := float64(in.Dx() * in.Dy())
	return ia / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia)
}

// track is one face followed across frames. A new track starts when the face
// jumps (IoU below the threshold), when a second face appears, or after the
// face was gone for TrackTimeout.
type track struct {
	id        uint64
	box       image.Rectangle
	firstSeen time.Time // frame time of the first frame of the track
	lastSeen  time.Time
	// firstGated is the capture time (wall clock) of the first frame that
	// passed the gates: time to attendance is measured from it.
	firstGated time.Time
	lastEncode time.Time
	votes      votes
	live       *liveness
	// luma is the last gated face's mean luma: dim faces are lifted before
	// encoding.
	luma float64
	// patch is the last face's aligned appearance, for the continuity check.
	patch facePatch
	// decided: attendance recorded (or refused by cooldown) for this track;
	// no more encodings.
	decided         bool
	unknownAnnounce bool
	livenessFailed  bool
	prompted        bool      // asked for a blink or a head turn
	recognisedAt    time.Time // frame time K-of-M first agreed, waiting for liveness
	// ID + face (idface.go): the screen asked for an ID (at askedAt, frame
	// time); the claimed user the face was verified as, with the mean
	// distance.
	askedID      bool
	askedAt      time.Time
	verifiedUser string
	verifiedDist float64
}

// vote is one encoding's identification.
type vote struct {
	userID   string // "" for unknown
	distance float64
	// stranger: unknown, and no enrolled user's 1:1 check could accept
	// this face either (modes id_face and auto).
	stranger bool
	// desc is the encoding, kept for a 1:1 check against a claimed ID;
	// checked is the claim it was last checked against, with the answer.
	desc    *models.Descriptor
	checked uint64
	match   bool
	vdist   float64
}

// votes keeps the last M identifications of a track.
type votes struct {
	ring []vote
	m    int
}

func (v *votes) add(x vote) {
	if len(v.ring) == v.m {
		copy(v.ring, v.ring[1:])
		v.ring = v.ring[:v.m-1]
	}
	v.ring = append(v.ring, x)
}

// winner returns the user named by at least k of the kept votes and the
// mean distance of those votes.
func (v *votes) winner(k int) (string, float64, bool) {
	counts := map[string]int{}
	sums := map[string]float64{}
	for _, x := range v.ring {
		if x.userID == "" {
			continue
		}
		counts[x.userID]++
		sums[x.userID] += x.distance
	}
	for id, c := range counts {
		if c >= k {
			return id, sums[id] / float64(c), true
		}
	}
	return "", 0, false
}

// unknown reports whether at least k of the kept votes are unknown.
func (v *votes) unknown(k int) bool {
	n := 0
	for _, x := range v.ring {
		if x.userID == "" {
			n++
		}
	}
	return n >= k
}
