package retention_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/apikey"
	"github.com/heraldhq/herald/ent/attempt"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/retention"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// history is what seed stored.
type history struct {
	unfinished []string // events with a delivery still to make
	finished   []string
	gone, live string // a deleted endpoint with no deliveries, a live one
}

// seed stores, in two apps, events an hour old: in each app five finished
// (one SUCCEEDED delivery with an attempt) and, in between, two with a
// RETRYING delivery; three more finished ones share a creation time so a
// batch boundary falls between them. Each app also has an endpoint
// deleted an hour ago that nothing refers to.
func seed(t *testing.T, d *db.DB) history {
	t.Helper()
	ctx := tenant.System(context.Background())
	c := d.Client
	old := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	var h history
	for a := range 2 {
		app, err := c.App.Create().SetName(fmt.Sprintf("app%d", a)).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		endpoint := func(name string) *ent.EndpointCreate {
			return c.Endpoint.Create().SetAppID(app.ID).SetName(name).SetURL("https://example.com/hook").
				SetEventTypes([]string{"*"}).SetAuth(webhook.Auth{Type: webhook.AuthNone}).
				SetRetryPolicy(webhook.RetryPolicy{MaxAttempts: 5, InitialDelay: time.Second, BackoffMultiplier: 2, MaxDelay: time.Hour}).
				SetSecret("whsec_x")
		}
		ep, err := endpoint("live").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gone, err := endpoint("gone").SetDeletedAt(old).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h.live, h.gone = ep.ID, gone.ID
		// Portal sessions: one expired long ago (revoked too), one
		// expired lately, one working; and an expired API key, which
		// stays, listed as expired.
		for _, k := range []struct {
			kind    apikey.Kind
			expires time.Time
			revoked bool
		}{
			{apikey.KindPORTAL_SESSION, old.Add(-time.Minute), true},
			{apikey.KindPORTAL_SESSION, time.Now().Add(-10 * time.Second), false},
			{apikey.KindPORTAL_SESSION, time.Now().Add(time.Hour), false},
			{apikey.KindAPI_KEY, old.Add(-time.Minute), false},
		} {
			create := c.APIKey.Create().SetAppID(app.ID).SetName("k").SetPrefix("hrld_x").
				SetTokenHash([]byte(fmt.Sprintf("%s-%d-%v", app.ID, k.expires.UnixNano(), k.kind))).SetKind(k.kind).SetExpiresAt(k.expires.UTC())
			if k.revoked {
				create.SetRevokedAt(old)
			}
			if _, err := create.Save(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 10 {
			created := old.Add(time.Duration(i) * time.Millisecond)
			if i >= 7 {
				created = old.Add(7 * time.Millisecond)
			}
			ev, err := c.Event.Create().SetAppID(app.ID).SetEventType("order.created").
				SetPayload(json.RawMessage(`{"n":1}`)).SetCreatedAt(created).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			status := delivery.StatusSucceeded
			if i == 3 || i == 4 {
				status = delivery.StatusRetrying
			}
			dl := c.Delivery.Create().SetAppID(app.ID).SetEventID(ev.ID).SetEndpointID(ep.ID).
				SetEventType(ev.EventType).SetStatus(status).SetAttemptCount(1)
			if status == delivery.StatusRetrying {
				dl.SetNextAttemptAt(time.Now().UTC().Add(time.Hour))
				h.unfinished = append(h.unfinished, ev.ID)
			} else {
				h.finished = append(h.finished, ev.ID)
			}
			dv, err := dl.Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Attempt.Create().SetAppID(app.ID).SetDeliveryID(dv.ID).SetEndpointID(ep.ID).
				SetAttemptNumber(1).SetTrigger(attempt.TriggerSCHEDULED).SetSucceeded(status == delivery.StatusSucceeded).
				SetRequestURL("https://example.com/hook").SetRequestHeaders([]webhook.Header{}).SetDurationMs(3).
				SetStartedAt(created).SetCompletedAt(created).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return h
}

func counts(t *testing.T, d *db.DB) (events, deliveries, attempts, endpoints int) {
	t.Helper()
	row := d.Read.QueryRow(`SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries),
(SELECT count(*) FROM attempts), (SELECT count(*) FROM endpoints)`)
	if err := row.Scan(&events, &deliveries, &attempts, &endpoints); err != nil {
		t.Fatal(err)
	}
	return
}

// TestPrune_SameResultOnBothDialects prunes the same history, in batches
// of 2, on SQLite and on PostgreSQL.
func TestPrune_SameResultOnBothDialects(t *testing.T) {
	for _, tc := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "herald.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.New(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			d, err := db.Open(ctx, db.Config{DSN: tc.dsn(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			h := seed(t, d)
			p, err := retention.New(retention.Config{DB: d.Write, Dialect: d.Dialect(), Period: time.Hour, BatchSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			steps := []struct {
				name   string
				before time.Time
				want   retention.Counts
			}{
				{"nothing is older than the cutoff", time.Now().Add(-2 * time.Hour), retention.Counts{}},
				{"every finished event goes, and the sessions expired an hour ago", time.Now().Add(-30 * time.Second),
					retention.Counts{Events: 16, Deliveries: 16, Attempts: 16, Endpoints: 2, PortalSessions: 2}},
				{"a second pass finds nothing", time.Now().Add(-30 * time.Second), retention.Counts{}},
			}
			for _, s := range steps {
				got, err := p.Prune(ctx, s.before)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if got != s.want {
					t.Errorf("%s: deleted %+v, want %+v", s.name, got, s.want)
				}
			}
			if n, err := d.Client.APIKey.Query().Count(tenant.System(ctx)); err != nil || n != 6 {
				t.Errorf("%d keys left (%v), want 6: per app, the two sessions not expired before the cutoff and the API key", n, err)
			}
			evs, dels, atts, eps := counts(t, d)
			if evs != 4 || dels != 4 || atts != 4 || eps != 2 {
				t.Fatalf("left %d events, %d deliveries, %d attempts, %d endpoints; want the unfinished 4, 4, 4 and the 2 live endpoints", evs, dels, atts, eps)
			}
			for _, id := range h.unfinished {
				if _, err := d.Client.Event.Get(tenant.System(ctx), id); err != nil {
					t.Errorf("unfinished event %s: %v", id, err)
				}
			}
		})
	}
}

// TestRound_OneReplicaPrunesAtATime runs two replicas' pruners on one
// PostgreSQL database. While the first prunes (held up by a table lock
// the test takes), the second skips its round without touching anything;
// afterwards the first has deleted everything once.
func TestRound_OneReplicaPrunesAtATime(t *testing.T) {
	dsn := pgtest.New(t)
	ctx := context.Background()
	replica := func() (*db.DB, *retention.Pruner) {
		d, err := db.Open(ctx, db.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		p, err := retention.New(retention.Config{DB: d.Write, Dialect: d.Dialect(), Lock: d.Mutex("retention"),
			Period: 30 * time.Minute, BatchSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		return d, p
	}
	a, pa := replica()
	_, pb := replica()
	seed(t, a)

	// Hold up replica A inside its round: it reads events after taking
	// the lock.
	tx, err := a.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // committed below
	if _, err := tx.ExecContext(ctx, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   retention.Counts
		ran bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, ran, err := pa.Round(ctx)
		done <- result{n, ran, err}
	}()
	waitFor(t, "replica A to take the retention lock", func() bool {
		var held int
		err := a.Read.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
AND ((classid::bigint << 32) | objid::bigint) = $1`, db.LockKey("retention")).Scan(&held)
		return err == nil && held == 1
	})

	n, ran, err := pb.Round(ctx)
	if err != nil || ran || n != (retention.Counts{}) {
		t.Fatalf("replica B pruned while A held the lock: ran=%v deleted %+v err=%v", ran, n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	want := retention.Counts{Events: 16, Deliveries: 16, Attempts: 16, Endpoints: 2, PortalSessions: 2}
	if r.err != nil || !r.ran || r.n != want {
		t.Fatalf("replica A: ran=%v deleted %+v err=%v, want %+v", r.ran, r.n, r.err, want)
	}
	n, ran, err = pb.Round(ctx)
	if err != nil || !ran || n != (retention.Counts{}) {
		t.Fatalf("replica B after A: ran=%v deleted %+v err=%v, want a round that finds nothing", ran, n, err)
	}
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling PostgreSQL's lock table
	}
}
