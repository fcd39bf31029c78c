package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// startupChildEnv makes the test binary run one kioskd startup and report,
// so the benchmark measures a fresh process's time and peak RSS.
const startupChildEnv = "KIOSK_STARTUP_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(startupChildEnv); dir != "" {
		os.Exit(startupChild(dir))
	}
	if dir := os.Getenv(bulkChildEnv); dir != "" {
		os.Exit(bulkChild(dir))
	}
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// startupChild opens kioskd on dir (store, models, gallery, API) and prints
// "ready_ms=N hwm_kb=N descriptors=N".
func startupChild(dir string) int {
	start := time.Now()
	m := newBenchChildMain(dir)
	m.Config.Recognizer.PoolSize = 1
	if err := m.Run(context.Background()); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	ready := time.Since(start)
	fmt.Printf("ready_ms=%d hwm_kb=%d descriptors=%d\n", ready.Milliseconds(), procHWM(os.Getpid()), m.Matcher.Len())
	_ = m.Close()
	return 0
}

// newBenchChildMain returns a Main for a benchmark's child process: data
// in dir, models from $KIOSK_MODELS_DIR, the API on a free loopback port,
// no environment overrides and no logs.
func newBenchChildMain(dir string) *Main {
	m := NewMain()
	m.Getenv = func(string) string { return "" }
	m.Config.DataDir = dir
	m.Config.Models.Dir = os.Getenv("KIOSK_MODELS_DIR")
	m.Config.API.Addr = "127.0.0.1:0"
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.Stderr = io.Discard
	return m
}

// mustGallery50k writes a data dir with 50,000 users x 2 encodings, once
// per machine (var/bench/startup50k), since writing it takes a while.
func mustGallery50k(b *testing.B) string {
	rng := rand.New(rand.NewPCG(1, 2))
	return mustGalleryDir(b, "startup50k", 50_000, 2, func() models.Descriptor { return bolttest.RandomDescriptor(rng) })
}

// mustGalleryIdols1M writes a data dir with 1,000,000 users x 1 encoding
// of the idols gallery's density (recognizertest.IdolSynth), once per
// machine (var/bench/startup1m-idols).
func mustGalleryIdols1M(b *testing.B) string {
	s := recognizertest.NewIdolSynth(b, 1)
	return mustGalleryDir(b, "startup1m-idols", 1_000_000, 1, s.User)
}

// mustGalleryDir writes a data dir under var/bench/name with users x
// perUser encodings from gen, once per machine.
func mustGalleryDir(b *testing.B, name string, users, perUser int, gen func() models.Descriptor) string {
	b.Helper()
	dir := filepath.Join(recognizertest.RepoRoot(), "var", "bench", name)
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "keys"), 0o700)
	db := bolt.NewDB(filepath.Join(dir, "kioskd.db"))
	db.KeyPath = filepath.Join(dir, "keys", "descriptors.key")
	db.NoSync = true
	if err := db.Open(); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	const batch = 5_000
	for off := 0; off < users; off += batch {
		recs := make([]models.UserRecord, 0, batch)
		for i := off; i < min(off+batch, users); i++ {
			id := fmt.Sprintf("u%07d", i)
			rec := models.UserRecord{User: models.User{ID: id, Email: id + "@example.org", FullName: "User " + id,
				Role: models.RoleTrainee, Status: models.UserActive, Version: 1, UpdatedAt: now}}
			for e := 0; e < perUser; e++ {
				rec.Encodings = append(rec.Encodings, models.FaceEncoding{ID: fmt.Sprintf("%s-%d", id, e), UserID: id,
					Descriptor: gen(), Source: models.SourceCentral, Model: models.DefaultModelName, CreatedAt: now})
			}
			recs = append(recs, rec)
		}
		if _, err := db.ApplyUserRecords(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
	return dir
}

// BenchmarkStartup50kUsers measures kioskd's time from process start to
// ready (store opened and checked, dlib models loaded, 100,000 descriptors
// decrypted into the matcher, gallery calibrated, API listening) and the
// process's peak RSS. Targets: <= 3 s, <= 300 MB.
func BenchmarkStartup50kUsers(b *testing.B) { benchmarkStartup(b, mustGallery50k(b), 100_000) }

// BenchmarkStartup1MIdols: the same with 1,000,000 users x 1 descriptor of
// real density (the idols gallery's).
func BenchmarkStartup1MIdols(b *testing.B) { benchmarkStartup(b, mustGalleryIdols1M(b), 1_000_000) }

func benchmarkStartup(b *testing.B, dir string, descriptors int) {
	models := recognizertest.ModelsDir(b)
	var totalMs, maxKB float64
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), startupChildEnv+"="+dir, "KIOSK_MODELS_DIR="+models)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			b.Fatalf("startup: %v: %s", err, out.String())
		}
		var ms, kb, n int
		if _, err := fmt.Sscanf(strings.TrimSpace(out.String()), "ready_ms=%d hwm_kb=%d descriptors=%d", &ms, &kb, &n); err != nil || n != descriptors {
			b.Fatalf("child said %q", out.String())
		}
		totalMs += float64(ms)
		maxKB = math.Max(maxKB, float64(kb))
	}
	b.ReportMetric(totalMs/float64(b.N), "ms-to-ready")
	b.ReportMetric(maxKB/1024, "peak-RSS-MB")
}
