package dispatch_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/dispatch/drivertest"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

func TestPostgresDriver_Conformance(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		Shared: true,
		New: func(t *testing.T) drivertest.Harness {
			d, err := db.Open(context.Background(), db.Config{DSN: pgtest.New(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return drivertest.Harness{
				Client: d.Client,
				Open:   func() dispatch.Driver { return dispatch.NewPostgresDriver(d.Pool) },
			}
		},
	})
}

// PostgreSQL may run a prepared statement with a generic plan after five
// runs, and keeps that plan on the connection until the table's
// statistics change. A generic plan guesses a LIMIT $n at a tenth of the
// table; one made while the table was empty or small believes any scan of
// it is cheap. The engine's claims, results, releases and cancels must
// stay on indexes in both cases: a join with the first guess read every delivery (each claim
// slower as the table grew), and a plan kept from an empty table read
// every delivery to lease 32 of them, until autovacuum's next ANALYZE (a
// minute or more: the benchmark's single-endpoint throughput fell from
// 3,800 to 1,150 deliveries/s in the runs it caught). Every connection
// here is forced to generic plans.
func TestPostgresDriver_GenericPlansReadNoTableWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		// planEmpty: the statements are planned before the table is
		// filled, and the table is not analysed after.
		planEmpty bool
	}{
		{name: "planned on the analysed table"},
		{name: "planned on the empty table", planEmpty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testGenericPlans(t, tc.planEmpty)
		})
	}
}

func testGenericPlans(t *testing.T, planEmpty bool) {
	const plain, ordered = "ep_generic_plain", "ep_generic_ordered"
	// Other endpoints' deliveries too, so that the planner's guess of one
	// endpoint's share of the table is what it is with many endpoints.
	others := make([]string, 20)
	for i := range others {
		others[i] = fmt.Sprintf("ep_generic_other%02d", i)
	}
	ctx, d, dsn := newPlanTestDB(t, append([]string{plain, ordered}, others...))
	if _, err := d.Pool.Exec(ctx, `ALTER TABLE deliveries SET (autovacuum_enabled = off);
ALTER TABLE events SET (autovacuum_enabled = off)`); err != nil {
		t.Fatal(err)
	}

	// One connection, so that every statement runs on the plans it made.
	pool := oneConnPool(ctx, t, dsn, map[string]string{"plan_cache_mode": "force_generic_plan"})
	generic := dispatch.NewPostgresDriver(pool)
	now := time.Now()
	// finishAndRelease ends leases with a result and releases others;
	// with check, it fails the test if a result is not applied.
	finishAndRelease := func(check bool, finished, released []dispatch.Lease) {
		t.Helper()
		tx, err := generic.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var cs []dispatch.Completion
		for _, l := range finished {
			cs = append(cs, dispatch.Completion{Lease: l,
				Update: dispatch.DeliveryUpdate{Status: "SUCCEEDED", AttemptCount: 1, CompletedAt: &now, UpdatedAt: now}})
		}
		applied, err := tx.Finish(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if n := len(slices.DeleteFunc(applied, func(ok bool) bool { return ok })); check && n > 0 {
			t.Fatalf("%d results of live leases were not applied", n)
		}
		if err := generic.Release(ctx, released, now); err != nil {
			t.Fatal(err)
		}
	}
	// claimAndCancel claims, finishes, releases and cancels deliveries;
	// with check, it fails the test if any of them finds nothing.
	claimAndCancel := func(check bool) {
		t.Helper()
		for round := range 3 {
			for _, p := range []dispatch.ClaimParams{
				{Worker: "w", EndpointID: plain, Now: now, Lease: time.Minute, Limit: 32},
				{Worker: "w", EndpointID: ordered, Now: now, Lease: time.Minute, Limit: 32, Ordered: true},
			} {
				jobs, err := generic.Claim(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				// The ordered endpoint's ten keys have their heads
				// leased after the first round: later claims (both
				// statements of an ordered claim) rightly take nothing.
				if check && len(jobs) == 0 && (round == 0 || !p.Ordered) {
					t.Fatalf("claim of %s took nothing", p.EndpointID)
				}
				if p.Ordered {
					continue
				}
				// Half the plain endpoint's leases end with a result,
				// half are released.
				var leases []dispatch.Lease
				for _, j := range jobs {
					leases = append(leases, j.Lease)
				}
				finishAndRelease(check, leases[:len(leases)/2], leases[len(leases)/2:])
			}
			refs, err := generic.Cancel(ctx, dispatch.CancelParams{EndpointID: plain, Reason: "test", Limit: 50, Now: now})
			if err != nil || check && len(refs) == 0 {
				t.Fatalf("cancel: %d cancelled, %v", len(refs), err)
			}
		}
	}
	// seqScans flushes the statistics of the generic plans' connection
	// and counts the sequential scans of deliveries and events so far.
	seqScans := func() (n int64) {
		t.Helper()
		if _, err := pool.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
			t.Fatal(err)
		}
		err := d.Pool.QueryRow(ctx, `SELECT pg_stat_clear_snapshot(), sum(seq_scan) FROM pg_stat_user_tables WHERE relname IN ('deliveries', 'events')`).Scan(nil, &n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if planEmpty {
		claimAndCancel(false)
		// Nothing was claimed: a result and a release of a lease that
		// does not exist plan their statements on the empty table too.
		none := []dispatch.Lease{{DeliveryID: "dlv_none", Token: "none"}}
		finishAndRelease(false, none, none)
	}

	storeDeliveries(ctx, t, d, 8000, func(i int, row *dispatch.DeliveryRow) {
		switch i % 4 {
		case 0:
			key := fmt.Sprintf("k%d", i%40)
			row.EndpointID, row.OrderingKey = ordered, &key
		case 1:
			row.EndpointID = plain
		default:
			row.EndpointID = others[i%len(others)]
		}
	})
	if !planEmpty {
		if _, err := d.Pool.Exec(ctx, "ANALYZE deliveries; ANALYZE events"); err != nil {
			t.Fatal(err)
		}
	}

	before := seqScans()
	claimAndCancel(true)
	if after := seqScans(); after != before {
		t.Fatalf("claims, results, releases and cancels read deliveries or events whole %d times; want every row found by index", after-before)
	}
}

// The scheduler asks often which endpoints have due deliveries. The probe
// must read the due index, which holds only unfinished deliveries, and
// never walk an endpoint's history of finished ones: with a million
// delivered, that walk would take seconds each time.
func TestPostgresDriver_DueReadsNoFinishedDeliveries(t *testing.T) {
	for _, analyse := range []bool{false, true} {
		t.Run(fmt.Sprintf("analysed=%v", analyse), func(t *testing.T) {
			eps := make([]string, 21)
			for i := range eps {
				eps[i] = fmt.Sprintf("ep_due%02d", i)
			}
			ctx, d, dsn := newPlanTestDB(t, eps)
			// 20,000 deliveries of the first endpoint, all delivered but
			// its newest, which is due.
			rows := storeDeliveries(ctx, t, d, 20000, func(_ int, row *dispatch.DeliveryRow) { row.EndpointID = eps[0] })
			// One connection, whose statistics tuplesRead can flush: what it
			// read before is counted before the probes.
			pool := oneConnPool(ctx, t, dsn, nil)
			if _, err := pool.Exec(ctx, `UPDATE deliveries SET status = 'SUCCEEDED', next_attempt_at = NULL, completed_at = created_at
WHERE id <> $1`, rows[len(rows)-1].ID); err != nil {
				t.Fatal(err)
			}
			// The due index's entries of the delivered rows go with
			// vacuum; autovacuum is what removes them in production.
			vacuum := "VACUUM deliveries"
			if analyse {
				vacuum = "VACUUM ANALYZE deliveries"
			}
			if _, err := pool.Exec(ctx, vacuum); err != nil {
				t.Fatal(err)
			}

			// tuplesRead flushes the connection's statistics and counts
			// the index entries and rows of deliveries read so far.
			tuplesRead := func() (n int64) {
				t.Helper()
				if _, err := pool.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
					t.Fatal(err)
				}
				err := d.Pool.QueryRow(ctx, `SELECT pg_stat_clear_snapshot(),
  (SELECT sum(idx_tup_read) FROM pg_stat_user_indexes WHERE relname = 'deliveries') +
  (SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'deliveries')`).Scan(nil, &n)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			before := tuplesRead()
			drv := dispatch.NewPostgresDriver(pool)
			for range 8 { // past the runs after which a statement may be planned generically
				due, err := drv.Due(ctx, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if len(due) != 1 || due[0] != eps[0] {
					t.Fatalf("due endpoints %v, want [%s]", due, eps[0])
				}
			}
			if read := tuplesRead() - before; read > 8*int64(len(eps)) {
				t.Fatalf("8 probes for due endpoints read %d index entries or rows of deliveries; want at most one per endpoint each", read)
			}
		})
	}
}

// planTestApp is the app of newPlanTestDB.
const planTestApp = "app_plans"

// newPlanTestDB opens a fresh PostgreSQL database with planTestApp and the
// given endpoints of it.
func newPlanTestDB(t *testing.T, endpoints []string) (context.Context, *db.DB, string) {
	t.Helper()
	ctx := tenant.System(context.Background())
	dsn := pgtest.New(t)
	d, err := db.Open(ctx, db.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Client.App.Create().SetID(planTestApp).SetName(planTestApp).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ep := range endpoints {
		err := d.Client.Endpoint.Create().SetID(ep).SetAppID(planTestApp).SetName(ep).SetURL("https://example.com/" + ep).
			SetEventTypes([]string{"*"}).SetAuth(webhook.Auth{Type: webhook.AuthNone}).SetRetryPolicy(webhook.DefaultRetryPolicy()).
			SetSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	return ctx, d, dsn
}

// storeDeliveries stores n events of planTestApp, a millisecond apart an
// hour ago, with one due delivery each, which set fills in (the endpoint
// at least), and returns the deliveries.
func storeDeliveries(ctx context.Context, t *testing.T, d *db.DB, n int, set func(i int, row *dispatch.DeliveryRow)) []dispatch.DeliveryRow {
	t.Helper()
	start := time.Now().Add(-time.Hour)
	var evs []*dispatch.EventRow
	var rows []dispatch.DeliveryRow
	for i := range n {
		at := start.Add(time.Duration(i) * time.Millisecond)
		ev := &dispatch.EventRow{ID: ids.NewAt(ids.Event, at), AppID: planTestApp, EventType: "order.created", Payload: []byte(`{"n":1}`), DeliveryCount: 1, CreatedAt: at}
		row := dispatch.DeliveryRow{ID: ids.NewAt(ids.Delivery, at), AppID: planTestApp, EventID: ev.ID, EventType: ev.EventType, CreatedAt: at}
		set(i, &row)
		evs, rows = append(evs, ev), append(rows, row)
	}
	tx, err := dispatch.NewPostgresDriver(d.Pool).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := tx.InsertDeliveries(ctx, rows, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// oneConnPool opens a pool of one connection to dsn with the given
// run-time parameters, closed when the test ends.
func oneConnPool(ctx context.Context, t *testing.T, dsn string, params map[string]string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	for k, v := range params {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestPostgresDriver_OwnershipFollowsTheDatabaseClock is defect 9 of the
// review: ownership of a rate-limited or ordered endpoint was compared
// with each replica's clock, so a replica whose clock ran ahead took over
// while the owner still sent, and claims did not check the owner. Now
// ownership is timed by the database's clock, and a claim that needs it
// takes nothing from an endpoint another engine owns.
func TestPostgresDriver_OwnershipFollowsTheDatabaseClock(t *testing.T) {
	const ep = "ep_owned"
	ctx, d, _ := newPlanTestDB(t, []string{ep})
	drv := dispatch.NewPostgresDriver(d.Pool)
	storeDeliveries(ctx, t, d, 3, func(_ int, row *dispatch.DeliveryRow) { row.EndpointID = ep })

	now := time.Now()
	owned, until, err := drv.Own(ctx, ep, "engine_a", now.Add(time.Minute), now)
	if err != nil || !owned || until.After(now.Add(time.Minute)) || until.Before(now.Add(50*time.Second)) {
		t.Fatalf("A owns = %v until %s (%v); want owned for about a minute from %s", owned, until, err, now)
	}
	// B's clock runs ten minutes ahead: by it, A's ownership has long
	// expired. The database says otherwise.
	skewed := now.Add(10 * time.Minute)
	owned, until, err = drv.Own(ctx, ep, "engine_b", skewed.Add(time.Minute), skewed)
	if err != nil || owned {
		t.Fatalf("B with a clock ten minutes ahead took the endpoint over from A (until %s, %v)", until, err)
	}
	if left := until.Sub(skewed); left <= 0 || left > time.Minute {
		t.Fatalf("B was told A owns it for %s more; want under a minute, in B's clock", left)
	}
	// Whatever B believes, a claim that needs ownership takes nothing.
	jobs, err := drv.Claim(ctx, dispatch.ClaimParams{Worker: "engine_b", EndpointID: ep, Now: skewed, Lease: time.Minute, Limit: 10, Owned: true})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("B claimed %d deliveries of A's endpoint (%v)", len(jobs), err)
	}
	jobs, err = drv.Claim(ctx, dispatch.ClaimParams{Worker: "engine_a", EndpointID: ep, Now: now, Lease: time.Minute, Limit: 10, Owned: true})
	if err != nil || len(jobs) != 3 {
		t.Fatalf("A, the owner, claimed %d deliveries (%v); want 3", len(jobs), err)
	}
	// Once the database's clock says it has expired, B takes over.
	if _, err := d.Pool.Exec(ctx, `UPDATE endpoints SET flow_owner_until = clock_timestamp() - interval '1 second' WHERE id = $1`, ep); err != nil {
		t.Fatal(err)
	}
	if owned, _, err := drv.Own(ctx, ep, "engine_b", now.Add(time.Minute), now); err != nil || !owned {
		t.Fatalf("B did not take over an expired ownership (%v)", err)
	}
}
