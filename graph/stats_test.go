package graph_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/server"
)

// TestMain stops the PostgreSQL clusters the tests started.
func TestMain(m *testing.M) { pgtest.Main(m) }

// statsFields selects what deliveryStats decodes.
const statsFields = `from to bucket
	total { start attempts { total succeeded retryable permanent } deliveries { total succeeded failed } successRate deliverySuccessRate latency { p50Ms p95Ms p99Ms meanMs } }
	series { start attempts { total succeeded } deliveries { succeeded failed } successRate latency { p99Ms } }`

type statsPoint struct {
	Start    time.Time
	Attempts struct {
		Total, Succeeded, Retryable, Permanent int
	}
	Deliveries struct {
		Total, Succeeded, Failed int
	}
	SuccessRate         *float64
	DeliverySuccessRate *float64
	Latency             *struct{ P50Ms, P95Ms, P99Ms, MeanMs float64 }
}

type deliveryStats struct {
	From, To time.Time
	Bucket   string
	Total    statsPoint
	Series   []statsPoint
}

// statsReceiver answers 400 to requests whose body mentions "bad", 200
// to the others.
func statsReceiver(t *testing.T) *heraldtest.Receiver {
	return heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		var env struct{ Data struct{ Bad bool } }
		_ = json.NewDecoder(r.Body).Decode(&env)
		if env.Data.Bad {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

func TestStats_CountAttemptsAndDeliveriesPerEndpointAndApp(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testStatsCounts(t, func(*server.Config) {}) })
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := pgtest.New(t)
		testStatsCounts(t, func(c *server.Config) { c.DB = dsn })
	})
}

func testStatsCounts(t *testing.T, db func(*server.Config)) {
	s := heraldtest.Start(t, db)
	c := s.As(t, s.Token)
	rc := statsReceiver(t)
	a, _ := createEndpoint(t, c, map[string]any{"url": rc.Hook("/a")})
	b, _ := createEndpoint(t, c, map[string]any{"url": rc.Hook("/b"), "eventTypes": []string{"order.paid"}})
	for range 3 {
		publish(t, c, "order.created", map[string]any{"bad": false}) // a: 3 successes
	}
	publish(t, c, "order.paid", map[string]any{"bad": true}) // a and b: 400, failed at once
	waitDeliveries(t, c, 5)

	var out struct {
		Node struct{ Stats deliveryStats }
	}
	c.Must(&out, `query($id: ID!) { node(id: $id) { ... on Endpoint { stats(window: "1h", bucket: "1m") { `+statsFields+` } } } }`,
		map[string]any{"id": a.ID})
	st := out.Node.Stats
	if st.Bucket != "1m" || len(st.Series) != 60 || !st.To.Equal(st.From.Add(time.Hour)) {
		t.Fatalf("endpoint stats span %s–%s in %d buckets of %s, want 60 buckets of 1m", st.From, st.To, len(st.Series), st.Bucket)
	}
	tot := st.Total
	if tot.Attempts.Total != 4 || tot.Attempts.Succeeded != 3 || tot.Attempts.Permanent != 1 || tot.Deliveries.Succeeded != 3 || tot.Deliveries.Failed != 1 {
		t.Fatalf("endpoint totals = %+v, want 4 attempts (3 succeeded, 1 permanent), 3 deliveries succeeded and 1 failed", tot)
	}
	if tot.SuccessRate == nil || *tot.SuccessRate != 0.75 || tot.DeliverySuccessRate == nil || *tot.DeliverySuccessRate != 0.75 {
		t.Fatalf("success rates = %v, %v; want 0.75", tot.SuccessRate, tot.DeliverySuccessRate)
	}
	if l := tot.Latency; l == nil || l.P50Ms <= 0 || l.P50Ms > l.P95Ms || l.P95Ms > l.P99Ms {
		t.Fatalf("latency = %+v, want ordered positive percentiles", tot.Latency)
	}
	sum := 0
	for _, p := range st.Series {
		sum += p.Attempts.Total
		if p.Attempts.Total == 0 && (p.SuccessRate != nil || p.Latency != nil) {
			t.Fatalf("an empty bucket has a rate or latency: %+v", p)
		}
	}
	if sum != 4 {
		t.Fatalf("the series holds %d attempts, want the total's 4", sum)
	}

	var app struct {
		Viewer struct{ App struct{ Stats deliveryStats } }
	}
	c.Must(&app, `{ viewer { app { stats(window: "24h", bucket: "1h") { `+statsFields+` } } } }`, nil)
	at := app.Viewer.App.Stats.Total
	if at.Attempts.Total != 5 || at.Attempts.Succeeded != 3 || at.Deliveries.Failed != 2 || len(app.Viewer.App.Stats.Series) != 24 {
		t.Fatalf("app totals = %+v over %d buckets, want 5 attempts of which 3 succeeded, 2 failed deliveries, 24 buckets",
			at, len(app.Viewer.App.Stats.Series))
	}
	var other struct {
		Node struct{ Stats deliveryStats }
	}
	c.Must(&other, `query($id: ID!) { node(id: $id) { ... on Endpoint { stats { `+statsFields+` } } } }`, map[string]any{"id": b.ID})
	if ot := other.Node.Stats.Total; ot.Attempts.Total != 1 || ot.Attempts.Permanent != 1 {
		t.Fatalf("endpoint b totals = %+v, want its one failed attempt only", ot)
	}
}

func TestStats_RejectBadWindowsNamingTheArgument(t *testing.T) {
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	tests := []struct{ window, bucket, field string }{
		{"1h", "30s", "bucket"},
		{"1h", "90s", "bucket"},
		{"72h", "1m", "bucket"}, // minute roll-ups are kept 48h
		{"30m", "1h", "window"}, // shorter than a bucket
		{"-1h", "1m", "window"},
		{"24h", "90m", "bucket"},  // not whole hours
		{"8760h", "1h", "bucket"}, // too many buckets
		{"1h", "soon", "bucket"},  // not a duration
	}
	for _, tt := range tests {
		r := c.Do(`query($w: Duration!, $b: Duration!) { viewer { app { stats(window: $w, bucket: $b) { from } } } }`,
			map[string]any{"w": tt.window, "b": tt.bucket})
		if r.Code() != "BAD_USER_INPUT" || r.Field() != tt.field {
			t.Errorf("window %s, bucket %s: got %s %q, want BAD_USER_INPUT naming %s: %s", tt.window, tt.bucket, r.Code(), r.Field(), tt.field, r.Body)
		}
	}
}

func TestStats_AdminKeysReadEveryAppsStatsOthersOnlyTheirOwn(t *testing.T) {
	s := heraldtest.Start(t)
	other, otherKey := s.NewApp("other")
	const q = `query($id: ID!) { node(id: $id) { ... on App { stats { from total { attempts { total } } } } } }`
	// An admin key reads another app's statistics without acting in it,
	// the same as acting in it.
	var direct, actingIn struct {
		Node struct {
			Stats struct {
				From  time.Time
				Total struct{ Attempts struct{ Total int } }
			}
		}
	}
	s.As(t, s.Token).Must(&direct, q, map[string]any{"id": other})
	s.As(t, s.Token).WithHeader("X-Herald-App", other).Must(&actingIn, q, map[string]any{"id": other})
	if direct.Node.Stats.From.IsZero() || direct != actingIn {
		t.Errorf("another app's statistics: %+v directly, %+v acting in it", direct, actingIn)
	}
	// Another app's key cannot reach the default app at all.
	var viewer struct {
		Viewer struct{ App struct{ ID string } }
	}
	s.As(t, s.Token).Must(&viewer, `{ viewer { app { id } } }`, nil)
	r := s.As(t, otherKey).Do(q, map[string]any{"id": viewer.Viewer.App.ID})
	if r.Code() != "NOT_FOUND" && r.Code() != "FORBIDDEN" {
		t.Errorf("an app key read another app's statistics: %s", r.Body)
	}
}

func TestStatsUpdated_SendsFreshNumbersAsAttemptsAreRecorded(t *testing.T) {
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := statsReceiver(t)
	ep, _ := createEndpoint(t, c, map[string]any{"url": rc.Hook("/a")})
	ws, _, err := s.DialWS("graphql-transport-ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.Init(map[string]any{"Authorization": "Bearer " + s.Token}); err != nil {
		t.Fatal(err)
	}
	op := `subscription($ep: ID) { statsUpdated(endpointId: $ep, window: "10m", bucket: "1m") { total { attempts { total succeeded } } } }`
	if err := ws.Subscribe("s", op, map[string]any{"ep": ep.ID}); err != nil {
		t.Fatal(err)
	}
	type msg struct {
		StatsUpdated struct {
			Total struct {
				Attempts struct{ Total, Succeeded int }
			}
		}
	}
	next := func() msg {
		t.Helper()
		r := ws.Next(t, "s", 10*time.Second)
		if len(r.Errors) > 0 || r.Complete {
			t.Fatalf("statsUpdated ended: %+v", r)
		}
		var m msg
		if err := json.Unmarshal(r.Data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := next(); m.StatsUpdated.Total.Attempts.Total != 0 {
		t.Fatalf("first numbers = %+v, want none yet", m)
	}
	publish(t, c, "order.created", map[string]any{"n": 1})
	publish(t, c, "order.created", map[string]any{"n": 2})
	for {
		m := next()
		if m.StatsUpdated.Total.Attempts.Succeeded == 2 {
			break
		}
		if m.StatsUpdated.Total.Attempts.Total > 2 {
			t.Fatalf("numbers = %+v, want 2 attempts", m)
		}
	}
}

func TestStats_LongSeriesCountTowardTheComplexityLimit(t *testing.T) {
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	// 100 endpoints × 1,440 points of ~10 fields each is far past the limit.
	r := c.Do(`{ endpoints(first: 100) { edges { node { stats(window: "24h", bucket: "1m") { series { start attempts { total succeeded } successRate latency { p50Ms p95Ms p99Ms } } } } } } }`, nil)
	r.WantError(t, "BAD_USER_INPUT")
	// One endpoint's is fine.
	ep, _ := createEndpoint(t, c, map[string]any{"url": "http://127.0.0.1:1/"})
	c.Must(nil, `query($id: ID!) { node(id: $id) { ... on Endpoint { stats(window: "24h", bucket: "1m") { series { start attempts { total succeeded } successRate latency { p50Ms p95Ms p99Ms } } } } } }`,
		map[string]any{"id": ep.ID})
}

func TestStats_ColumnsHoldTheSeries(t *testing.T) {
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := statsReceiver(t)
	ep, _ := createEndpoint(t, c, map[string]any{"url": rc.Hook("/a")})
	publish(t, c, "order.created", map[string]any{"bad": false})
	publish(t, c, "order.created", map[string]any{"bad": true})
	waitDeliveries(t, c, 2)
	var out struct {
		Node struct {
			Stats struct {
				Series  []statsPoint
				Columns struct {
					Start               []time.Time
					Attempts, Succeeded []int
					SuccessRate, P99Ms  []*float64
					AttemptsPermanent   []int
					DeliveriesFailed    []int
				}
			}
		}
	}
	c.Must(&out, `query($id: ID!) { node(id: $id) { ... on Endpoint { stats(window: "10m", bucket: "1m") {
		series { start attempts { total succeeded permanent } deliveries { failed } successRate latency { p99Ms } }
		columns { start attempts succeeded: attemptsSucceeded attemptsPermanent deliveriesFailed successRate p99Ms } } } } }`,
		map[string]any{"id": ep.ID})
	st := out.Node.Stats
	cols := st.Columns
	if len(st.Series) != 10 || len(cols.Start) != 10 || len(cols.Attempts) != 10 || len(cols.SuccessRate) != 10 || len(cols.P99Ms) != 10 {
		t.Fatalf("series of %d points, columns of %d: want 10 each", len(st.Series), len(cols.Start))
	}
	for i, p := range st.Series {
		same := p.Start.Equal(cols.Start[i]) && p.Attempts.Total == cols.Attempts[i] && p.Attempts.Succeeded == cols.Succeeded[i] &&
			p.Attempts.Permanent == cols.AttemptsPermanent[i] && p.Deliveries.Failed == cols.DeliveriesFailed[i] &&
			(p.SuccessRate == nil) == (cols.SuccessRate[i] == nil) && (p.Latency == nil) == (cols.P99Ms[i] == nil)
		if same && p.SuccessRate != nil {
			same = *p.SuccessRate == *cols.SuccessRate[i] && p.Latency.P99Ms == *cols.P99Ms[i]
		}
		if !same {
			t.Fatalf("bucket %d: point %+v, columns disagree", i, p)
		}
	}
}

func TestStats_NeedTheEventsReadScope(t *testing.T) {
	s := heraldtest.Start(t)
	key := func(scopes ...string) string {
		var out struct{ CreateAPIKey struct{ Token string } }
		s.As(t, s.Token).Must(&out, `mutation($s: [APIKeyScope!]) { createAPIKey(input: {name: "k", scopes: $s}) { token } }`,
			map[string]any{"s": scopes})
		return out.CreateAPIKey.Token
	}
	const q = `{ viewer { app { stats { total { attempts { total } } } } } }`
	s.As(t, key("CATALOG_READ")).Do(q, nil).WantError(t, "FORBIDDEN")
	s.As(t, key("EVENTS_READ")).Must(nil, q, nil)
}
