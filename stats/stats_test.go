package stats_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/stats"
)

func TestLatencyBin_BoundsGrowBySqrtTwo(t *testing.T) {
	tests := []struct {
		d   time.Duration
		bin int
	}{
		{0, 0}, {time.Millisecond, 0}, {1100 * time.Microsecond, 1}, {1414 * time.Microsecond, 1}, {2 * time.Millisecond, 2},
		{100 * time.Millisecond, 14}, {time.Second, 20}, {30 * time.Second, 30}, {time.Hour, stats.LatencyBins - 1},
	}
	for _, tt := range tests {
		if got := stats.LatencyBin(tt.d); got != tt.bin {
			t.Errorf("LatencyBin(%s) = %d, want %d", tt.d, got, tt.bin)
		}
		if tt.bin < stats.LatencyBins-1 && tt.d > stats.BinUpper(tt.bin) {
			t.Errorf("%s is above the upper bound %s of its bin %d", tt.d, stats.BinUpper(tt.bin), tt.bin)
		}
	}
}

func TestPercentile_IsWithinTheBinOfTheTrueValue(t *testing.T) {
	var h [stats.LatencyBins]int64
	// 1..1000 ms, one attempt each: the true pN is N% of 1000 ms.
	for ms := 1; ms <= 1000; ms++ {
		h[stats.LatencyBin(time.Duration(ms)*time.Millisecond)]++
	}
	for _, q := range []float64{.5, .95, .99} {
		got := stats.Percentile(&h, q).Seconds() * 1000
		want := q * 1000
		if math.Abs(got-want)/want > 0.2 {
			t.Errorf("p%.0f = %.1f ms, want %.0f ms within 20%%", q*100, got, want)
		}
	}
	var empty [stats.LatencyBins]int64
	if p := stats.Percentile(&empty, .5); p != 0 {
		t.Errorf("p50 of nothing = %s, want 0", p)
	}
}

// BenchmarkRead_ThirtyDaysAtAMillionADay measures the queries behind
// Endpoint.stats and App.stats on a database holding the roll-ups of 30
// days at 1,000,000 deliveries a day over 20 endpoints (hourly roll-ups
// for 30 days, per-minute ones for the last 48 hours, per endpoint and
// per app). Run: go test -run '^$' -bench Read ./stats
func BenchmarkRead_ThirtyDaysAtAMillionADay(b *testing.B) {
	ctx := context.Background()
	d, err := db.Open(ctx, db.Config{Path: filepath.Join(b.TempDir(), "h.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const endpoints = 20
	now := time.Now().UTC()
	perHour := int64(1_000_000 / 24 / endpoints)
	tx, err := d.Write.Begin()
	if err != nil {
		b.Fatal(err)
	}
	ins, err := tx.Prepare(`INSERT INTO delivery_stats (app_id, endpoint_id, resolution, bucket, attempts_succeeded, attempts_retryable,
		deliveries_succeeded, deliveries_failed, duration_ms, latency_10, latency_14, latency_18) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	rows := 0
	add := func(ep string, res int64, at time.Time, n int64) {
		ok := n * 98 / 100
		if _, err := ins.Exec("app_1", ep, res, at.Unix()/res*res, ok, n-ok, ok, (n-ok)/4, n*40, n*60/100, n*35/100, n*5/100); err != nil {
			b.Fatal(err)
		}
		rows++
	}
	for h := 0; h < 30*24; h++ {
		at := now.Add(-time.Duration(h) * time.Hour)
		for e := range endpoints {
			add(fmt.Sprintf("ep_%02d", e), 3600, at, perHour)
		}
		add("", 3600, at, perHour*endpoints)
	}
	for m := 0; m < 48*60; m++ {
		at := now.Add(-time.Duration(m) * time.Minute)
		for e := range endpoints {
			add(fmt.Sprintf("ep_%02d", e), 60, at, perHour/60)
		}
		add("", 60, at, perHour*endpoints/60)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d roll-up rows", rows)
	s := &stats.Store{DB: d.Read, Dialect: d.Dialect()}
	for _, q := range []struct {
		name           string
		ep             string
		window, bucket time.Duration
	}{
		{"app/30d/1d", "", 30 * 24 * time.Hour, 24 * time.Hour},
		{"endpoint/30d/1h", "ep_07", 30 * 24 * time.Hour, time.Hour},
		{"endpoint/24h/1m", "ep_07", 24 * time.Hour, time.Minute},
		{"app/24h/1m", "", 24 * time.Hour, time.Minute},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				r, err := s.Read(ctx, stats.Query{AppID: "app_1", EndpointID: q.ep, Window: q.window, Bucket: q.bucket, Now: now})
				if err != nil {
					b.Fatalf("read: %v", err)
				}
				if r.Total.Attempts() == 0 {
					b.Fatal("read no attempts")
				}
			}
		})
	}
}
