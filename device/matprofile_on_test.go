//go:build matprofile

package device

import (
	"strings"

	"gocv.io/x/gocv"
)

// liveMats counts Mats not yet closed (gocv built with -tags matprofile).
func liveMats() int { return gocv.MatProfile.Count() }

const haveMatProfile = true

// matProfileDump lists where the open Mats were made.
func matProfileDump() string {
	var b strings.Builder
	gocv.MatProfile.WriteTo(&b, 1)
	return b.String()
}
