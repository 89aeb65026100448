package dispatch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/dispatch"
)

// seedDue fills a fresh database with n due deliveries of one endpoint,
// each due step after the one before (0: all due at the same instant, as
// the deliveries of one published batch are).
func seedDue(tb testing.TB, n int, step time.Duration) (*db.DB, string) {
	tb.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, db.Config{Path: filepath.Join(tb.TempDir(), "h.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	now := time.Now().UTC()
	exec := func(q string, args ...any) {
		if _, err := d.Write.ExecContext(ctx, q, args...); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO apps (id, created_at, updated_at, name, accept_unknown_event_types) VALUES ('app_1', ?, ?, 'a', false)`, now, now)
	exec(`INSERT INTO endpoints (id, created_at, updated_at, name, description, url, event_types, auth, retry_policy, timeout, is_active, secret,
		consecutive_failures, failure_count, success_count, app_id) VALUES ('ep_1', ?, ?, 'e', '', 'http://x', '["*"]', '{}', '{}', 1, true, 's', 0, 0, 0, 'app_1')`, now, now)
	tx, _ := d.Write.Begin()
	for i := 0; i < n; i++ {
		ev := fmt.Sprintf("evt_%026d", i)
		if _, err := tx.Exec(`INSERT INTO events (id, event_type, payload, delivery_count, created_at, app_id) VALUES (?, 'order.created', '{"a":1}', 1, ?, 'app_1')`, ev, now); err != nil {
			tb.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO deliveries (id, created_at, updated_at, event_type, status, attempt_count, next_attempt_at, next_trigger, app_id, endpoint_id, event_id)
			VALUES (?, ?, ?, 'order.created', 'PENDING', 0, ?, 'SCHEDULED', 'app_1', 'ep_1', ?)`, fmt.Sprintf("dlv_%026d", i), now, now, now.Add(time.Duration(i)*step), ev); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return d, "ep_1"
}

func BenchmarkSQLClaimer_Claim64(b *testing.B) {
	d, ep := seedDue(b, 200_000, time.Nanosecond)
	c := dispatch.NewSQLClaimer(d.Write, d.Read)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		jobs, err := c.Claim(ctx, "w", ep, time.Now().UTC().Add(time.Hour), time.Minute, 64, nil, dispatch.Cursor{})
		if err != nil || len(jobs) != 64 {
			b.Fatalf("claimed %d: %v", len(jobs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/delivery")
}

// TestSQLClaimer_CursorResumesWithinOneInstant claims, without a held list,
// from the position of the last delivery claimed: every delivery comes
// exactly once, although all are due at the same instant.
func TestSQLClaimer_CursorResumesWithinOneInstant(t *testing.T) {
	d, ep := seedDue(t, 250, 0)
	c := dispatch.NewSQLClaimer(d.Write, d.Read)
	ctx := context.Background()
	now := time.Now().UTC().Add(time.Hour)
	seen := map[string]bool{}
	var after dispatch.Cursor
	for range 10 {
		jobs, err := c.Claim(ctx, "w", ep, now, time.Minute, 64, nil, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) == 0 {
			break
		}
		for _, j := range jobs {
			if seen[j.DeliveryID] {
				t.Fatalf("%s claimed twice", j.DeliveryID)
			}
			seen[j.DeliveryID] = true
		}
		after = jobs[len(jobs)-1].Position
	}
	if len(seen) != 250 {
		t.Fatalf("claimed %d deliveries, want all 250", len(seen))
	}
}

// TestSQLClaimer_SkipsHeldDeliveries claims from the start with part of
// the backlog held: the held deliveries are not returned, the rest are, in
// due order.
func TestSQLClaimer_SkipsHeldDeliveries(t *testing.T) {
	d, ep := seedDue(t, 10, time.Millisecond)
	c := dispatch.NewSQLClaimer(d.Write, d.Read)
	held := []string{fmt.Sprintf("dlv_%026d", 0), fmt.Sprintf("dlv_%026d", 3)}
	jobs, err := c.Claim(context.Background(), "w", ep, time.Now().UTC().Add(time.Hour), time.Minute, 5, held, dispatch.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		got = append(got, j.DeliveryID[len(j.DeliveryID)-1:])
	}
	if want := []string{"1", "2", "4", "5", "6"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("claimed %v, want %v", got, want)
	}
}
