package device

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/kioskd/kioskd/models"
)

// Enrolment from the camera takes several samples of small, different
// poses, so that a user has more than one template: a face seen later a
// little turned or tilted is nearer one of them.
const (
	// MaxCaptureSamples bounds the samples one capture takes.
	MaxCaptureSamples = 5
	// sampleYawStep and sampleRollStep (degrees) are the least pose change
	// from every kept sample that makes a frame a new sample; a frame that
	// differs less counts when its descriptor is sampleDistStep from every
	// kept one (more than two frames of a still face wander, 0.02-0.05).
	sampleYawStep  = 0.05
	sampleRollStep = 3.0
	sampleDistStep = 0.06
	// sampleSpread is how long after the first sample the others are
	// waited for; whatever was taken by then is returned.
	sampleSpread = 4 * time.Second
)

// CaptureFaces takes up to n (1-MaxCaptureSamples) faces of one person from
// consecutive gated frames, each of a pose or descriptor distinct from the
// ones kept (see the constants above), and returns them with the first
// frame as JPEG. It waits for the first as long as ctx lets it (errors:
// EUNAVAILABLE, ENOFACE, ctx's), then at most sampleSpread for the others: a person who stays perfectly
// still gives fewer samples, not an error.
func (p *Pipeline) CaptureFaces(ctx context.Context, n int) ([]models.Face, []byte, error) {
	n = max(1, min(n, MaxCaptureSamples))
	first, err := p.captureOne(ctx)
	if err != nil {
		return nil, nil, err
	}
	kept := []*captureSample{first}
	sctx, cancel := context.WithTimeout(ctx, sampleSpread)
	defer cancel()
	for len(kept) < n {
		s, err := p.captureOne(sctx)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			break
		} else if err != nil {
			if models.ErrorCode(err) == models.ENOFACE {
				continue // that frame's face did not encode: take the next
			}
			break
		}
		if distinctSample(kept, s) {
			kept = append(kept, s)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	faces := make([]models.Face, len(kept))
	for i, s := range kept {
		faces[i] = *s.face
	}
	return faces, first.jpeg, nil
}

// distinctSample reports whether s differs from every kept sample in pose
// or descriptor.
func distinctSample(kept []*captureSample, s *captureSample) bool {
	for _, k := range kept {
		if math.Abs(k.yaw-s.yaw) < sampleYawStep && math.Abs(k.roll-s.roll) < sampleRollStep &&
			models.Distance(&k.face.Descriptor, &s.face.Descriptor) < sampleDistStep {
			return false
		}
	}
	return true
}
