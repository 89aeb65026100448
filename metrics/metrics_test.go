package metrics_test

import (
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/server"
)

// TestMain stops the PostgreSQL clusters the tests started.
func TestMain(m *testing.M) { pgtest.Main(m) }

// onBothDatabases runs a test on SQLite and on PostgreSQL.
func onBothDatabases(t *testing.T, test func(t *testing.T, pg bool, db func(*server.Config))) {
	t.Run("SQLite", func(t *testing.T) { test(t, false, func(*server.Config) {}) })
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := pgtest.New(t)
		test(t, true, func(c *server.Config) { c.DB = dsn })
	})
}

// value returns the value of a counter or gauge with the label (any
// label if name is ""), the sample count of a histogram, and whether it
// was found.
func value(fams map[string]*dto.MetricFamily, metric, label, v string) (float64, bool) {
	f := fams[metric]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		if label != "" {
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == label && l.GetValue() == v)
			}
			if !found {
				continue
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// waitMetrics scrapes until every want holds, or fails with the last
// scrape's values.
func waitMetrics(t *testing.T, s *heraldtest.Server, want []check) map[string]*dto.MetricFamily {
	t.Helper()
	var fams map[string]*dto.MetricFamily
	var failed []string
	ok := heraldtest.Eventually(15*time.Second, func() bool {
		fams = s.Metrics()
		failed = failed[:0]
		for _, c := range want {
			got, found := value(fams, c.metric, c.label, c.value)
			if !found || !c.ok(got) {
				failed = append(failed, c.String(got, found))
			}
		}
		return len(failed) == 0
	})
	if !ok {
		t.Fatalf("metrics never reached the wanted values: %v", failed)
	}
	return fams
}

type check struct {
	metric, label, value string
	ok                   func(float64) bool
	want                 string
}

func (c check) String(got float64, found bool) string {
	if !found {
		return c.metric + "{" + c.label + "=" + c.value + "} missing"
	}
	return c.metric + "{" + c.label + "=" + c.value + "} = " + model.SampleValue(got).String() + ", want " + c.want
}

func eq(metric, label, v string, n float64) check {
	return check{metric, label, v, func(x float64) bool { return x == n }, model.SampleValue(n).String()}
}

func atLeast(metric, label, v string, n float64) check {
	return check{metric, label, v, func(x float64) bool { return x >= n }, ">= " + model.SampleValue(n).String()}
}

func TestMetrics_CountWhatTheEngineDoes(t *testing.T) {
	onBothDatabases(t, testCounts)
}

func testCounts(t *testing.T, pg bool, db func(*server.Config)) {
	s := heraldtest.Start(t, db, func(c *server.Config) { c.DisableAfter = 1 })
	ok := heraldtest.NewReceiver(t, nil)
	bad := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	s.CreateEndpoint(s.Token, map[string]any{"name": "ok", "url": ok.Hook("/"), "eventTypes": []string{"order.*"}})
	s.CreateEndpoint(s.Token, map[string]any{"name": "bad", "url": bad.Hook("/"), "eventTypes": []string{"order.paid"}})
	for range 3 {
		s.Publish(s.Token, "order.created", map[string]any{"n": 1})
	}
	s.Publish(s.Token, "order.paid", map[string]any{"n": 2})

	pools := []check{atLeast("go_sql_open_connections", "db_name", "writer", 1), atLeast("go_sql_open_connections", "db_name", "reader", 0)}
	if pg {
		// One pool serves reads and writes; database/sql borrows pgx's
		// connections for a statement at a time.
		pools = []check{atLeast("herald_pgxpool_total_connections", "", "", 1), atLeast("herald_pgxpool_acquires_total", "", "", 1),
			atLeast("go_sql_max_open_connections", "db_name", "writer", 0)}
	}
	fams := waitMetrics(t, s, append(pools, []check{
		atLeast("herald_events_published_total", "", "", 4),
		eq("herald_attempts_total", "result", "success", 4),
		atLeast("herald_attempts_total", "result", "permanent", 1),
		eq("herald_deliveries_finished_total", "status", "succeeded", 4),
		atLeast("herald_deliveries_finished_total", "status", "failed", 1),
		eq("herald_delivery_lag_seconds", "", "", 4),
		atLeast("herald_attempt_duration_seconds", "", "", 5),
		eq("herald_endpoints_disabled_total", "", "", 1),
		atLeast("herald_recorder_batch_size", "", "", 1),
		atLeast("herald_recorder_commit_duration_seconds", "", "", 1),
		atLeast("herald_publisher_batch_size", "", "", 1),
		atLeast("herald_publisher_commit_duration_seconds", "", "", 1),
		eq("herald_deliveries_due", "", "", 0),
		eq("herald_deliveries_due_oldest_seconds", "", "", 0),
		eq("herald_deliveries_in_flight", "", "", 0),
		eq("herald_build_info", "", "", 1),
		atLeast("go_goroutines", "", "", 1),
		atLeast("process_resident_memory_bytes", "", "", 1),
	}...))
	// Bounded labels: no app or endpoint IDs, whatever the traffic.
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if n := l.GetName(); n == "app_id" || n == "endpoint_id" || n == "endpoint" || n == "app" {
					t.Errorf("%s has the unbounded label %s", name, n)
				}
			}
		}
	}
}

func TestMetrics_ReportTheBacklogAndWhatIsInFlight(t *testing.T) {
	onBothDatabases(t, testBacklog)
}

func testBacklog(t *testing.T, _ bool, db func(*server.Config)) {
	s := heraldtest.Start(t, db, func(c *server.Config) { c.PerEndpoint = 1 })
	release := make(chan struct{})
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // before the receiver closes
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/")})
	for range 10 {
		s.Publish(s.Token, "order.created", map[string]any{"n": 1})
	}
	rc.WaitRequests(t, 1, 10*time.Second)
	// One request in flight and one more held for the endpoint (twice
	// --per-endpoint); the other 8 wait in the database.
	waitMetrics(t, s, []check{
		eq("herald_deliveries_in_flight", "", "", 1),
		eq("herald_deliveries_due", "", "", 8),
		{"herald_deliveries_due_oldest_seconds", "", "", func(x float64) bool { return x > 0 && x < 60 }, "between 0 and 60"},
	})
}

func TestMetrics_CountLiveConnectionsAndSubscriptions(t *testing.T) {
	s := heraldtest.Start(t)
	ws, _, err := s.DialWS(heraldtest.TransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.Init(map[string]any{"Authorization": "Bearer " + s.Token}); err != nil {
		t.Fatal(err)
	}
	if err := ws.Subscribe("1", `subscription { eventPublished { eventId } }`, nil); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, s, []check{eq("herald_live_connections", "", "", 1), eq("herald_live_subscriptions", "", "", 1)})
}

func TestMetrics_OffWhenDisabled(t *testing.T) {
	s := heraldtest.Start(t, func(c *server.Config) { c.DisableMetrics = true })
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("GET /metrics = %d with metrics off", resp.StatusCode)
	}
}
