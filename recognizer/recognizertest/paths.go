// Package recognizertest finds the real test inputs (dlib models, photos,
// video) for tests of every package, and skips nothing silently: a missing
// input fails the test with the command that provides it.
package recognizertest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot returns the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ModelsDir returns the folder of dlib model files: $KIOSK_MODELS_DIR, or
// var/models under the repository (made by `make models`).
func ModelsDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("KIOSK_MODELS_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "var", "models")
	}
	if _, err := os.Stat(filepath.Join(dir, "dlib_face_recognition_resnet_model_v1.dat")); err != nil {
		tb.Fatalf("dlib models not found in %s: run `make models` (or set KIOSK_MODELS_DIR)", dir)
	}
	return dir
}

// TestdataDir returns the shared test data folder: $KIOSK_TESTDATA,
// ../shared/testdata beside the repository, or var/testdata (made by
// `make testdata` from face_recognition's PyPI sdist).
func TestdataDir(tb testing.TB) string {
	tb.Helper()
	for _, dir := range []string{
		os.Getenv("KIOSK_TESTDATA"),
		filepath.Join(RepoRoot(), "..", "shared", "testdata"),
		filepath.Join(RepoRoot(), "var", "testdata"),
	} {
		if dir == "" {
			continue
		}
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir
		}
	}
	tb.Fatalf("test photos not found: put ../shared/testdata beside the repository or run `make testdata`")
	return ""
}

// Testdata returns the path of a file under TestdataDir, failing the test
// when it is missing.
func Testdata(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(TestdataDir(tb), rel)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("test file %s missing: %v", p, err)
	}
	return p
}

// HasSharedTestdata reports whether the full shared test data set (video,
// gallery, people) is present, as opposed to the small fallback set.
func HasSharedTestdata(tb testing.TB) bool {
	tb.Helper()
	_, err := os.Stat(filepath.Join(TestdataDir(tb), "video", "short_hamilton_clip.mp4"))
	return err == nil
}
