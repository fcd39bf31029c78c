package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kioskd/kioskd/device"
	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	ksync "github.com/kioskd/kioskd/sync"
)

// mustScrape fetches base/metrics (loopback needs no token) and returns
// each series, as written before its value, with that value.
func mustScrape(tb testing.TB, base string) map[string]float64 {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("/metrics: %d", resp.StatusCode)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			tb.Fatalf("/metrics: bad line %q", line)
		}
		series[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return series
}

// mustSeries returns the value of a series that must be present.
func mustSeries(tb testing.TB, series map[string]float64, name string) float64 {
	tb.Helper()
	v, ok := series[name]
	if !ok {
		tb.Fatalf("/metrics has no %s", name)
	}
	return v
}

// TestKioskMetrics_BoundedLabels: a gate problem the metrics do not know
// is counted as "other", never as a new label value.
func TestKioskMetrics_BoundedLabels(t *testing.T) {
	k := newKioskMetrics(func() *device.Pipeline { return nil }, func() *ksync.Client { return nil }, bolttest.MustOpenDB(t), time.Now)
	k.observeGate("")
	k.observeGate(models.FeedbackTooDark)
	k.observeGate("a-problem-added-later")
	k.observeRecord(&models.AttendanceEvent{Time: time.Unix(100, 0)}, time.Unix(99, 500e6))
	k.observeRecord(&models.AttendanceEvent{Time: time.Unix(100, 0)}, time.Time{}) // no first frame: not timed
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(k.gate, k.toAttn)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 2 {
		t.Fatalf("gather: %d families, %v", len(mfs), err)
	}
	gate := map[string]float64{}
	for _, m := range mfs[0].GetMetric() {
		gate[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"passed": 1, "too_dark": 1, "other": 1}
	for _, o := range gateOutcomes {
		want[string(o)] += 0
	}
	if len(gate) != len(want) {
		t.Errorf("gate outcomes %v, want %v", gate, want)
	}
	for outcome, n := range want {
		if gate[outcome] != n {
			t.Errorf("gate outcome %s = %v, want %v", outcome, gate[outcome], n)
		}
	}
	h := mfs[1].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 0.5 {
		t.Fatalf("time to attendance: %v samples, sum %v; want one of 0.5 s", h.GetSampleCount(), h.GetSampleSum())
	}
}
