package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
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
