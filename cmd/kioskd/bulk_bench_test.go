package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/localapi"
	"github.com/kioskd/kioskd/localapi/localapitest"
	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
)

// bulkChildEnv makes the test binary run kioskd on the data dir it names,
// for BenchmarkBulkImportDaemon, until its stdin closes.
const bulkChildEnv = "KIOSK_BULK_CHILD"

// bulkTech is the technician account the child creates for the benchmark.
const (
	bulkTechEmail = "bulk.tech@example.org"
	bulkTechPW    = "bench-only technician 7"
)

// bulkChild runs kioskd on dir with a technician account, prints
// "url=URL", and closes when stdin does.
func bulkChild(dir string) int {
	m := newBenchChildMain(dir)
	m.Config.API.MaxImportRows = 20_000
	ctx := context.Background()
	if err := m.Run(ctx); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	hash, err := password.HashPassword(bulkTechPW)
	if err == nil {
		err = m.DB.PutAccount(ctx, &models.LocalAccount{Email: bulkTechEmail, Role: models.AccountTechnician,
			Source: models.SourceLocal, PasswordHash: hash})
	}
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Printf("url=%s\n", m.API.URL())
	io.Copy(io.Discard, os.Stdin)
	_ = m.Close()
	return 0
}

// BenchmarkBulkImportDaemon measures kioskd's own peak RSS (VmHWM of the
// daemon process, apart from the client) while it enrols KIOSK_BULK_N
// (default 1000) photos through POST /api/v1/import, each row its own zip
// entry so every photo is encoded. Target: <= 500 MB.
//
//	go test ./cmd/kioskd -run '^$' -bench BulkImportDaemon -benchtime 1x -timeout 60m
func BenchmarkBulkImportDaemon(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("KIOSK_BULK_N")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	zipPath, sheet, _ := localapitest.MustBulkUpload(b, dir, n, "D")
	for b.Loop() {
		data := filepath.Join(b.TempDir(), "data")
		cmd := exec.Command(os.Args[0], "-test.run", "^$")
		cmd.Env = append(os.Environ(), bulkChildEnv+"="+data, "KIOSK_MODELS_DIR="+recognizertest.ModelsDir(b))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		url, ok := strings.CutPrefix(strings.TrimSpace(line), "url=")
		if err != nil || !ok {
			cmd.Process.Kill()
			b.Fatalf("child: %q %v", line, err)
		}
		ready := procHWM(cmd.Process.Pid)
		start := time.Now()
		job := postBulkImport(b, url, sheet, zipPath)
		took := time.Since(start)
		peak := procHWM(cmd.Process.Pid)
		stdin.Close()
		cmd.Wait()
		if job.Encoded != int64(n) {
			b.Fatalf("encoded %d of %d: %+v", job.Encoded, n, job)
		}
		b.Logf("%d photos in %v (%.2f photos/s); daemon RSS %d MB ready, %d MB peak; counts %v",
			n, took.Round(time.Millisecond), float64(n)/took.Seconds(), ready>>10, peak>>10, job.Counts)
		b.ReportMetric(float64(n)/took.Seconds(), "photos/s")
		b.ReportMetric(float64(peak)/1024, "daemon_peakRSS_MB")
		b.ReportMetric(float64(ready)/1024, "daemon_readyRSS_MB")
	}
}

// postBulkImport logs in, streams the sheet and the zip from disk to
// POST /api/v1/import and polls the job until it ends.
func postBulkImport(b *testing.B, url string, sheet []byte, zipPath string) localapi.ImportJob {
	b.Helper()
	login := func() string {
		body, _ := json.Marshal(map[string]string{"email": bulkTechEmail, "password": bulkTechPW})
		resp, err := http.Post(url+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var lr localapi.LoginResponse
		if err := json.NewDecoder(resp.Body).Decode(&lr); err != nil || lr.Token == "" {
			b.Fatalf("login: %d %v", resp.StatusCode, err)
		}
		return lr.Token
	}
	tok := login()
	body, contentType := localapitest.ImportBody(sheet, zipPath)
	req, _ := http.NewRequest("POST", url+"/api/v1/import", body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var job localapi.ImportJob
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("import: %d %+v", resp.StatusCode, job)
	}
	for job.State != localapi.JobDone && job.State != localapi.JobFailed {
		time.Sleep(500 * time.Millisecond)
		req, _ := http.NewRequest("GET", url+"/api/v1/import/"+job.ID, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode == http.StatusUnauthorized { // the token expired during a long run
			resp.Body.Close()
			tok = login()
			continue
		}
		json.NewDecoder(resp.Body).Decode(&job)
		resp.Body.Close()
	}
	if job.State != localapi.JobDone {
		b.Fatalf("import failed: %+v", job)
	}
	return job
}

// procHWM returns a process's peak resident set size in KiB.
func procHWM(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			v, _ := strconv.Atoi(strings.Fields(line)[1])
			return v
		}
	}
	return 0
}
