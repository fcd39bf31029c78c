// Package recognizertest finds the real test inputs (dlib models, photos,
// video) for tests of every package. Models come from a registry, so missing
// ones fail the test with the command that fetches them. Test data a machine
// cannot fetch (the shared set) skips the test with one line naming the file
// and where it comes from, and logs it for `make test`'s summary; with
// KIOSK_REQUIRE_TESTDATA=1 (CI, or ../shared beside the repository) a missing
// file fails the test instead.
package recognizertest

import (
	"fmt"
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
	missingTestdata(tb, "any test data", "put ../shared/testdata beside the repository or run `make testdata`")
	return ""
}

// RequireTestdata reports whether missing test data fails tests rather than
// skipping them: KIOSK_REQUIRE_TESTDATA=1, or ../shared/testdata present.
func RequireTestdata() bool {
	if v := os.Getenv("KIOSK_REQUIRE_TESTDATA"); v != "" {
		return v == "1"
	}
	st, err := os.Stat(filepath.Join(RepoRoot(), "..", "shared", "testdata"))
	return err == nil && st.IsDir()
}

// missingTestdata fails (RequireTestdata) or skips tb over a missing file,
// and appends the skip to $KIOSK_SKIP_LOG for the end-of-run summary.
func missingTestdata(tb testing.TB, file, from string) {
	tb.Helper()
	if RequireTestdata() {
		tb.Fatalf("test data %s missing (%s); KIOSK_REQUIRE_TESTDATA forbids skipping", file, from)
	}
	line := fmt.Sprintf("%s: needs %s (%s)", tb.Name(), file, from)
	if p := os.Getenv("KIOSK_SKIP_LOG"); p != "" {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, line) // one short write: atomic with O_APPEND
			f.Close()
		}
	}
	tb.Skip("skipped: " + line)
}

// sharedOnly is where files of the shared set come from: no registry has
// them, so a machine without ../shared cannot fetch them.
const sharedOnly = "from the project's shared test set at ../shared/testdata; `make testdata` cannot fetch it"

// Testdata returns the path of a file under TestdataDir, failing the test
// when it is missing.
func Testdata(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(TestdataDir(tb), rel)
	if _, err := os.Stat(p); err != nil {
		missingTestdata(tb, rel, sharedOnly)
	}
	return p
}

// Glob returns the test data files matching pattern (relative to
// TestdataDir), skipping the test like Testdata when there are none.
func Glob(tb testing.TB, pattern string) []string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(TestdataDir(tb), pattern))
	if len(files) == 0 {
		missingTestdata(tb, pattern, sharedOnly)
	}
	return files
}

// HasSharedTestdata reports whether the full shared test data set (video,
// gallery, people) is present, as opposed to the small fallback set.
func HasSharedTestdata(tb testing.TB) bool {
	tb.Helper()
	_, err := os.Stat(filepath.Join(TestdataDir(tb), "video", "short_hamilton_clip.mp4"))
	if err != nil && RequireTestdata() {
		tb.Fatalf("the shared test set is missing from %s; KIOSK_REQUIRE_TESTDATA forbids the fallback set", TestdataDir(tb))
	}
	return err == nil
}
