package dispatch_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestCrash_AcceptedEventsAreDeliveredAfterSIGKILL kills a herald process
// while deliveries are in flight and checks that, after a restart, the
// receiver has seen every accepted event at least once.
func TestCrash_AcceptedEventsAreDeliveredAfterSIGKILL(t *testing.T) {
	t.Parallel()
	bin := heraldtest.Binary(t)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // keep deliveries in flight
		mu.Lock()
		seen[r.Header.Get("Webhook-Id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	dbPath := filepath.Join(t.TempDir(), "herald.db")
	p := heraldtest.StartProcess(t, bin, "--db", dbPath, "--per-endpoint", "4")
	if p.Token == "" {
		t.Fatalf("no bootstrap token in output:\n%s", p.Output())
	}
	token := p.Token
	p.GraphQL(t, token, `mutation($u: String!) { createEndpoint(input: {name: "crash", url: $u, eventTypes: ["*"]}) { secret } }`,
		map[string]any{"u": rc.URL})

	const batches, perBatch = 5, 100
	var accepted []string
	for b := 0; b < batches; b++ {
		in := make([]map[string]any, perBatch)
		for i := range in {
			in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"batch": b, "i": i}}
		}
		var out struct{ PublishEvents []struct{ ID string } }
		if err := json.Unmarshal(p.GraphQL(t, token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`,
			map[string]any{"in": in}), &out); err != nil {
			t.Fatal(err)
		}
		for _, e := range out.PublishEvents {
			accepted = append(accepted, e.ID)
		}
	}
	rc.WaitRequests(t, 50, 30*time.Second)
	p.Kill()
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	if before >= len(accepted) {
		t.Fatalf("every event was delivered before the kill (%d); the test proves nothing", before)
	}
	t.Logf("killed herald after %d of %d events were delivered", before, len(accepted))

	heraldtest.StartProcess(t, bin, "--db", dbPath)
	missing := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var m []string
		for _, id := range accepted {
			if seen[id] == 0 {
				m = append(m, id)
			}
		}
		return m
	}
	if !heraldtest.Eventually(60*time.Second, func() bool { return len(missing()) == 0 }) {
		t.Fatalf("%d accepted events were never delivered after the restart, e.g. %v", len(missing()), missing()[:min(5, len(missing()))])
	}
	mu.Lock()
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	mu.Unlock()
	t.Logf("all %d events delivered; %d duplicates (at-least-once)", len(accepted), dups)
}

// TestShutdown_InFlightAttemptsFinishAndQueuedAreReleased closes a server
// gracefully while an attempt is in flight: the attempt is recorded, the
// queued deliveries are released, and after a restart each event arrives
// exactly once.
func TestShutdown_InFlightAttemptsFinishAndQueuedAreReleased(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		seen[r.Header.Get("Webhook-Id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	s := heraldtest.Start(t, func(c *serverConfig) { c.PerEndpoint = 1; c.ShutdownGrace = 5 * time.Second })
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	var evs []string
	for i := 0; i < 4; i++ {
		evs = append(evs, s.Publish(s.Token, "order.created", map[string]any{"n": i}))
	}
	rc.WaitRequests(t, 1, 5*time.Second)
	s.Close() // graceful: waits for the in-flight attempt
	mu.Lock()
	if len(seen) != 1 {
		t.Fatalf("after shutdown the receiver completed %d deliveries, want the 1 in flight", len(seen))
	}
	mu.Unlock()

	s2 := s.Restart()
	for _, ev := range evs {
		s2.WaitDelivery(s2.Token, ev, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range evs {
		if seen[ev] != 1 {
			t.Errorf("event %s delivered %d times, want exactly once", ev, seen[ev])
		}
	}
}
