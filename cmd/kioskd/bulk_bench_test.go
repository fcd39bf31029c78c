package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/kioskd/kioskd/localapi"
	"github.com/kioskd/kioskd/models"
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
	m := NewMain()
	m.Getenv = func(string) string { return "" }
	m.Config.DataDir = dir
	m.Config.Models.Dir = os.Getenv("KIOSK_MODELS_DIR")
	m.Config.API.Addr = "127.0.0.1:0"
	m.Config.API.MaxImportRows = 20_000
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m.Stderr = io.Discard
	ctx := context.Background()
	if err := m.Run(ctx); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	hash, err := models.HashPassword(bulkTechPW)
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

// bulkPhotos are the enrolment-sized shared photos (320x240 to 970x2204),
// as in localapi's BenchmarkBulkImport.
var bulkPhotos = []string{
	"people/obama/1.jpg", "people/obama/2.jpg", "people/obama/3_small.jpg", "people/biden/1.jpg", "people/biden/2.jpg",
	"people/kit_harington/1.jpg", "people/kit_harington/2.jpg", "people/rose_leslie/1.jpg", "people/rose_leslie/2.jpg",
	"people/alex_lacamoire/1.jpg", "people/alex_lacamoire/2.png", "people/lin_manuel_miranda/1.png",
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
	zipPath, sheet := mustBulkUpload(b, dir, n)
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

// mustBulkUpload writes the photos zip (one stored entry per row) and
// returns its path and the spreadsheet.
func mustBulkUpload(b *testing.B, dir string, n int) (string, []byte) {
	b.Helper()
	zipPath := filepath.Join(dir, "photos.zip")
	zf, err := os.Create(zipPath)
	if err != nil {
		b.Fatal(err)
	}
	zw := zip.NewWriter(zf)
	f := excelize.NewFile()
	sw, _ := f.NewStreamWriter("Sheet1")
	sw.SetRow("A1", []any{"External ID", "Email", "Full name", "Role", "Department", "Class group", "Photo file name"})
	data := map[string][]byte{}
	for i := 0; i < n; i++ {
		rel := bulkPhotos[i%len(bulkPhotos)]
		if data[rel] == nil {
			data[rel], err = os.ReadFile(recognizertest.Testdata(b, rel))
			if err != nil {
				b.Fatal(err)
			}
		}
		name := fmt.Sprintf("p%05d%s", i, filepath.Ext(rel))
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		w.Write(data[rel])
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		sw.SetRow(cell, []any{fmt.Sprintf("D%05d", i), fmt.Sprintf("d%05d@example.com", i), fmt.Sprintf("Daemon Bulk %05d", i),
			"trainee", "", "", name})
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	zf.Close()
	sw.Flush()
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		b.Fatal(err)
	}
	return zipPath, buf.Bytes()
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
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		w, _ := mw.CreateFormFile("sheet", "class.xlsx")
		w.Write(sheet)
		w, _ = mw.CreateFormFile("photos", "photos.zip")
		f, err := os.Open(zipPath)
		if err == nil {
			_, err = io.Copy(w, f)
			f.Close()
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest("POST", url+"/api/v1/import", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
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

// procHWM returns another process's peak resident set size in KiB.
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
