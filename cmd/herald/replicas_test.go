package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgtest"
)

// TestMain removes the herald binary and stops the PostgreSQL clusters
// the tests started.
func TestMain(m *testing.M) { heraldtest.Main(m) }

// replicaLease is the lease of the replicas in these tests: the shortest
// Herald accepts (the longest timeout plus a margin).
const replicaLease = 36 * time.Second

// startReplicas starts n herald processes on one database at once and
// returns them with the admin key the one that created the default app
// printed.
func startReplicas(t *testing.T, dsn string, n int, extra ...string) ([]*heraldtest.Process, string) {
	t.Helper()
	bin := heraldtest.Binary(t)
	ps := make([]*heraldtest.Process, n)
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps[i] = heraldtest.StartProcess(t, bin, append([]string{"--db", dsn, "--lease", replicaLease.String()}, extra...)...)
		}()
	}
	wg.Wait()
	var tokens []string
	for _, p := range ps {
		if p.Token != "" {
			tokens = append(tokens, p.Token)
		}
	}
	if len(tokens) != 1 {
		t.Fatalf("%d replicas starting at once printed %d admin keys, want exactly 1 (one default app)", n, len(tokens))
	}
	return ps, tokens[0]
}

// counter is a receiver that counts deliveries per webhook-id.
type counter struct {
	*heraldtest.Receiver
	mu   sync.Mutex
	seen map[string]int
	last atomic.Int64 // when the last new event arrived (unix nanos)
}

func newCounter(t *testing.T, delay time.Duration) *counter {
	c := &counter{seen: make(map[string]int)}
	c.Receiver = heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		c.mu.Lock()
		id := r.Header.Get("Webhook-Id")
		if c.seen[id] == 0 {
			c.last.Store(time.Now().UnixNano())
		}
		c.seen[id]++
		c.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	return c
}

func (c *counter) missing(ids []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range ids {
		if c.seen[id] == 0 {
			n++
		}
	}
	return n
}

func (c *counter) stats() (distinct, dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.seen {
		dups += n - 1
	}
	return len(c.seen), dups
}

func decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// Three replicas share one database; two take publishes, all deliver. One
// publishing replica is killed mid-run: its clients publish again on
// another replica with the same idempotency keys, every accepted event
// arrives, and the deliveries the dead replica held are sent by the
// others once their leases expire.
func TestReplicas_KilledReplicaLosesNothing(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	ps, token := startReplicas(t, dsn, 3)
	a, b := ps[0], ps[1]
	rc := newCounter(t, 2*time.Millisecond)
	a.GraphQL(t, token, `mutation($u: String!) { createEndpoint(input: {name: "all", url: $u, eventTypes: ["*"]}) { secret } }`,
		map[string]any{"u": rc.URL})

	const batches, perBatch = 200, 100
	var (
		mu       sync.Mutex
		accepted = make([]string, 0, batches*perBatch)
		moved    atomic.Int32
		killed   atomic.Bool
		killAt   time.Time
	)
	publish := func(p *heraldtest.Process, batch int) error {
		in := make([]map[string]any, perBatch)
		for i := range in {
			in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"b": batch, "i": i},
				"idempotencyKey": fmt.Sprintf("%d-%d", batch, i)}
		}
		data, errs, err := p.Do(token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in})
		if err != nil || errs != nil {
			return fmt.Errorf("%v %s", err, errs)
		}
		var out struct{ PublishEvents []struct{ ID string } }
		decode(t, data, &out)
		mu.Lock()
		for _, e := range out.PublishEvents {
			accepted = append(accepted, e.ID)
		}
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := w; batch < batches; batch += 4 {
				p := a
				if w%2 == 1 {
					p = b
				}
				if err := publish(p, batch); err != nil {
					if !killed.Load() || p != b {
						t.Errorf("publish batch %d: %v", batch, err)
						return
					}
					// B is gone: publish again on A. The key makes it
					// safe if B had stored the batch before it died.
					moved.Add(1)
					if err := publish(a, batch); err != nil {
						t.Errorf("publish batch %d again on A: %v", batch, err)
						return
					}
				}
			}
		}()
	}
	rc.WaitRequests(t, batches*perBatch/4, 60*time.Second)
	killAt = time.Now()
	killed.Store(true)
	b.Kill()
	wg.Wait()
	if t.Failed() {
		return
	}
	mu.Lock()
	ids := append([]string(nil), accepted...)
	mu.Unlock()
	unique := map[string]bool{}
	for _, id := range ids {
		unique[id] = true
	}
	if !heraldtest.Eventually(replicaLease+60*time.Second, func() bool { return rc.missing(ids) == 0 }) {
		t.Fatalf("%d of %d accepted events never arrived", rc.missing(ids), len(unique))
	}
	distinct, dups := rc.stats()
	lastAt := time.Unix(0, rc.last.Load())
	t.Logf("%d events accepted (%d batches republished after the kill), %d arrived, %d duplicates; the last new one %v after the kill",
		len(unique), moved.Load(), distinct, dups, lastAt.Sub(killAt).Round(time.Millisecond))
	if distinct != len(unique) {
		t.Fatalf("receiver saw %d distinct events, %d accepted", distinct, len(unique))
	}
	// The dead replica's deliveries come due when their leases expire;
	// the rest is sending them, slower on a loaded machine.
	if took := lastAt.Sub(killAt); took > replicaLease+30*time.Second {
		t.Fatalf("the dead replica's deliveries arrived %v after the kill, want within the lease (%v) and some seconds", took, replicaLease)
	}
	// Only what the dead replica had in flight may repeat: at most its
	// window (2 × workers) of deliveries.
	if dups > 2*128 {
		t.Fatalf("%d duplicates, more than the dead replica could have had in flight", dups)
	}
}

// A console on one replica sees deliveries published on another, in
// order; a key (or portal session) revoked on one replica loses its
// websocket on another; an endpoint disabled on one replica gets nothing
// more from another.
func TestReplicas_LiveFeedsRevocationAndDisableReachEveryReplica(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	ps, token := startReplicas(t, dsn, 2, "--per-endpoint", "1")
	a, b := ps[0], ps[1]

	// Live feed: subscribe on A, publish on B.
	rc := newCounter(t, 0)
	a.GraphQL(t, token, `mutation($u: String!) { createEndpoint(input: {name: "fast", url: $u, eventTypes: ["order.*"]}) { endpoint { id } } }`,
		map[string]any{"u": rc.URL})
	ws, _, err := heraldtest.DialWS(a.URL, heraldtest.TransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.Init(map[string]any{"Authorization": "Bearer " + token}); err != nil {
		t.Fatal(err)
	}
	if err := ws.Subscribe("1", `subscription { deliveryUpdated(eventType: "order.*") { kind status eventId } }`, nil); err != nil {
		t.Fatal(err)
	}
	// The protocol does not acknowledge a subscription: publish on B until
	// the updates of one event reach A from its creation on.
	kinds := map[string][]string{}
	complete := ""
	for tries := 0; complete == "" && tries < 20; tries++ {
		b.GraphQL(t, token, `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { id } }`, nil)
		deadline := time.Now().Add(500 * time.Millisecond)
		for complete == "" && time.Now().Before(deadline) {
			var m heraldtest.WSMessage
			select {
			case m = <-ws.Messages():
			case <-time.After(time.Until(deadline)):
				continue
			}
			if m.Type != "next" {
				continue
			}
			var d struct {
				Data struct {
					DeliveryUpdated struct{ Kind, Status, EventID string }
				}
			}
			decode(t, m.Payload, &d)
			u := d.Data.DeliveryUpdated
			kinds[u.EventID] = append(kinds[u.EventID], u.Kind)
			if u.Kind == "ATTEMPT_FINISHED" && kinds[u.EventID][0] == "CREATED" {
				complete = u.EventID
			}
		}
	}
	if complete == "" {
		t.Fatalf("A's console saw no whole delivery published on B: %v", kinds)
	}
	if got := strings.Join(kinds[complete], " "); got != "CREATED ATTEMPT_STARTED ATTEMPT_FINISHED" {
		t.Fatalf("updates on A about a delivery published on B: %s", got)
	}

	// Revocation: a key's socket on B closes when A revokes it.
	var key struct {
		CreateAPIKey struct {
			Token  string
			APIKey struct{ ID string }
		}
	}
	decode(t, a.GraphQL(t, token, `mutation { createAPIKey(input: {name: "console"}) { token apiKey { id } } }`, nil), &key)
	ws2, _, err := heraldtest.DialWS(b.URL, heraldtest.TransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	if err := ws2.Init(map[string]any{"Authorization": "Bearer " + key.CreateAPIKey.Token}); err != nil {
		t.Fatal(err)
	}
	a.GraphQL(t, token, `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": key.CreateAPIKey.APIKey.ID})
	if code, _, ok := ws2.WaitClosed(time.Second); !ok || code != 4401 {
		t.Fatalf("B's socket of the key revoked on A: closed=%v code %d, want closed with 4401 within a second", ok, code)
	}
	// So do an app's portal sessions, revoked all at once.
	var sess struct{ CreatePortalSession struct{ Token string } }
	decode(t, a.GraphQL(t, token, `mutation { createPortalSession(input: {}) { token } }`, nil), &sess)
	ws4, _, err := heraldtest.DialWS(b.URL, heraldtest.TransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws4.Close()
	if err := ws4.Init(map[string]any{"Authorization": "Bearer " + sess.CreatePortalSession.Token}); err != nil {
		t.Fatal(err)
	}
	a.GraphQL(t, token, `mutation { revokePortalSessions { count } }`, nil)
	if code, _, ok := ws4.WaitClosed(time.Second); !ok || code != 4401 {
		t.Fatalf("B's socket of a portal session revoked on A: closed=%v code %d, want closed with 4401 within a second", ok, code)
	}

	// Disable on A: B, which is sending the endpoint's queue one request at
	// a time, sends nothing more.
	release := make(chan struct{})
	var releaseOnce sync.Once
	slow := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-release
		w.WriteHeader(http.StatusOK)
	})
	// Registered after the receiver, so run before its Close: a failure
	// before close(release) must not leave Close waiting for ever.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var slowEP struct {
		CreateEndpoint struct{ Endpoint struct{ ID string } }
	}
	decode(t, a.GraphQL(t, token, `mutation($u: String!) { createEndpoint(input: {name: "slow", url: $u, eventTypes: ["contact.*"]}) { endpoint { id } } }`,
		map[string]any{"u": slow.URL}), &slowEP)
	slowID := slowEP.CreateEndpoint.Endpoint.ID
	ws3, _, err := heraldtest.DialWS(b.URL, heraldtest.TransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws3.Close()
	if err := ws3.Init(map[string]any{"Authorization": "Bearer " + token}); err != nil {
		t.Fatal(err)
	}
	if err := ws3.Subscribe("e", `subscription($id: ID!) { endpointUpdated(endpointId: $id) { reason } }`, map[string]any{"id": slowID}); err != nil {
		t.Fatal(err)
	}
	in := make([]map[string]any, 20)
	for i := range in {
		in[i] = map[string]any{"eventType": "contact.created", "payload": map[string]any{"i": i}}
	}
	var evs struct{ PublishEvents []struct{ ID string } }
	decode(t, b.GraphQL(t, token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}), &evs)
	// Each replica sends one request at a time (--per-endpoint 1): both
	// have one in flight by now.
	if !heraldtest.Eventually(5*time.Second, func() bool { return len(slow.Requests()) == 2 }) {
		t.Fatalf("%d requests in flight, want one per replica", len(slow.Requests()))
	}
	a.GraphQL(t, token, `mutation($id: ID!) { updateEndpoint(id: $id, input: {isActive: false}) { id } }`, map[string]any{"id": slowID})
	inFlight := len(slow.Requests())
	// B hears of the change on its live feed after its engine did (one
	// connection carries both, in order).
	for {
		var u struct{ EndpointUpdated struct{ Reason string } }
		decode(t, ws3.Next(t, "e", 5*time.Second).Data, &u)
		if u.EndpointUpdated.Reason == "updated" {
			break
		}
	}
	releaseOnce.Do(func() { close(release) })
	if !heraldtest.Eventually(10*time.Second, func() bool {
		var out struct {
			Deliveries struct {
				Edges []struct{ Node struct{ Status string } }
			}
		}
		decode(t, a.GraphQL(t, token, `query($id: ID!) { deliveries(first: 100, where: {endpointID: $id}) { edges { node { status } } } }`,
			map[string]any{"id": slowID}), &out)
		for _, e := range out.Deliveries.Edges {
			if e.Node.Status != "SUCCEEDED" && e.Node.Status != "FAILED" {
				return false
			}
		}
		return len(out.Deliveries.Edges) == 20
	}) {
		t.Fatal("the deliveries of the disabled endpoint did not all finish")
	}
	if n := len(slow.Requests()); n != inFlight {
		t.Fatalf("the endpoint disabled on A got %d requests, want only the %d in flight when it was disabled", n, inFlight)
	}
}
