package dispatch_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// heraldProcess is a herald binary running in its own process.
type heraldProcess struct {
	cmd   *exec.Cmd
	url   string
	out   *heraldtest.SyncBuffer
	token string
}

// buildHerald compiles cmd/herald once per test binary run.
var buildHerald = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "herald-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "herald")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/herald").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var tokenRE = regexp.MustCompile(`hrld_[A-Za-z0-9_-]{43}`)

// startHerald runs `herald serve` on dbPath and waits until it is ready.
func startHerald(t *testing.T, bin, dbPath string, extra ...string) *heraldProcess {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"serve", "--db", dbPath, "--addr", addr, "--allow-http", "--allow-private-destinations",
		"--poll-interval", "20ms", "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	out := &heraldtest.SyncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start herald: %v", err)
	}
	p := &heraldProcess{cmd: cmd, url: "http://" + addr, out: out}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	if !heraldtest.Eventually(30*time.Second, func() bool {
		resp, err := http.Get(p.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("herald did not become ready; output:\n%s", out.String())
	}
	p.token = tokenRE.FindString(out.String())
	return p
}

func (p *heraldProcess) gql(t *testing.T, token, query string, vars map[string]any) json.RawMessage {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, p.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.Unmarshal(raw, &env); err != nil || len(env.Errors) > 0 {
		t.Fatalf("graphql error: %s", raw)
	}
	return env.Data
}

// TestCrash_AcceptedEventsAreDeliveredAfterSIGKILL kills a herald process
// while deliveries are in flight and checks that, after a restart, the
// receiver has seen every accepted event at least once.
func TestCrash_AcceptedEventsAreDeliveredAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the herald binary")
	}
	t.Parallel()
	bin, err := buildHerald()
	if err != nil {
		t.Fatal(err)
	}
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
	p := startHerald(t, bin, dbPath, "--per-endpoint", "4")
	if p.token == "" {
		t.Fatalf("no bootstrap token in output:\n%s", p.out.String())
	}
	token := p.token
	p.gql(t, token, `mutation($u: String!) { createEndpoint(input: {name: "crash", url: $u, eventTypes: ["*"]}) { secret } }`,
		map[string]any{"u": rc.URL})

	const batches, perBatch = 5, 100
	var accepted []string
	for b := 0; b < batches; b++ {
		in := make([]map[string]any, perBatch)
		for i := range in {
			in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"batch": b, "i": i}}
		}
		var out struct{ PublishEvents []struct{ ID string } }
		if err := json.Unmarshal(p.gql(t, token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`,
			map[string]any{"in": in}), &out); err != nil {
			t.Fatal(err)
		}
		for _, e := range out.PublishEvents {
			accepted = append(accepted, e.ID)
		}
	}
	rc.WaitRequests(t, 50, 30*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	if before >= len(accepted) {
		t.Fatalf("every event was delivered before the kill (%d); the test proves nothing", before)
	}
	t.Logf("killed herald after %d of %d events were delivered", before, len(accepted))

	startHerald(t, bin, dbPath)
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
