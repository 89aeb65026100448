package dispatch

import (
	"context"
	"github.com/heraldhq/herald/destination"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
)

// BenchmarkStatsRollup_Batch64 measures what the statistics roll-ups add
// to one recorder transaction of 64 results of one endpoint: rolling them
// up and upserting the endpoint's and the app's minute and hour buckets
// in SQLite (reported per delivery as ns/delivery).
func BenchmarkStatsRollup_Batch64(b *testing.B) {
	ctx := context.Background()
	d, err := db.Open(ctx, db.Config{Path: filepath.Join(b.TempDir(), "h.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	drv := NewSQLiteDriver(d.Write, d.Read)
	defer drv.Close()
	now := time.Now()
	out := &commitOutput{}
	for i := range 64 {
		out.results = append(out.results, &result{job: &job{Job: Job{AppID: "app_1", Lease: Lease{EndpointID: "ep_1"}}},
			resp: &destination.Result{Outcome: destination.Delivered, Started: now, Completed: now.Add(time.Duration(i) * time.Millisecond)}})
		out.changes = append(out.changes, DeliveryChange{Status: "SUCCEEDED"})
	}
	for _, withStats := range []bool{false, true} {
		name := "commit-only"
		if withStats {
			name = "commit+rollup"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				tx, err := drv.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if withStats {
					if err := tx.AddStats(ctx, statsRows(out)); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/delivery")
		})
	}
}
