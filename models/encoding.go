package models

import (
	"math"
	"time"
)

// DescriptorSize is the length of a dlib face descriptor.
const DescriptorSize = 128

// Descriptor is a dlib ResNet face descriptor: 128 float32s on (roughly) the
// unit sphere. Two photos of one person are usually within 0.6 of each other.
type Descriptor [DescriptorSize]float32

// Norm bounds a plausible dlib descriptor's Euclidean norm. Real descriptors
// have norms near 0.9-1.0; anything far outside is corrupt or from another model.
const (
	MinDescriptorNorm = 0.3
	MaxDescriptorNorm = 2.0
)

// MaxEncodingsPerUser bounds how many encodings one user may hold.
const MaxEncodingsPerUser = 20

// DefaultModelName names dlib's face recognition model, the only one used.
const DefaultModelName = "dlib_face_recognition_resnet_model_v1"

// Validate returns an EINVALID error when d has a NaN or infinite value or a
// norm outside [MinDescriptorNorm, MaxDescriptorNorm].
func (d *Descriptor) Validate() error {
	var sum float64
	for i, v := range d {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return Errorf(EINVALID, "descriptor: value %d is not a finite number", i)
		}
		sum += f * f
	}
	n := math.Sqrt(sum)
	if n < MinDescriptorNorm || n > MaxDescriptorNorm {
		return Errorf(EINVALID, "descriptor: norm %.3f is outside [%.1f, %.1f]; is it a dlib ResNet descriptor?", n, MinDescriptorNorm, MaxDescriptorNorm)
	}
	return nil
}

// Distance returns the Euclidean distance between a and b, in float64.
func Distance(a, b *Descriptor) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// EncodingSource says who computed an encoding.
type EncodingSource string

// Encoding sources.
const (
	SourceCentral EncodingSource = "central" // pushed by the registry
	SourceLocal   EncodingSource = "local"   // enrolled on this device
)

// FaceEncoding is one face descriptor of one user. Descriptors are encrypted
// at rest and never leave the device through the local API.
type FaceEncoding struct {
	ID         string         `json:"id"`
	UserID     string         `json:"user_id"`
	Descriptor Descriptor     `json:"-"`
	Source     EncodingSource `json:"source"`
	Model      string         `json:"model"`
	CreatedAt  time.Time      `json:"created_at"`
}
