package retention_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/retention"
	"github.com/heraldhq/herald/server"
)

// endpoints creates, in the default app, an endpoint that accepts every
// order.* and contact.* event and one that answers order.created with 503
// and retries only after an hour, so that order.created events keep an
// unfinished delivery.
func endpoints(t *testing.T, s *heraldtest.Server) (up, down string) {
	t.Helper()
	ok := heraldtest.NewReceiver(t, nil)
	failing := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	up, _ = s.CreateEndpoint(s.Token, map[string]any{"name": "up", "url": ok.URL, "eventTypes": []string{"order.*", "contact.*"}})
	down, _ = s.CreateEndpoint(s.Token, map[string]any{"name": "down", "url": failing.URL, "eventTypes": []string{"order.created"},
		"retryPolicy": map[string]any{"maxAttempts": 5, "initialDelay": "1h", "backoffMultiplier": 1, "maxDelay": "1h"}})
	return up, down
}

// waitSettled waits until every delivery of the event has been attempted
// once and is SUCCEEDED or RETRYING.
func waitSettled(t *testing.T, s *heraldtest.Server, eventID string, deliveries int) []heraldtest.Delivery {
	t.Helper()
	var ds []heraldtest.Delivery
	ok := heraldtest.Eventually(10*time.Second, func() bool {
		ds = s.Deliveries(s.Token, eventID)
		if len(ds) != deliveries {
			return false
		}
		for _, d := range ds {
			if d.AttemptCount != 1 || (d.Status != "SUCCEEDED" && d.Status != "RETRYING") {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("deliveries of %s did not settle: %+v", eventID, ds)
	}
	return ds
}

// present returns which of the IDs the API still finds.
func present(t *testing.T, s *heraldtest.Server, ids ...string) map[string]bool {
	t.Helper()
	var out struct {
		Nodes []*struct{ ID string }
	}
	r := s.Do(s.Token, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": ids})
	for _, e := range r.Errors {
		if e.Extensions["code"] != "NOT_FOUND" {
			t.Fatalf("nodes: %s", r.Body)
		}
	}
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatalf("nodes: %v: %s", err, r.Body)
	}
	found := make(map[string]bool)
	for _, n := range out.Nodes {
		if n != nil {
			found[n.ID] = true
		}
	}
	return found
}

func TestRetention_DeletesFinishedHistoryAndKeepsUnfinished(t *testing.T) {
	t.Parallel()
	// Three seconds leave time to watch every delivery settle before its
	// event expires, even on a slow machine.
	s := heraldtest.Start(t, func(c *server.Config) { c.Retention = 3 * time.Second })
	up, down := endpoints(t, s)
	ok := heraldtest.NewReceiver(t, nil)
	gone, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "gone", "url": ok.URL, "eventTypes": []string{"email.sent"}})

	unfinished := s.Publish(s.Token, "order.created", map[string]any{"n": 1}) // up and down
	finished := s.Publish(s.Token, "order.updated", map[string]any{"n": 2})   // up only
	ofGone := s.Publish(s.Token, "email.sent", map[string]any{"n": 3})        // gone only
	waitSettled(t, s, unfinished, 2)
	waitSettled(t, s, finished, 1)
	waitSettled(t, s, ofGone, 1)
	s.Do(s.Token, `mutation($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`, map[string]any{"id": gone}).Decode(t, nil)

	// The finished events go once they are older than the period; the
	// unfinished one, older still, stays with all its history.
	if !heraldtest.Eventually(15*time.Second, func() bool {
		p := present(t, s, finished, ofGone)
		return !p[finished] && !p[ofGone]
	}) {
		t.Fatalf("finished events were not pruned: %v", present(t, s, finished, ofGone))
	}
	if p := present(t, s, unfinished, up, down); !p[unfinished] || !p[up] || !p[down] {
		t.Fatalf("pruning deleted what it must keep: present %v", p)
	}
	ds := s.Deliveries(s.Token, unfinished)
	if len(ds) != 2 {
		t.Fatalf("unfinished event has %d deliveries, want 2: %+v", len(ds), ds)
	}
	for _, d := range ds {
		if len(d.Attempts.Edges) != 1 {
			t.Errorf("delivery %s (%s) has %d attempts, want its 1", d.ID, d.Status, len(d.Attempts.Edges))
		}
	}

	// The deleted endpoint, its secret with it, leaves the database once
	// nothing refers to it and it was deleted longer than the period ago.
	ro, err := sql.Open("sqlite3", "file:"+s.DBPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	count := func(id string) int {
		var n int
		if err := ro.QueryRow(`SELECT count(*) FROM endpoints WHERE id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if !heraldtest.Eventually(15*time.Second, func() bool { return count(gone) == 0 }) {
		t.Fatalf("deleted endpoint %s is still stored", gone)
	}
	if count(up) != 1 || count(down) != 1 {
		t.Fatalf("live endpoints were deleted")
	}
}

func TestPrune_WorksInBatchesAroundUnfinishedEvents(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t) // no retention: history stays until Prune below
	endpoints(t, s)
	var events []string
	for i := range 9 {
		typ := "order.updated"
		if i == 4 || i == 5 {
			typ = "order.created" // its delivery to down stays RETRYING
		}
		events = append(events, s.Publish(s.Token, typ, map[string]any{"n": i}))
	}
	// Five more in one publishEvents call share a creation time, so a
	// batch boundary falls between events created at the same instant.
	var in []map[string]any
	for i := range 5 {
		in = append(in, map[string]any{"eventType": "order.updated", "payload": map[string]any{"batch": i}})
	}
	var out struct{ PublishEvents []struct{ ID string } }
	s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, &out)
	for _, e := range out.PublishEvents {
		events = append(events, e.ID)
	}
	for i, id := range events {
		n := 1
		if i == 4 || i == 5 {
			n = 2
		}
		waitSettled(t, s, id, n)
	}
	s.Close()

	ctx := context.Background()
	d, err := db.Open(ctx, db.Config{Path: s.DBPath})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Batches of 2: the unfinished events 4 and 5 fill one batch, which
	// the next must start after.
	p, err := retention.New(retention.Config{DB: d.Write, Period: time.Hour, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		before time.Time
		want   retention.Counts
	}{
		{"nothing is older than the cutoff", time.Now().Add(-time.Hour), retention.Counts{}},
		{"every finished event goes", time.Now().Add(time.Minute), retention.Counts{Events: 12, Deliveries: 12, Attempts: 12}},
		{"a second pass finds nothing", time.Now().Add(time.Minute), retention.Counts{}},
	}
	for _, tt := range tests {
		got, err := p.Prune(ctx, tt.before)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got.Stats = 0 // the roll-ups of these attempts: see TestPrune_DeletesExpiredStatsRollUps
		// The audit records of the publishing (and of the endpoint's
		// creation) are as old, and go with the attempts.
		if tt.want.Events > 0 && got.AuditRecords == 0 {
			t.Errorf("%s: no audit record deleted", tt.name)
		}
		got.AuditRecords = 0
		if got != tt.want {
			t.Errorf("%s: deleted %+v, want %+v", tt.name, got, tt.want)
		}
	}
	var evs, dels, atts int
	row := d.Read.QueryRow(`SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries), (SELECT count(*) FROM attempts)`)
	if err := row.Scan(&evs, &dels, &atts); err != nil {
		t.Fatal(err)
	}
	if evs != 2 || dels != 4 || atts != 4 {
		t.Fatalf("left %d events, %d deliveries, %d attempts; want the unfinished events' 2, 4, 4", evs, dels, atts)
	}
	var kept int
	err = d.Read.QueryRow(`SELECT count(*) FROM events WHERE id IN (?, ?)`, events[4], events[5]).Scan(&kept)
	if err != nil || kept != 2 {
		t.Fatalf("kept %d of the unfinished events (%v), want both", kept, err)
	}
}

func TestNew_RejectsAPeriodThatIsNotPositive(t *testing.T) {
	for _, period := range []time.Duration{0, -time.Hour} {
		if _, err := retention.New(retention.Config{DB: &sql.DB{}, Period: period}); err == nil {
			t.Errorf("New with period %s succeeded", period)
		}
	}
}

func TestPrune_DeletesExpiredStatsRollUps(t *testing.T) {
	for _, tc := range []struct {
		name, insert string
		dsn          func(t *testing.T) string
	}{
		{"sqlite", `INSERT INTO delivery_stats (app_id, endpoint_id, resolution, bucket) VALUES ('app_1', 'ep_1', ?, ?)`,
			func(t *testing.T) string { return filepath.Join(t.TempDir(), "h.db") }},
		{"postgres", `INSERT INTO delivery_stats (app_id, endpoint_id, resolution, bucket) VALUES ('app_1', 'ep_1', $1, $2)`,
			func(t *testing.T) string { return pgtest.New(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			d, err := db.Open(ctx, db.Config{DSN: tc.dsn(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			now := time.Now().UTC()
			rows := []struct {
				res int
				at  time.Time
			}{
				{60, now.Add(-49 * time.Hour)},        // past the minute history: goes
				{60, now.Add(-time.Hour)},             // kept
				{3600, now.Add(-31 * 24 * time.Hour)}, // past retention: goes
				{3600, now.Add(-24 * time.Hour)},      // kept
			}
			for _, r := range rows {
				if _, err := d.Write.ExecContext(ctx, tc.insert, r.res, r.at.Unix()/int64(r.res)*int64(r.res)); err != nil {
					t.Fatal(err)
				}
			}
			p, err := retention.New(retention.Config{DB: d.Write, Dialect: d.Dialect(), Period: 30 * 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			n, err := p.Prune(ctx, now.Add(-30*24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if n.Stats != 2 {
				t.Fatalf("deleted %d roll-up rows, want 2 (a minute row older than 48h, an hour row older than the period)", n.Stats)
			}
			var left int
			if err := d.Read.QueryRow(`SELECT count(*) FROM delivery_stats`).Scan(&left); err != nil || left != 2 {
				t.Fatalf("%d roll-up rows left (%v), want 2", left, err)
			}
		})
	}
}
