package dispatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
// runs, and a generic plan guesses a LIMIT $n at a tenth of the table. The
// engine's claims and cancels must stay on indexes even then: a join with
// that guess was made by reading every delivery, each claim taking longer
// as the table grew. Every connection here is forced to generic plans.
func TestPostgresDriver_GenericPlansReadNoTableWhole(t *testing.T) {
	ctx := tenant.System(context.Background())
	dsn := pgtest.New(t)
	d, err := db.Open(ctx, db.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	const app, plain, ordered = "app_generic", "ep_generic_plain", "ep_generic_ordered"
	if err := d.Client.App.Create().SetID(app).SetName(app).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// Other endpoints' deliveries too, so that the planner's guess of one
	// endpoint's share of the table is what it is with many endpoints.
	others := make([]string, 20)
	for i := range others {
		others[i] = fmt.Sprintf("ep_generic_other%02d", i)
	}
	for _, ep := range append([]string{plain, ordered}, others...) {
		err := d.Client.Endpoint.Create().SetID(ep).SetAppID(app).SetName(ep).SetURL("https://example.com/" + ep).
			SetEventTypes([]string{"*"}).SetAuth(webhook.Auth{Type: webhook.AuthNone}).SetRetryPolicy(webhook.DefaultRetryPolicy()).
			SetSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	drv := dispatch.NewPostgresDriver(d.Pool)
	start := time.Now().Add(-time.Hour)
	tx, err := drv.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var evs []*dispatch.EventRow
	var rows []dispatch.DeliveryRow
	for i := range 8000 {
		at := start.Add(time.Duration(i) * time.Millisecond)
		ev := &dispatch.EventRow{ID: ids.NewAt(ids.Event, at), AppID: app, EventType: "order.created", Payload: []byte(`{"n":1}`), DeliveryCount: 1, CreatedAt: at}
		row := dispatch.DeliveryRow{ID: ids.NewAt(ids.Delivery, at), AppID: app, EventID: ev.ID, EndpointID: plain, EventType: ev.EventType, CreatedAt: at}
		switch i % 4 {
		case 0:
			key := fmt.Sprintf("k%d", i%40)
			row.EndpointID, row.OrderingKey = ordered, &key
		case 1:
		default:
			row.EndpointID = others[i%len(others)]
		}
		evs, rows = append(evs, ev), append(rows, row)
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
	if _, err := d.Pool.Exec(ctx, "ANALYZE deliveries; ANALYZE events"); err != nil {
		t.Fatal(err)
	}
	d.Close() // its connections' statistics are flushed as they end

	seqScans := func() (n int64) {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		err = conn.QueryRow(ctx, `SELECT sum(seq_scan) FROM pg_stat_user_tables WHERE relname IN ('deliveries', 'events')`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := seqScans()

	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	drv = dispatch.NewPostgresDriver(pool)
	now := time.Now()
	for round := range 3 {
		for _, p := range []dispatch.ClaimParams{
			{Worker: "w", EndpointID: plain, Now: now, Lease: time.Minute, Limit: 32},
			{Worker: "w", EndpointID: ordered, Now: now, Lease: time.Minute, Limit: 32, Ordered: true},
		} {
			jobs, err := drv.Claim(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			// The ordered endpoint's ten keys have their heads leased
			// after the first round: later claims (both statements of
			// an ordered claim) rightly take nothing.
			if len(jobs) == 0 && (round == 0 || !p.Ordered) {
				t.Fatalf("claim of %s took nothing", p.EndpointID)
			}
		}
		refs, err := drv.Cancel(ctx, dispatch.CancelParams{EndpointID: plain, Reason: "test", Limit: 50, Now: now})
		if err != nil || len(refs) == 0 {
			t.Fatalf("cancel: %d cancelled, %v", len(refs), err)
		}
	}
	pool.Close()
	if after := seqScans(); after != before {
		t.Fatalf("claims and cancels read deliveries or events whole %d times; want every row found by index", after-before)
	}
}
