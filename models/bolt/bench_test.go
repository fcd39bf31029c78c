package bolt_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// buildStore writes nUsers central users with nEnc encodings each.
func buildStore(tb testing.TB, path string, nUsers, nEnc int) {
	tb.Helper()
	ctx := context.Background()
	db := bolt.NewDB(path)
	db.NoSync = true
	if err := db.Open(); err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 5000
	for start := 0; start < nUsers; start += batch {
		recs := make([]models.UserRecord, 0, batch)
		for i := start; i < min(start+batch, nUsers); i++ {
			recs = append(recs, bolttest.NewUserRecord(rng, fmt.Sprintf("user%06d", i), 1, nEnc))
		}
		if _, err := db.ApplyUserRecords(ctx, recs); err != nil {
			tb.Fatal(err)
		}
	}
}

// gallery stands in for recognizer's matcher: contiguous float32 storage
// and a user index per row, the layout it builds at startup.
type gallery struct {
	vecs  []float32
	owner []int32
	users map[string]int32
	names []string
}

func (g *gallery) add(e *models.FaceEncoding) {
	idx, ok := g.users[e.UserID]
	if !ok {
		idx = int32(len(g.names))
		g.users[e.UserID] = idx
		g.names = append(g.names, e.UserID)
	}
	g.vecs = append(g.vecs, e.Descriptor[:]...)
	g.owner = append(g.owner, idx)
}

// readProcStatus returns a field of /proc/self/status in MB (-1 if absent).
func readProcStatus(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

// BenchmarkLoad50kUsers is kioskd's startup path: open the store (key,
// migrations, consistency check) and load 50,000 users x 2 encodings into a
// matcher-shaped gallery. Target: <= 3 s, peak RSS <= 300 MB.
func BenchmarkLoad50kUsers(b *testing.B) {
	path := filepath.Join(b.TempDir(), "load.db")
	buildStore(b, path, 50_000, 2)
	debug.FreeOSMemory()
	baseRSS := readProcStatus("VmRSS")
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	// Sample RSS during the load (VmHWM would include building the file).
	peak := make(chan float64)
	stop := make(chan struct{})
	go func() {
		var p float64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			p = max(p, readProcStatus("VmRSS"))
			select {
			case <-stop:
				peak <- p
				return
			case <-t.C:
			}
		}
	}()
	ctx := context.Background()
	cpu0 := cpuTime()
	b.ResetTimer()
	var n int
	var openTime time.Duration
	for range b.N {
		b.StopTimer()
		runtime.GC() // the previous iteration's gallery is garbage
		b.StartTimer()
		start := time.Now()
		db := bolt.NewDB(path)
		if err := db.Open(); err != nil {
			b.Fatal(err)
		}
		openTime += time.Since(start)
		g := &gallery{vecs: make([]float32, 0, 100_000*models.DescriptorSize), owner: make([]int32, 0, 100_000), users: make(map[string]int32, 50_000)}
		if err := db.ForEachEncoding(ctx, func(e *models.FaceEncoding) error {
			g.add(e)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		n = len(g.owner)
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n != 100_000 {
		b.Fatalf("loaded %d encodings", n)
	}
	b.ReportMetric(float64(openTime.Milliseconds())/float64(b.N), "open-ms/op")
	close(stop)
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(<-peak, "peak-RSS-MB")
	b.ReportMetric(baseRSS, "base-RSS-MB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MB")
}

// BenchmarkApplyUserRecords10k applies one batch of 10,000 users x 2
// encodings with real fsync. Target: >= 2,000 users/s.
func BenchmarkApplyUserRecords10k(b *testing.B) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		db := bolt.NewDB(filepath.Join(b.TempDir(), fmt.Sprintf("apply%d.db", i)))
		if err := db.Open(); err != nil {
			b.Fatal(err)
		}
		recs := make([]models.UserRecord, 10_000)
		for j := range recs {
			recs[j] = bolttest.NewUserRecord(rng, fmt.Sprintf("user%06d", j), 1, 2)
		}
		b.StartTimer()
		if _, err := db.ApplyUserRecords(ctx, recs); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(10_000*b.N)/b.Elapsed().Seconds(), "users/s")
}

// BenchmarkRecordAttendance measures one durable event + outbox write.
func BenchmarkRecordAttendance(b *testing.B) {
	ctx := context.Background()
	db := bolt.NewDB(filepath.Join(b.TempDir(), "att.db"))
	if err := db.Open(); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	t0 := bolttest.FixedNow
	b.ResetTimer()
	for i := range b.N {
		if err := db.RecordAttendance(ctx, &models.AttendanceEvent{UserID: "u", Time: t0.Add(time.Duration(i)), KioskID: "k", Distance: 0.4}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrub100k measures the file rewrite after a deletion, with
// 50,000 users x 2 encodings stored.
func BenchmarkScrub100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "scrub.db")
	buildStore(b, path, 50_000, 2)
	db := bolt.NewDB(path)
	if err := db.Open(); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := db.DeleteUser(ctx, fmt.Sprintf("user%06d", i)); err != nil {
			b.Fatal(err)
		}
		if err := db.Scrub(); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime returns the process's user+system CPU time: on a shared machine
// it says more about cost than wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
