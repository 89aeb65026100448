package dispatch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/dispatch/drivertest"
)

// openSQLite opens a fresh SQLite store in a temporary directory.
func openSQLite(tb testing.TB) *db.DB {
	tb.Helper()
	d, err := db.Open(context.Background(), db.Config{Path: filepath.Join(tb.TempDir(), "h.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func TestSQLiteDriver_Conformance(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		New: func(t *testing.T) drivertest.Harness {
			d := openSQLite(t)
			return drivertest.Harness{
				Client: d.Client,
				Open:   func() dispatch.Driver { return dispatch.NewSQLiteDriver(d.Write, d.Read) },
			}
		},
	})
}

// seedDue fills a fresh database with n due deliveries of one endpoint,
// all due at the same instant (as the deliveries of one published batch
// are).
func seedDue(tb testing.TB, n int) (*db.DB, string) {
	tb.Helper()
	ctx := context.Background()
	d := openSQLite(tb)
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
			VALUES (?, ?, ?, 'order.created', 'PENDING', 0, ?, 'SCHEDULED', 'app_1', 'ep_1', ?)`, fmt.Sprintf("dlv_%026d", i), now, now, now, ev); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return d, "ep_1"
}

// BenchmarkSQLiteDriver_Claim64 measures one claim of 64 deliveries and
// their release.
func BenchmarkSQLiteDriver_Claim64(b *testing.B) {
	d, ep := seedDue(b, 10000)
	drv := dispatch.NewSQLiteDriver(d.Write, d.Read)
	defer drv.Close()
	ctx := context.Background()
	now := time.Now().UTC().Add(time.Second)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		jobs, err := drv.Claim(ctx, dispatch.ClaimParams{Worker: "w", EndpointID: ep, Now: now, Lease: time.Minute, Limit: 64})
		if err != nil || len(jobs) != 64 {
			b.Fatalf("claimed %d: %v", len(jobs), err)
		}
		leases := make([]dispatch.Lease, len(jobs))
		for i, j := range jobs {
			leases[i] = j.Lease
		}
		if err := drv.Release(ctx, leases, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSQLiteDriver_DueProbeVisitsOnlyEndpointsWithUnfinishedDeliveries
// proves that the engine's due probe walks the due index, which holds
// only unfinished deliveries, instead of every endpoint: soft-deleted and
// idle endpoints, however many a customer piles up, cost it nothing.
func TestSQLiteDriver_DueProbeVisitsOnlyEndpointsWithUnfinishedDeliveries(t *testing.T) {
	d, ep := seedDue(t, 3)
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range 2000 {
		if _, err := d.Write.ExecContext(ctx, `INSERT INTO endpoints (id, created_at, updated_at, deleted_at, name, description, url, event_types, auth, retry_policy, timeout, is_active, secret,
		consecutive_failures, failure_count, success_count, app_id) VALUES (?, ?, ?, ?, 'e', '', 'http://x', '["*"]', '{}', '{}', 1, true, 's', 0, 0, 0, 'app_1')`,
			fmt.Sprintf("ep_deleted_%d", i), now, now, now); err != nil {
			t.Fatal(err)
		}
	}
	drv := dispatch.NewSQLiteDriver(d.Write, d.Read)
	ids, err := drv.Due(ctx, now.Add(time.Second))
	if err != nil || len(ids) != 1 || ids[0] != ep {
		t.Fatalf("Due = %v, %v; want [%s]", ids, err, ep)
	}
	rows, err := d.Read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+dispatch.DueProbeSQLite, now)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	for _, step := range plan {
		scan, ok := strings.CutPrefix(step, "SCAN ")
		if !ok {
			continue
		}
		if scan != "CONSTANT ROW" && scan != "walk" && scan != "deliveries USING COVERING INDEX delivery_due" {
			t.Fatalf("the due probe reads more than the due index: %q in plan %q", step, plan)
		}
	}
}
