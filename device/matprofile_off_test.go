//go:build !matprofile

package device

func liveMats() int { return 0 }

const haveMatProfile = false

func matProfileDump() string { return "" }
