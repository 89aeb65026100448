package dispatch_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestCrash_AFanOutLeftInPartsIsStoredAfterSIGKILL kills a herald process
// while it stores large fan-outs in parts (calls of 1,000 deliveries: one
// transaction and seven parts) and checks that the store held parts at the
// kill, that after a restart every stored event has all the deliveries it
// fanned out to, and that every accepted event reaches every endpoint.
func TestCrash_AFanOutLeftInPartsIsStoredAfterSIGKILL(t *testing.T) {
	t.Parallel()
	bin := heraldtest.Binary(t)
	var (
		mu   sync.Mutex
		seen = map[string]bool{} // event ID and endpoint path
	)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Webhook-Id")+" "+r.URL.Path] = true
		mu.Unlock()
	})
	dbPath := filepath.Join(t.TempDir(), "herald.db")
	p := heraldtest.StartProcess(t, bin, "--db", dbPath)
	token := p.Token
	if token == "" {
		t.Fatalf("no bootstrap token in output:\n%s", p.Output())
	}
	const endpoints, perCall = 100, 10
	for i := 0; i < endpoints; i += 20 {
		var b strings.Builder
		b.WriteString("mutation {")
		for j := i; j < i+20; j++ {
			fmt.Fprintf(&b, ` e%d: createEndpoint(input: {name: "part %d", url: %q, eventTypes: ["*"], allowDuplicate: true}) { secret }`, j, j, rc.Hook(fmt.Sprintf("/%d", j)))
		}
		b.WriteString("}")
		p.GraphQL(t, token, b.String(), nil)
	}

	var (
		accMu    sync.Mutex
		accepted []string
	)
	parts := 0
	for try := 1; parts == 0; try++ {
		if try > 5 {
			t.Fatalf("in %d runs no kill found fan-out parts in the store; the test proves nothing", try-1)
		}
		if try > 1 {
			p = heraldtest.StartProcess(t, bin, "--db", dbPath)
		}
		// Two publishers, each calling until the process dies, which is
		// killed once two calls were answered, as soon as the store holds
		// parts.
		var wg sync.WaitGroup
		for c := range 2 {
			wg.Go(func() {
				for n := 0; ; n++ {
					in := make([]map[string]any, perCall)
					for i := range in {
						in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"try": try, "client": c, "call": n, "i": i}}
					}
					data, _, err := p.Do(token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in})
					var out struct{ PublishEvents []struct{ ID string } }
					if err != nil || json.Unmarshal(data, &out) != nil || len(out.PublishEvents) == 0 {
						return // killed
					}
					accMu.Lock()
					for _, e := range out.PublishEvents {
						accepted = append(accepted, e.ID)
					}
					accMu.Unlock()
				}
			})
		}
		if !heraldtest.Eventually(time.Minute, func() bool {
			accMu.Lock()
			n := len(accepted)
			accMu.Unlock()
			return n >= 2*perCall && countParts(t, dbPath) > 0
		}) {
			t.Fatalf("no fan-out parts appeared in the store within a minute of publishes of %d deliveries", endpoints*perCall)
		}
		p.Kill()
		wg.Wait()
		parts = countParts(t, dbPath)
		t.Logf("run %d: killed herald with %d fan-out parts in the store", try, parts)
	}

	p = heraldtest.StartProcess(t, bin, "--db", dbPath)
	short := func() (string, error) {
		after := any(nil)
		for {
			data := p.GraphQL(t, token, `query($after: Cursor) { events(first: 100, after: $after) {
  pageInfo { hasNextPage endCursor } edges { node { id deliveryCount deliveries { totalCount } } } } }`, map[string]any{"after": after})
			var out struct {
				Events struct {
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
					Edges []struct {
						Node struct {
							ID            string
							DeliveryCount int
							Deliveries    struct{ TotalCount int }
						}
					}
				}
			}
			if err := json.Unmarshal(data, &out); err != nil {
				return "", err
			}
			for _, e := range out.Events.Edges {
				if n := e.Node; n.Deliveries.TotalCount != n.DeliveryCount {
					return fmt.Sprintf("event %s has %d of its %d deliveries", n.ID, n.Deliveries.TotalCount, n.DeliveryCount), nil
				}
			}
			if !out.Events.PageInfo.HasNextPage {
				return "", nil
			}
			after = out.Events.PageInfo.EndCursor
		}
	}
	var last string
	if !heraldtest.Eventually(30*time.Second, func() bool {
		var err error
		if last, err = short(); err != nil {
			t.Fatal(err)
		}
		return last == ""
	}) {
		t.Fatalf("after the restart, %s", last)
	}
	if n := countParts(t, dbPath); n != 0 {
		t.Errorf("%d fan-out parts are still in the store after the restart", n)
	}
	accMu.Lock()
	ids := accepted
	accMu.Unlock()
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, id := range ids {
			for ep := range endpoints {
				if !seen[fmt.Sprintf("%s /%d", id, ep)] {
					n++
				}
			}
		}
		return n
	}
	if !heraldtest.Eventually(2*time.Minute, func() bool { return missing() == 0 }) {
		t.Fatalf("%d deliveries of the %d accepted events never arrived", missing(), len(ids))
	}
	t.Logf("%d accepted events reached all %d endpoints", len(ids), endpoints)
}

// countParts returns how many fan-out parts the SQLite database at path
// holds (read while no herald runs on it).
func countParts(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM fanouts`).Scan(&n); err != nil {
		t.Fatalf("count fan-out parts: %v", err)
	}
	return n
}
