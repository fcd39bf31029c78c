package recognizer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// parityTolerance is the largest per-face descriptor distance allowed
// between ours and face_recognition's: 60x below the match threshold.
const parityTolerance = 0.01

// peerFace is one face as scripts/parity.py prints it.
type peerFace struct {
	Box        [4]int    `json:"box"` // left, top, right, bottom (half-open)
	Descriptor []float64 `json:"descriptor"`
}

type peerResult struct {
	File   string     `json:"file"`
	Width  int        `json:"width"`
	Height int        `json:"height"`
	Faces  []peerFace `json:"faces"`
	Error  string     `json:"error"`
}

// venvPython returns the venv's python, or "" when there is no venv.
func venvPython() string {
	for _, dir := range []string{os.Getenv("KIOSK_VENV"), filepath.Join(recognizertest.RepoRoot(), "var", "venv")} {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "bin", "python")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// runPeer runs scripts/parity.py over files and returns its results by file.
func runPeer(t *testing.T, python string, files []string) map[string]peerResult {
	t.Helper()
	script := filepath.Join(recognizertest.RepoRoot(), "scripts", "parity.py")
	cmd := exec.Command(python, append([]string{script}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	res := map[string]peerResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r peerResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("parity.py output: %v: %q", err, sc.Text())
		}
		res[r.File] = r
	}
	return res
}

// descriptorDistance is the L2 distance between our descriptor and theirs.
func descriptorDistance(d *models.Descriptor, theirs []float64) float64 {
	var s float64
	for i := range d {
		x := float64(d[i]) - theirs[i]
		s += x * x
	}
	return math.Sqrt(s)
}

// nearestPeerFace pairs our box with the peer face whose box centre is
// nearest.
func nearestPeerFace(box image.Rectangle, faces []peerFace) (int, float64) {
	best, bestD := -1, math.Inf(1)
	cx, cy := float64(box.Min.X+box.Max.X)/2, float64(box.Min.Y+box.Max.Y)/2
	for i, f := range faces {
		fx, fy := float64(f.Box[0]+f.Box[2])/2, float64(f.Box[1]+f.Box[3])/2
		if d := math.Hypot(cx-fx, cy-fy); d < bestD {
			best, bestD = i, d
		}
	}
	return best, bestD
}

// writeSmallFace writes a JPEG of people/obama/1.jpg scaled so its face is
// about 52 px across: below dlib's native 80 px, found only at 2x.
func writeSmallFace(t *testing.T, dir string) string {
	t.Helper()
	src := mustDecodeFile(t, recognizertest.Testdata(t, "people/obama/1.jpg"))
	small := resizeBox(src, src.Bounds().Dx()/5, src.Bounds().Dy()/5)
	p := filepath.Join(dir, "obama_small_face.jpg")
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, small, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParity compares our descriptors with face_recognition's (from PyPI,
// in var/venv) on the same images: per face, L2 < 0.01.
func TestParity(t *testing.T) {
	python := venvPython()
	if python == "" {
		t.Skip("face_recognition venv not found: run `make venv` (scripts/venv.sh var/venv) or set KIOSK_VENV")
	}
	enc := sharedEncoder(t)
	root := recognizertest.TestdataDir(t)
	var files []string
	for _, pattern := range []string{"people/*/*", "multi/two_people.jpg", "photos/tzuyu.jpg", "photos/bona2.jpg", "photos/eunseo3.jpg", "photos/jimin6.jpg"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		files = append(files, m...)
	}
	files = append(files, writeSmallFace(t, t.TempDir()))
	peer := runPeer(t, python, files)

	maxBy := map[string]float64{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h, err := readHeader(b, enc.limits())
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		r, err := enc.encode(context.Background(), b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		theirs, ok := peer[f]
		if !ok || theirs.Error != "" {
			t.Fatalf("%s: face_recognition gave no result: %q", f, theirs.Error)
		}
		if len(r.faces) != len(theirs.Faces) {
			t.Errorf("%s: we found %d faces, face_recognition %d", f, len(r.faces), len(theirs.Faces))
			continue
		}
		kind := h.format
		if strings.Contains(f, "small_face") {
			kind = "small face (found only at 2x)"
		}
		for _, ours := range r.faces {
			i, off := nearestPeerFace(ours.Box, theirs.Faces)
			d := descriptorDistance(&ours.Descriptor, theirs.Faces[i].Descriptor)
			maxBy[kind] = max(maxBy[kind], d)
			t.Logf("%s (%s): L2 %.2e, box %v vs %v (centres %.1f px apart)", filepath.Base(f), kind, d, ours.Box, theirs.Faces[i].Box, off)
			if d >= parityTolerance {
				t.Errorf("%s: descriptor differs from face_recognition's by %.4f (limit %.2f)", f, d, parityTolerance)
			}
		}
	}
	for kind, d := range maxBy {
		t.Logf("max L2 to face_recognition, %s: %.2e", kind, d)
	}
}
