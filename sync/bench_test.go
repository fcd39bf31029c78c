package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	ksync "github.com/kioskd/kioskd/sync"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

func benchUsers(n, encs int) []models.UserRecord {
	recs := make([]models.UserRecord, n)
	for i := range recs {
		recs[i] = randomUser(fmt.Sprintf("b%06d", i), 1, encs, i)
	}
	return recs
}

// BenchmarkApplyUpserts10k pushes 10,000 users with 2 encodings each (100
// per message) through the broker and measures until all are applied.
// Goal: >= 2,000 users/s.
func BenchmarkApplyUpserts10k(b *testing.B) {
	recs := benchUsers(10000, 2)
	br := synctest.MustMosquitto(b)
	for _, dtype := range []string{"json", "float32"} {
		b.Run(dtype, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				site := fmt.Sprintf("bench-%s-%d", dtype, i)
				reg := mustRegistry(b, br.URL, func(c *registrysim.Config) { c.Dtype, c.Site = dtype, site })
				cfg := testConfig(br.URL, "kiosk-"+site)
				cfg.SiteID = site
				k := mustKiosk(b, cfg, nil)
				waitConnected(b, k)
				waitFor(b, 15*time.Second, "initial snapshot", func() bool { return k.client.Status().Counters.Snapshots == 1 })
				start := time.Now()
				b.StartTimer()
				if err := reg.Push(context.Background(), recs, 100); err != nil {
					b.Fatal(err)
				}
				waitFor(b, 5*time.Minute, "users applied", func() bool { return k.client.Status().SiteSeq == reg.Seq() })
				b.StopTimer()
				b.ReportMetric(float64(len(recs))/time.Since(start).Seconds(), "users/s")
			}
		})
	}
}

// BenchmarkReplay100k buffers 100,000 events while offline, then connects
// and measures until central has acked every one. Goal: >= 2,000 events/s
// acked end to end, RSS bounded.
func BenchmarkReplay100k(b *testing.B) {
	const n = 100000
	br := synctest.MustMosquitto(b)
	reg := mustRegistry(b, br.URL, nil)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := bolttest.MustOpenDB(b)
		for j := 0; j < n; j += 1000 {
			msgs := make([]*models.OutboxMessage, 1000)
			for m := range msgs {
				id := fmt.Sprintf("ev-%d-%06d", i, j+m)
				msgs[m] = &models.OutboxMessage{Kind: models.OutboxAttendance, Key: id,
					Payload: []byte(`{"id":"` + id + `","user_id":"u1","time":"2025-03-14T08:00:00Z","kiosk_id":"k","distance":0.4,"sync_state":"pending"}`)}
			}
			if err := db.Enqueue(ctx, msgs...); err != nil {
				b.Fatal(err)
			}
		}
		rssBefore := rssKB("VmRSS")
		before := reg.Stats().Received
		start := time.Now()
		b.StartTimer()
		k := mustKiosk(b, testConfig(br.URL, fmt.Sprintf("kiosk-replay-%d", i)), db)
		waitFor(b, 10*time.Minute, "outbox drained", func() bool { l, _ := db.OutboxLen(ctx); return l == 0 })
		b.StopTimer()
		el := time.Since(start)
		if got := reg.Stats().Received - before; got != n {
			b.Fatalf("central received %d, want %d", got, n)
		}
		b.ReportMetric(n/el.Seconds(), "events/s")
		b.ReportMetric(float64(rssKB("VmHWM"))/1024, "peakRSS_MB")
		b.ReportMetric(float64(rssKB("VmRSS")-rssBefore)/1024, "RSSgrowth_MB")
		k.client.Close()
	}
}

// BenchmarkFleet50Snapshot: 50 kiosks on one broker each receive a
// 10,000-user snapshot (2 encodings per user); reports the time until all
// hold it and the broker's CPU time and peak RSS.
func BenchmarkFleet50Snapshot(b *testing.B) {
	const kiosks, users = 50, 10000
	recs := benchUsers(users, 2)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := synctest.MustMosquitto(b)
		reg := mustRegistry(b, br.URL, func(c *registrysim.Config) { c.Dtype = "float32" })
		reg.Set(recs...)
		reg.SetSeq(1)
		cpu0 := procCPU(br.PID())
		start := time.Now()
		b.StartTimer()
		fleet := make([]*kiosk, kiosks)
		for j := range fleet {
			cfg := testConfig(br.URL, fmt.Sprintf("fleet-%02d", j))
			cfg.SnapshotTimeout = 5 * time.Minute // the registry answers 50 requests in turn
			fleet[j] = mustKiosk(b, cfg, nil)
		}
		for _, k := range fleet {
			waitFor(b, 20*time.Minute, "fleet converged", func() bool { return k.client.Status().Counters.Snapshots >= 1 })
		}
		b.StopTimer()
		el := time.Since(start)
		for _, k := range fleet {
			if n, _ := k.db.CountUsers(context.Background()); n != users {
				b.Fatalf("%s holds %d users", k.cfg.DeviceID, n)
			}
		}
		b.ReportMetric(el.Seconds(), "s_to_converge")
		b.ReportMetric((procCPU(br.PID()) - cpu0).Seconds(), "broker_cpu_s")
		b.ReportMetric(float64(procRSSKB(br.PID(), "VmHWM"))/1024, "broker_peakRSS_MB")
		for _, k := range fleet {
			k.client.Close()
		}
	}
}

func rssKB(field string) int { return procRSSKB(os.Getpid(), field) }

func procRSSKB(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// procCPU returns the user+system CPU time of pid (clock ticks at 100 Hz).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkCheckDownUsers measures the contract check of one users message
// (100 users x 2 encodings) beside the decoding the kiosk does anyway.
func BenchmarkCheckDownUsers(b *testing.B) {
	c, err := ksync.LoadContract()
	if err != nil {
		b.Fatal(err)
	}
	topic := ksync.Topics{Prefix: "kiosk", Site: testSite}.Users()
	recs := benchUsers(100, 2)
	for _, dtype := range []string{"json", "float32"} {
		m := ksync.UsersMessage{Schema: 1, Type: ksync.TypeUsers, Site: testSite, Seq: 1, Users: make([]ksync.WireUser, len(recs))}
		for i := range recs {
			m.Users[i] = ksync.EncodeUserRecord(&recs[i], dtype)
		}
		payload, _ := json.Marshal(m)
		b.Run("check/"+dtype, func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if bad, err := c.CheckDown(topic, payload, 1<<20); err != nil || len(bad) != 0 {
					b.Fatal(err, bad)
				}
			}
		})
		b.Run("decode/"+dtype, func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				um, err := ksync.DecodeUsersMessage(payload, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				for i := range um.Users {
					if _, err := ksync.DecodeUserRecord(&um.Users[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
