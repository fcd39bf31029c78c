// Package recognizer turns images into face descriptors and identifies
// descriptors against the cached gallery.
//
// The Encoder runs dlib's face pipeline (HOG detector, 5-point landmarks,
// ResNet descriptor; cgo in the shared internal/dlib) exactly as
// face_recognition, the central registry's library, drives it: detection
// on a 2x copy (faces down to about 40 px), landmarks and descriptor on the
// original pixels. Its descriptors equal face_recognition's for the same
// image (TestParity). It decodes images itself (JPEG through libjpeg like
// Pillow, PNG, grayscale, CMYK, EXIF orientation), refuses huge images from
// their header before decoding them, and applies the one-face rule with
// coded errors a user can act on.
//
// The Matcher is a 1:N nearest-neighbour search over every descriptor of
// every user, stored contiguously as float32 and scanned with an AVX2/FMA
// kernel on amd64, close to the speed of streaming the gallery from memory.
package recognizer
