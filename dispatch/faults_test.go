package dispatch_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// sqliteFault opens a connection of its own to a server's database file,
// to inject faults that SQLite itself raises (triggers that refuse writes)
// or to change rows behind the server's back.
func sqliteFault(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func execSQL(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// refuseWrites makes SQLite refuse every write to Herald's tables, as a
// full disk would, until the returned function is called.
func refuseWrites(t *testing.T, db *sql.DB) (restore func()) {
	t.Helper()
	var names []string
	for _, tbl := range []string{"events", "deliveries", "attempts", "endpoints"} {
		for _, op := range []string{"INSERT", "UPDATE"} {
			name := fmt.Sprintf("refuse_%s_%s", strings.ToLower(op), tbl)
			execSQL(t, db, fmt.Sprintf(`CREATE TRIGGER %s BEFORE %s ON %s BEGIN SELECT RAISE(ABORT, 'database or disk is full (simulated)'); END`, name, op, tbl))
			names = append(names, name)
		}
	}
	return func() {
		for _, n := range names {
			execSQL(t, db, "DROP TRIGGER "+n)
		}
	}
}

// countingReceiver counts requests per webhook-id.
type countingReceiver struct {
	*heraldtest.Receiver
	mu   sync.Mutex
	seen map[string]int
}

func newCountingReceiver(t *testing.T, delay time.Duration) *countingReceiver {
	c := &countingReceiver{seen: make(map[string]int)}
	c.Receiver = heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		c.mu.Lock()
		c.seen[r.Header.Get("Webhook-Id")]++
		c.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	return c
}

// stats returns how many distinct events arrived and how many requests
// repeated one.
func (c *countingReceiver) stats() (distinct, duplicates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.seen {
		duplicates += n - 1
	}
	return len(c.seen), duplicates
}

func (c *countingReceiver) missing(ids []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m []string
	for _, id := range ids {
		if c.seen[id] == 0 {
			m = append(m, id)
		}
	}
	return m
}

// The database refuses every write for 10 seconds in the middle of a
// backlog, then recovers. Nothing accepted is lost, and the engine does
// not re-send its deliveries while it cannot record them: the results it
// holds are kept and committed once the database is back.
func TestFaults_DatabaseRefusesWritesThenRecovers(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.PerEndpoint = 8 })
	fdb := sqliteFault(t, s.DBPath)
	outageScenario(t, s, func() func() { return refuseWrites(t, fdb) })
}

// outageScenario runs a backlog through s, calls fault in the middle and
// the function it returns 10 seconds later, and checks that every accepted
// event arrives with far fewer duplicates than one per due delivery per
// second.
func outageScenario(t *testing.T, s *heraldtest.Server, fault func() (restore func())) {
	t.Helper()
	rc := newCountingReceiver(t, 5*time.Millisecond)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})

	var accepted []string
	publish := func(batch, n int) error {
		in := make([]map[string]any, n)
		for i := range in {
			in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"b": batch, "i": i},
				"idempotencyKey": fmt.Sprintf("b%d-%d", batch, i)}
		}
		r := s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in})
		if len(r.Errors) > 0 {
			return fmt.Errorf("%s", r.Errors[0].Message)
		}
		var out struct{ PublishEvents []struct{ ID string } }
		r.Decode(t, &out)
		for _, e := range out.PublishEvents {
			accepted = append(accepted, e.ID)
		}
		return nil
	}
	for b := range 20 {
		if err := publish(b, 100); err != nil {
			t.Fatal(err)
		}
	}
	rc.WaitRequests(t, 200, 10*time.Second)
	restore := fault()
	distinctAtFault, _ := rc.stats()
	due := len(accepted) - distinctAtFault
	refused := 0
	outage := time.Now()
	for b := 20; time.Since(outage) < 10*time.Second; b++ {
		if err := publish(b, 10); err != nil {
			refused++ // not accepted: the client would try again
		}
		time.Sleep(100 * time.Millisecond)
	}
	distinctInOutage, dupsInOutage := rc.stats()
	restore()
	if refused == 0 {
		t.Fatal("no publish was refused during the outage: the fault was not injected")
	}
	if !heraldtest.Eventually(60*time.Second, func() bool { return len(rc.missing(accepted)) == 0 }) {
		m := rc.missing(accepted)
		t.Fatalf("%d of %d accepted events never arrived, e.g. %v", len(m), len(accepted), m[:min(5, len(m))])
	}
	for _, id := range accepted[:20] {
		s.WaitDelivery(s.Token, id, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	}
	distinct, dups := rc.stats()
	t.Logf("%d events accepted, %d due at the fault, %d sent during the 10 s outage (%d duplicates then), %d duplicates in all, %d publishes refused",
		distinct, due, distinctInOutage-distinctAtFault, dupsInOutage, dups, refused)
	// Re-sending every due delivery each second would make about due × 10
	// duplicates; holding results makes none.
	if limit := due / 10; dups > limit {
		t.Fatalf("%d duplicates for %d deliveries due during a 10 s outage, want at most %d", dups, due, limit)
	}
}

// A result the database refuses (here a trigger rejects one endpoint's
// response bodies) must not hold back the others recorded with it, and is
// stored without the refused part in the end.
func TestFaults_PoisonResultDoesNotHoldBackOthers(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	healthy := newCountingReceiver(t, 0)
	poison := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("poison"))
	})
	s.CreateEndpoint(s.Token, map[string]any{"name": "healthy", "url": healthy.URL})
	poisonID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "poison", "url": poison.URL})
	fdb := sqliteFault(t, s.DBPath)
	execSQL(t, fdb, `CREATE TRIGGER poison BEFORE INSERT ON attempts WHEN NEW.response_body LIKE '%poison%'
BEGIN SELECT RAISE(ABORT, 'this response cannot be stored'); END`)

	in := make([]map[string]any, 50)
	for i := range in {
		in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"i": i}}
	}
	var out struct{ PublishEvents []struct{ ID string } }
	s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, &out)
	for _, ev := range out.PublishEvents {
		ev := ev
		if !heraldtest.Eventually(20*time.Second, func() bool {
			for _, d := range s.Deliveries(s.Token, ev.ID) {
				if d.Status != "SUCCEEDED" {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("deliveries of event %s did not all succeed: %+v", ev.ID, s.Deliveries(s.Token, ev.ID))
		}
	}
	if _, dups := healthy.stats(); dups > 0 {
		t.Fatalf("the healthy endpoint got %d duplicates: its results were held back with the poison ones", dups)
	}
	if n := len(poison.Requests()); n != 50 {
		t.Fatalf("the poison endpoint got %d requests, want 50 (one each)", n)
	}
	for _, d := range s.Deliveries(s.Token, out.PublishEvents[0].ID) {
		if d.EndpointID != poisonID {
			continue
		}
		a := d.Attempts.Edges[0].Node
		if !a.Succeeded || a.ResponseBody != "" || a.ErrorMessage == nil || !strings.Contains(*a.ErrorMessage, "response not stored") {
			t.Fatalf("poison attempt = %+v, want it stored without its body and saying why", a)
		}
	}
}

// A rolled-back transaction must not leave a cached list of subscribers:
// an endpoint that is active in the database gets every event.
func TestPublish_FanOutFollowsCommittedEndpointsOnly(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.DisableAfter = 1 })
	failing := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": failing.URL, "eventTypes": []string{"order.*"}})
	fdb := sqliteFault(t, s.DBPath)
	// Disabling the endpoint goes with a webhook.disabled event, which
	// this trigger refuses.
	execSQL(t, fdb, `CREATE TRIGGER no_meta BEFORE INSERT ON events WHEN NEW.event_type = 'webhook.disabled'
BEGIN SELECT RAISE(ABORT, 'refused'); END`)
	s.Publish(s.Token, "order.created", map[string]any{"n": 0})
	failing.WaitRequests(t, 1, 5*time.Second)
	active := func() bool {
		var out struct{ Node struct{ IsActive bool } }
		s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { isActive } } }`, map[string]any{"id": epID}).Decode(t, &out)
		return out.Node.IsActive
	}
	checked := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		before := active()
		ev := s.Publish(s.Token, "order.created", map[string]any{"probe": checked})
		after := active()
		if before != after {
			continue // changed meanwhile: this probe says nothing
		}
		checked++
		if got := len(s.Deliveries(s.Token, ev)); (got == 1) != after {
			t.Fatalf("event published while the endpoint was active=%v has %d deliveries to it", after, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if checked == 0 {
		t.Fatal("no probe was checked")
	}
}

// One endpoint whose configuration cannot be read must not stop claims
// for the others; its deliveries wait (parked), unfailed.
func TestClaims_UnreadableEndpointIsParkedOthersGoOn(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	broken := heraldtest.NewReceiver(t, nil)
	healthy := heraldtest.NewReceiver(t, nil)
	brokenID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "broken", "url": broken.URL})
	s.CreateEndpoint(s.Token, map[string]any{"name": "healthy", "url": healthy.URL})
	fdb := sqliteFault(t, s.DBPath)
	execSQL(t, fdb, `UPDATE endpoints SET secret = 'not-a-secret' WHERE id = ?`, brokenID)
	// A fresh start knows no configuration: every delivery goes through a
	// claim, and the broken endpoint comes first.
	s = s.Restart()
	var evs []string
	for i := range 5 {
		evs = append(evs, s.Publish(s.Token, "order.created", map[string]any{"n": i}))
	}
	healthy.WaitRequests(t, 5, 5*time.Second)
	if n := len(broken.Requests()); n != 0 {
		t.Fatalf("the endpoint with an unreadable secret got %d requests", n)
	}
	for _, ev := range evs {
		for _, d := range s.Deliveries(s.Token, ev) {
			if d.EndpointID == brokenID && (d.Status != "PENDING" || d.AttemptCount != 0) {
				t.Fatalf("delivery to the broken endpoint = %s after %d attempts, want PENDING and untouched", d.Status, d.AttemptCount)
			}
		}
	}
}

// retryDelivery on a delivery whose attempt is in flight must not answer
// success and then lose the retry when the attempt is recorded.
func TestRetryDelivery_InFlightIsConflict(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	release := make(chan struct{})
	rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			<-release
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": fastRetries(3)})
	ev := s.Publish(s.Token, "order.created", map[string]any{})
	rc.WaitRequests(t, 2, 5*time.Second) // the retry is in flight
	d := s.Deliveries(s.Token, ev)[0]
	r := s.Do(s.Token, `mutation($id: ID!) { retryDelivery(id: $id) { id status } }`, map[string]any{"id": d.ID})
	close(release)
	r.WantError(t, "CONFLICT")
	if r.Errors[0].Extensions["reason"] != "DELIVERY_IN_PROGRESS" {
		t.Fatalf("reason = %v, want DELIVERY_IN_PROGRESS", r.Errors[0].Extensions["reason"])
	}
	got := s.WaitDelivery(s.Token, ev, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	if got.AttemptCount != 2 {
		t.Fatalf("attempts = %d, want 2", got.AttemptCount)
	}
	// Once the attempt is recorded, a retry is accepted and happens.
	s.Do(s.Token, `mutation($id: ID!) { retryDelivery(id: $id) { id } }`, map[string]any{"id": d.ID}).Decode(t, nil)
	rc.WaitRequests(t, 3, 5*time.Second)
}

// Once shutdown begins, deliveries published meanwhile stay queued for the
// next start instead of being sent while the engine drains.
func TestShutdown_PublishesDuringDrainAreNotSent(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	defer once.Do(func() { close(release) })
	s := heraldtest.Start(t, func(c *serverConfig) { c.ShutdownGrace = 10 * time.Second })
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	first := s.Publish(s.Token, "order.created", map[string]any{"n": 1})
	rc.WaitRequests(t, 1, 5*time.Second)
	closed := make(chan error, 1)
	go func() { closed <- s.Server.Close(context.Background()) }()
	if !heraldtest.Eventually(5*time.Second, func() bool {
		resp, err := http.Get(s.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}) {
		t.Fatal("/readyz did not report the shutdown")
	}
	second := s.Publish(s.Token, "order.created", map[string]any{"n": 2})
	once.Do(func() { close(release) })
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := len(rc.Requests()); n != 1 {
		t.Fatalf("receiver got %d requests during the drain, want only the one in flight", n)
	}
	s2 := s.Restart()
	s2.WaitDelivery(s2.Token, second, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	s2.WaitDelivery(s2.Token, first, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" && d.AttemptCount == 1 })
}

// An attempt cut off by shutdown says nothing about the endpoint: it uses
// up no attempt, counts no failure, and the delivery is simply sent after
// the restart.
func TestShutdown_InterruptedAttemptIsNotAFailure(t *testing.T) {
	t.Parallel()
	bin := heraldtest.Binary(t)
	var calls atomic.Int32
	stop := make(chan struct{})
	defer close(stop)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // hang until herald gives up
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	dbPath := filepath.Join(t.TempDir(), "herald.db")
	p := heraldtest.StartProcess(t, bin, "--db", dbPath, "--shutdown-grace", "1s")
	token := p.Token
	var ep struct {
		CreateEndpoint struct{ Endpoint struct{ ID string } }
	}
	if err := json.Unmarshal(p.GraphQL(t, token, `mutation($u: String!) { createEndpoint(input: {name: "slow", url: $u, eventTypes: ["*"], timeout: "30s"}) { endpoint { id } } }`,
		map[string]any{"u": rc.URL}), &ep); err != nil {
		t.Fatal(err)
	}
	var pub struct{ PublishEvent struct{ ID string } }
	if err := json.Unmarshal(p.GraphQL(t, token, `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { id } }`, nil), &pub); err != nil {
		t.Fatal(err)
	}
	rc.WaitRequests(t, 1, 5*time.Second)
	p.Stop(15 * time.Second)

	p = heraldtest.StartProcess(t, bin, "--db", dbPath)
	rc.WaitRequests(t, 2, 10*time.Second)
	var out struct {
		Node struct {
			Status       string
			AttemptCount int
			Endpoint     struct {
				FailureCount        int
				ConsecutiveFailures int
			}
			Attempts struct{ TotalCount int }
		}
	}
	q := `query($e: ID!) { deliveries(first: 1, where: {eventID: $e}) { edges { node { id } } } }`
	var ds struct {
		Deliveries struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	if !heraldtest.Eventually(5*time.Second, func() bool {
		if err := json.Unmarshal(p.GraphQL(t, token, q, map[string]any{"e": pub.PublishEvent.ID}), &ds); err != nil {
			t.Fatal(err)
		}
		id := ds.Deliveries.Edges[0].Node.ID
		if err := json.Unmarshal(p.GraphQL(t, token, `query($id: ID!) { node(id: $id) { ... on Delivery {
			status attemptCount endpoint { failureCount consecutiveFailures } attempts { totalCount } } } }`, map[string]any{"id": id}), &out); err != nil {
			t.Fatal(err)
		}
		return out.Node.Status == "SUCCEEDED"
	}) {
		t.Fatalf("delivery after restart = %+v", out.Node)
	}
	if out.Node.AttemptCount != 1 || out.Node.Attempts.TotalCount != 1 || out.Node.Endpoint.FailureCount != 0 || out.Node.Endpoint.ConsecutiveFailures != 0 {
		t.Fatalf("delivery = %+v, want one recorded attempt (the successful one) and no failure on the endpoint", out.Node)
	}
}

// A caller who gives up on testEndpoint does not cut the attempt off: it
// completes and is recorded as what it was.
func TestTestEndpoint_CallerLeavingDoesNotCutTheAttempt(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(600 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	body, _ := json.Marshal(map[string]any{"query": `mutation($id: ID!) { testEndpoint(id: $id) { delivered } }`, "variables": map[string]any{"id": epID}})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the request did not time out; the test proves nothing")
	}
	var out struct {
		Node struct {
			FailureCount, SuccessCount int
		}
	}
	if !heraldtest.Eventually(5*time.Second, func() bool {
		s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { failureCount successCount } } }`, map[string]any{"id": epID}).Decode(t, &out)
		return out.Node.SuccessCount+out.Node.FailureCount > 0
	}) {
		t.Fatal("the test attempt was never recorded")
	}
	if out.Node.SuccessCount != 1 || out.Node.FailureCount != 0 {
		t.Fatalf("endpoint counters = %+v, want the attempt recorded as the success it was", out.Node)
	}
}

// Hand-offs from publishing must stay within the engine's window and leave
// room for claims: while ingest keeps every endpoint's queue full, a retry
// of another endpoint is still claimed and sent soon after it is due.
func TestFlow_RetryIsSentWhileIngestKeepsTheEngineBusy(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.Workers = 16; c.PerEndpoint = 4 })
	flood := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(30 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	for i := range 40 {
		s.CreateEndpoint(s.Token, map[string]any{"name": fmt.Sprintf("flood %d", i), "url": flood.Hook(fmt.Sprintf("/%d", i)), "eventTypes": []string{"order.created"}})
	}
	var second atomic.Int64
	first := time.Now()
	var firstAt atomic.Int64
	x := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			firstAt.Store(time.Now().UnixNano())
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		second.CompareAndSwap(0, time.Now().UnixNano())
		w.WriteHeader(http.StatusOK)
	})
	s.CreateEndpoint(s.Token, map[string]any{"name": "retry target", "url": x.URL, "eventTypes": []string{"order.paid"},
		"retryPolicy": map[string]any{"maxAttempts": 3, "initialDelay": "100ms", "backoffMultiplier": 1, "maxDelay": "1s"}})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.Publish(s.Token, "order.created", map[string]any{})
			time.Sleep(10 * time.Millisecond)
		}
	}()
	flood.WaitRequests(t, 200, 10*time.Second) // the queues are full by now
	s.Publish(s.Token, "order.paid", map[string]any{})
	ok := heraldtest.Eventually(6*time.Second, func() bool { return second.Load() != 0 })
	close(stop)
	wg.Wait()
	if !ok {
		t.Fatalf("the retry of another endpoint was not sent within 6s while ingest went on (first attempt %v after start)",
			time.Duration(firstAt.Load()-first.UnixNano()))
	}
	t.Logf("retry sent %v after the first attempt", time.Duration(second.Load()-firstAt.Load()).Round(time.Millisecond))
}
