package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/localapi/localapitest"
	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkBulkImport enrols KIOSK_BULK_N (default 1000) photos through
// POST /api/v1/import (every row its own zip entry, so every photo is
// encoded), then runs scripts/peer_bulk.py - a sequential face_recognition
// loop - over KIOSK_PEER_N (default: the same number) of the same photos.
// It reports ours and the peer's photos/s, the speed-up, and the process's
// peak RSS (VmHWM; run it alone: -run '^$' -bench BulkImport -benchtime 1x).
func BenchmarkBulkImport(b *testing.B) {
	n := envInt("KIOSK_BULK_N", 1000)
	peerN := envInt("KIOSK_PEER_N", n)
	dir := b.TempDir()
	zipPath, sheet, sources := localapitest.MustBulkUpload(b, dir, n, "B")
	peerList := sources[:min(peerN, n)]
	env := mustServer(b, func(c *Config, _ *Deps) { c.MaxImportRows = max(5000, n) })
	rssBefore := vmHWM() // encoder models loaded, nothing imported yet

	b.ResetTimer()
	var ours time.Duration
	for it := 0; it < b.N; it++ {
		start := time.Now()
		job := env.streamImport(sheet, zipPath)
		ours = time.Since(start)
		if job.Encoded != int64(n) {
			b.Fatalf("encoded %d of %d: %+v", job.Encoded, n, job)
		}
		b.Logf("ours: %d photos in %v (%.2f photos/s), counts %v", n, ours, float64(n)/ours.Seconds(), job.Counts)
	}
	b.StopTimer()
	rss := vmHWM()
	b.ReportMetric(float64(n)/ours.Seconds(), "photos/s")
	b.ReportMetric(float64(rss)/(1<<20), "peakRSS_MB")
	b.ReportMetric(float64(rssBefore)/(1<<20), "RSS_before_MB")

	py := filepath.Join(recognizertest.RepoRoot(), "var", "venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		b.Logf("var/venv missing (scripts/venv.sh): peer not run")
		return
	}
	list := filepath.Join(dir, "peer.txt")
	os.WriteFile(list, []byte(strings.Join(peerList, "\n")), 0o644)
	out, err := exec.Command(py, filepath.Join(recognizertest.RepoRoot(), "scripts", "peer_bulk.py"), "@"+list).Output()
	if err != nil {
		b.Fatalf("peer: %v", err)
	}
	var peer struct {
		Photos          int     `json:"photos"`
		Seconds         float64 `json:"seconds"`
		PhotosPerSecond float64 `json:"photos_per_second"`
		OneFace         int     `json:"one_face"`
		PeakRSSMB       float64 `json:"peak_rss_mb"`
	}
	json.Unmarshal(out, &peer)
	b.Logf("peer (sequential face_recognition): %s", bytes.TrimSpace(out))
	b.ReportMetric(peer.PhotosPerSecond, "peer_photos/s")
	if peer.PhotosPerSecond > 0 {
		b.ReportMetric(float64(n)/ours.Seconds()/peer.PhotosPerSecond, "speedup")
	}
}

// vmHWM returns the process's peak resident set size in bytes.
func vmHWM() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// streamImport posts the sheet and a zip file streamed from disk and waits
// for the job.
func (e *testEnv) streamImport(sheet []byte, zipPath string) ImportJob {
	e.t.Helper()
	body, contentType := localapitest.ImportBody(sheet, zipPath)
	req, _ := http.NewRequest("POST", e.url+"/api/v1/import", body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+e.tech)
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	var job ImportJob
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		e.t.Fatalf("import: %d %+v", resp.StatusCode, job)
	}
	for job.State != JobDone && job.State != JobFailed {
		time.Sleep(200 * time.Millisecond)
		tok := e.mustLogin(techEmail, techPW) // tokens may expire during a long run
		e.doJSON("GET", "/api/v1/import/"+job.ID, tok, nil, &job)
	}
	if job.State != JobDone {
		e.t.Fatalf("import failed: %+v", job)
	}
	return job
}

// BenchmarkAPIConcurrent runs 200 clients, each with its own connection,
// against GET /api/v1/users (a page of 50 from 2,000 users) and GET
// /api/v1/status, and reports p50 and p99 latency per endpoint. Any error
// fails the benchmark.
func BenchmarkAPIConcurrent(b *testing.B) {
	env := mustServer(b, func(c *Config, _ *Deps) { c.TokenTTL = time.Hour })
	var recs []models.UserRecord
	for i := 0; i < 2000; i++ {
		recs = append(recs, models.UserRecord{User: models.User{ExternalID: fmt.Sprintf("A%05d", i), Email: fmt.Sprintf("a%05d@example.com", i),
			FullName: fmt.Sprintf("Api User %05d", i), Role: models.RoleTrainee, Status: models.UserActive}})
	}
	if _, err := env.db.UpsertLocalUsers(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	const clients = 200
	perClient := envInt("KIOSK_API_REQS", 50)
	for _, ep := range []string{"/api/v1/users?limit=50&offset=100", "/api/v1/status"} {
		b.Run(strings.Trim(strings.Split(ep, "?")[0], "/"), func(b *testing.B) {
			var mu sync.Mutex
			var lat []time.Duration
			errs := 0
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				var wg sync.WaitGroup
				start := make(chan struct{})
				for c := 0; c < clients; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 30 * time.Second}
						defer cl.CloseIdleConnections()
						local := make([]time.Duration, 0, perClient)
						bad := 0
						<-start
						for r := 0; r < perClient; r++ {
							req, _ := http.NewRequest("GET", env.url+ep, nil)
							req.Header.Set("Authorization", "Bearer "+env.tech)
							t0 := time.Now()
							resp, err := cl.Do(req)
							if err == nil {
								_, err = io.Copy(io.Discard, resp.Body)
								resp.Body.Close()
								if resp.StatusCode != 200 {
									err = fmt.Errorf("status %d", resp.StatusCode)
								}
							}
							local = append(local, time.Since(t0))
							if err != nil {
								bad++
							}
						}
						mu.Lock()
						lat = append(lat, local...)
						errs += bad
						mu.Unlock()
					}()
				}
				close(start)
				wg.Wait()
			}
			b.StopTimer()
			if errs > 0 {
				b.Fatalf("%d errors", errs)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(p(0.5), "p50_ms")
			b.ReportMetric(p(0.99), "p99_ms")
			b.ReportMetric(float64(len(lat)), "requests")
			b.Logf("%s: %d requests from %d clients on %d cores: p50 %.2f ms, p99 %.2f ms", ep, len(lat), clients, runtime.NumCPU(), p(0.5), p(0.99))
		})
	}
}
