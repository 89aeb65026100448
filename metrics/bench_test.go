package metrics_test

import (
	"testing"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/metrics"
)

// BenchmarkMetrics_PerDelivery measures what the metrics add to one
// delivery on the engine's hot paths: its publish, its attempt, its end,
// and its share of a recorder and a publisher commit of 64. (A delivery
// costs Herald about 250 µs of CPU end to end; see docs/performance.md.)
func BenchmarkMetrics_PerDelivery(b *testing.B) {
	m := metrics.New(metrics.Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.EventsPublished(1)
		m.AttemptFinished(destination.HTTP, destination.Delivered, 3*time.Millisecond)
		m.DeliveryFinished("SUCCEEDED", 20*time.Millisecond)
		if i++; i%64 == 0 {
			m.RecorderCommit(64, 2*time.Millisecond, nil)
			m.PublisherCommit(64, 2*time.Millisecond, nil)
		}
	}
}
