package recognizer

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// openThreadsEncoder opens a one-recognizer Encoder running detection on
// threads threads.
func openThreadsEncoder(t *testing.T, threads int) *Encoder {
	t.Helper()
	cfg := DefaultEncoderConfig()
	cfg.ModelsDir, cfg.PoolSize, cfg.DetectThreads = recognizertest.ModelsDir(t), 1, threads
	enc := NewEncoder(cfg)
	if err := enc.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return enc
}

// sameFaces fails unless got and want hold the same faces: boxes,
// landmarks and descriptors equal bit for bit.
func sameFaces(t *testing.T, what string, got, want []models.Face) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d faces, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := &got[i], &want[i]
		if g.Box != w.Box || g.Descriptor != w.Descriptor || len(g.Landmarks) != len(w.Landmarks) {
			t.Fatalf("%s: face %d = %v, want %v (or its descriptor differs)", what, i, g.Box, w.Box)
		}
		for j := range g.Landmarks {
			if g.Landmarks[j] != w.Landmarks[j] {
				t.Fatalf("%s: face %d landmark %d = %v, want %v", what, i, j, g.Landmarks[j], w.Landmarks[j])
			}
		}
	}
}

// TestDetectThreadsSameFaces: the multi-threaded detector (hogdetect.h)
// replicates dlib's single-threaded one, so every photo gives the same
// faces, bit for bit, whatever DetectThreads is: on the 2x copy (Encode),
// at native size (EncodeMat) and with more threads than cores.
func TestDetectThreadsSameFaces(t *testing.T) {
	var files []string
	dir := recognizertest.TestdataDir(t)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".jpg", ".jpeg", ".png":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no photos under %s", dir)
	}
	if testing.Short() && len(files) > 4 {
		files = files[:4]
	}
	one, two, three := openThreadsEncoder(t, 1), openThreadsEncoder(t, 2), openThreadsEncoder(t, 3)
	ctx := context.Background()
	found := 0
	for i, p := range files {
		rel, _ := filepath.Rel(dir, p)
		img := mustReadFile(t, p)
		want, err := one.Encode(ctx, img)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		found += len(want)
		got, err := two.Encode(ctx, img)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		sameFaces(t, rel+" (2 threads)", got, want)
		if i%4 == 0 {
			got, err := three.Encode(ctx, img)
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			sameFaces(t, rel+" (3 threads)", got, want)
		}
		if i%3 == 0 {
			m := gocv.IMRead(p, gocv.IMReadColor)
			wantMat, err1 := one.EncodeMat(ctx, m)
			gotMat, err2 := two.EncodeMat(ctx, m)
			m.Close()
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: EncodeMat: %v, %v", rel, err1, err2)
			}
			sameFaces(t, rel+" (frame, 2 threads)", gotMat, wantMat)
		}
	}
	if found == 0 {
		t.Fatal("no face found in any photo: nothing was compared")
	}
}
