package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/client/webhook"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgtest"
)

// listenProc is herald listen running in a process of its own, as a
// developer runs it, so that tests can kill it.
type listenProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *heraldtest.SyncBuffer
	done chan struct{}
	code int
}

// listenEnv is where a developer runs herald listen: a server, a key and
// a config directory (where herald listen saves its listeners).
type listenEnv struct {
	t      *testing.T
	bin    string
	url    string
	token  string
	config string
}

func newListenEnv(t *testing.T, url, token string) *listenEnv {
	return &listenEnv{t: t, bin: heraldtest.Binary(t), url: url, token: token, config: filepath.Join(t.TempDir(), "config.json")}
}

// start runs herald listen with args.
func (e *listenEnv) start(args ...string) *listenProc {
	e.t.Helper()
	p := &listenProc{t: e.t, out: &heraldtest.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(e.bin, append([]string{"listen"}, args...)...)
	p.cmd.Env = append(os.Environ(), "HERALD_URL="+e.url, "HERALD_API_KEY="+e.token, "HERALD_CONFIG="+e.config, "HERALD_APP=")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("start herald listen: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	e.t.Cleanup(p.kill)
	return p
}

// run runs another herald command where herald listen runs, and returns
// its output.
func (e *listenEnv) run(args ...string) string {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "HERALD_URL="+e.url, "HERALD_API_KEY="+e.token, "HERALD_CONFIG="+e.config, "HERALD_APP=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("herald %s: %v; output:\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kill kills the CLI at once, as a crash or a closed laptop would.
func (p *listenProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// interrupt stops the CLI as Ctrl-C does and returns its exit code.
func (p *listenProc) interrupt() int {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("herald listen did not stop on Ctrl-C; output:\n%s", p.out.String())
	}
	return p.code
}

// wait waits until the CLI's output matches re, and returns the match's
// submatches.
func (p *listenProc) wait(re string, timeout time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	if !heraldtest.Eventually(timeout, func() bool { m = rx.FindStringSubmatch(p.out.String()); return m != nil }) {
		p.t.Fatalf("herald listen did not print %q within %s; output:\n%s", re, timeout, p.out.String())
	}
	return m
}

// count counts the CLI's output lines that match re.
func (p *listenProc) count(re string) int {
	return len(regexp.MustCompile(re).FindAllStringIndex(p.out.String(), -1))
}

// exited waits for the CLI to exit and returns its exit code.
func (p *listenProc) exited(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("herald listen still runs after %s; output:\n%s", timeout, p.out.String())
		return -1
	}
}

// startSQLite starts a herald process on a SQLite file of the test's.
func startSQLite(t *testing.T, db string) *heraldtest.Process {
	t.Helper()
	return heraldtest.StartProcess(t, heraldtest.Binary(t), "--db", db)
}

// publish publishes an event on p and returns its ID.
func publish(t *testing.T, p *heraldtest.Process, token, eventType string, payload any) string {
	t.Helper()
	var out struct{ PublishEvent struct{ ID string } }
	decode(t, p.GraphQL(t, token, `mutation($t: String!, $p: JSON!) { publishEvent(input: {eventType: $t, payload: $p}) { id } }`,
		map[string]any{"t": eventType, "p": payload}), &out)
	return out.PublishEvent.ID
}

// listenerDeliveries returns the deliveries of event IDs, with their
// attempts, oldest attempt first.
type listenerDelivery struct {
	ID, Status, EventID string
	AttemptCount        int
	Attempts            struct {
		Edges []struct {
			Node struct {
				AttemptNumber  int
				ResponseStatus *int
				ResponseBody   string
				ErrorMessage   *string
			}
		}
	}
}

func deliveriesOf(t *testing.T, p *heraldtest.Process, token, endpointID string) []listenerDelivery {
	t.Helper()
	var out struct {
		Deliveries struct {
			Edges []struct{ Node listenerDelivery }
		}
	}
	decode(t, p.GraphQL(t, token, `query($id: ID!) { deliveries(first: 20, where: {endpointID: $id}, orderBy: {field: CREATED_AT}) { edges { node {
  id status eventID attemptCount attempts(first: 3, orderBy: {field: ATTEMPT_NUMBER}) { edges { node { attemptNumber responseStatus responseBody errorMessage } } } } } } }`,
		map[string]any{"id": endpointID}), &out)
	ds := make([]listenerDelivery, len(out.Deliveries.Edges))
	for i, e := range out.Deliveries.Edges {
		ds[i] = e.Node
	}
	return ds
}

// allSucceeded waits until the listener's n deliveries all succeeded.
func allSucceeded(t *testing.T, p *heraldtest.Process, token, listenerID string, n int, timeout time.Duration) []listenerDelivery {
	t.Helper()
	var ds []listenerDelivery
	ok := heraldtest.Eventually(timeout, func() bool {
		ds = deliveriesOf(t, p, token, listenerID)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.Status != "SUCCEEDED" {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("the listener's deliveries did not all succeed within %s: %+v", timeout, ds)
	}
	return ds
}

// webhookIDs returns the webhook-id of each request, in arrival order.
func webhookIDs(rs []heraldtest.Request) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.Header.Get("Webhook-Id")
	}
	return ids
}

var (
	secretRE   = `Signing secret: (whsec_\S+)`
	listenerRE = `(?:Opened|Resumed) listener (ep_\w+)`
)

// The local receiver gets each event with Herald's headers and a signature
// that verifies with the secret herald listen printed, and the attempt is
// recorded with the local status and body.
func TestListen_ForwardsEventsSignedWithThePrintedSecret(t *testing.T) {
	t.Parallel()
	srv := startSQLite(t, filepath.Join(t.TempDir(), "herald.db"))
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Local", "yes")
		_, _ = w.Write([]byte("handled locally"))
	})
	e := newListenEnv(t, srv.URL, srv.Token)
	cli := e.start("--forward-to", rc.Hook("/webhooks"), "--events", "order.*")
	secret := cli.wait(secretRE, 30*time.Second)[1]
	listener := cli.wait(listenerRE, time.Second)[1]
	cli.wait(`(?m)^connected$`, 30*time.Second)

	ev := publish(t, srv, srv.Token, "order.created", map[string]any{"orderId": "ord_1"})
	publish(t, srv, srv.Token, "contact.created", map[string]any{}) // not subscribed
	req := rc.WaitRequests(t, 1, 30*time.Second)[0]
	if req.Method != http.MethodPost || req.Path != "/webhooks" || req.Header.Get("Webhook-Id") != ev || req.Header.Get("X-Herald-Event-Type") != "order.created" {
		t.Fatalf("the local receiver got %s %s with headers %v", req.Method, req.Path, req.Header)
	}
	if err := webhook.Verify(secret, req.Header, req.Body); err != nil {
		t.Fatalf("the forwarded request does not verify with the printed secret: %v", err)
	}
	cli.wait(`order\.created\s+`+ev+`\s+→ 200 OK\s+\S+ms`, 30*time.Second)
	ds := allSucceeded(t, srv, srv.Token, listener, 1, 30*time.Second)
	a := ds[0].Attempts.Edges[0].Node
	if a.ResponseStatus == nil || *a.ResponseStatus != 200 || a.ResponseBody != "handled locally" {
		t.Fatalf("attempt recorded %+v, want the local answer", a)
	}
	if len(rc.Requests()) != 1 {
		t.Fatalf("the local receiver got %d requests, want only the subscribed event", len(rc.Requests()))
	}
	// herald endpoints shows it as a listener, connected.
	if list := e.run("endpoints", "list"); !regexp.MustCompile(listener + `\s+herald listen\s+LISTENER \(connected\)\s+` + regexp.QuoteMeta(rc.Hook("/webhooks"))).MatchString(list) {
		t.Errorf("herald endpoints list printed:\n%s\nwant the listener as LISTENER (connected)", list)
	}
	contains(t, e.run("endpoints", "get", listener), "connected: a herald listen session holds it", "TTL 24h")
	if code := cli.interrupt(); code != 0 {
		t.Fatalf("Ctrl-C: exit %d, want 0; output:\n%s", code, cli.out.String())
	}
	contains(t, cli.out.String(), "Stopped. Deliveries to "+listener+" wait")
	contains(t, e.run("endpoints", "get", listener), "not connected: its deliveries wait for herald listen")
}

// A local failure is retried by Herald with the listener's retry policy,
// and every try is an attempt of the delivery.
func TestListen_LocalFailuresAreRetriedByHerald(t *testing.T) {
	t.Parallel()
	srv := startSQLite(t, filepath.Join(t.TempDir(), "herald.db"))
	rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	})
	e := newListenEnv(t, srv.URL, srv.Token)
	cli := e.start("--forward-to", rc.Hook("/webhooks"))
	listener := cli.wait(listenerRE, 30*time.Second)[1]
	cli.wait(`(?m)^connected$`, 30*time.Second)
	ev := publish(t, srv, srv.Token, "order.created", map[string]any{"orderId": "ord_2"})
	cli.wait(ev+`\s+→ 500 Internal Server Error .*retries`, 30*time.Second)
	// The default policy tries again after about five seconds.
	cli.wait(ev+`\s+→ 200 OK\s+\S+\s+\(attempt 2\)`, 60*time.Second)
	ds := allSucceeded(t, srv, srv.Token, listener, 1, 30*time.Second)
	at := ds[0].Attempts.Edges
	if ds[0].AttemptCount != 2 || len(at) != 2 || *at[0].Node.ResponseStatus != 500 || !strings.Contains(at[0].Node.ResponseBody, "boom") ||
		*at[1].Node.ResponseStatus != 200 {
		t.Fatalf("delivery %+v, want a 500 attempt then a 200 one", ds[0])
	}
	if n := len(rc.Requests()); n != 2 {
		t.Fatalf("the local receiver got %d requests, want 2", n)
	}
}

// Events published while herald listen is down wait for it: restarted,
// it resumes its listener, says how many it catches up on, and forwards
// them all, in order, once each.
func TestListen_CatchesUpInOrderAfterARestart(t *testing.T) {
	t.Parallel()
	srv := startSQLite(t, filepath.Join(t.TempDir(), "herald.db"))
	rc := heraldtest.NewReceiver(t, nil)
	e := newListenEnv(t, srv.URL, srv.Token)
	cli := e.start("--forward-to", rc.URL, "--events", "order.*")
	listener := cli.wait(listenerRE, 30*time.Second)[1]
	cli.wait(`(?m)^connected$`, 30*time.Second)
	cli.kill()

	var ids []string
	for i := range 10 {
		ids = append(ids, publish(t, srv, srv.Token, "order.created", map[string]any{"n": i}))
	}
	// Nothing was sent, and no attempt used, while nobody listened.
	for _, d := range deliveriesOf(t, srv, srv.Token, listener) {
		if d.AttemptCount != 0 || d.Status != "PENDING" {
			t.Fatalf("delivery %s is %s with %d attempts while the listener was away, want PENDING without attempts", d.ID, d.Status, d.AttemptCount)
		}
	}

	again := e.start("--forward-to", rc.URL, "--events", "order.*")
	if got := again.wait(listenerRE, 30*time.Second); !strings.HasPrefix(got[0], "Resumed") || got[1] != listener {
		t.Fatalf("restarted, herald listen printed %q, want it to resume %s", got[0], listener)
	}
	again.wait(`connected: catching up on 10 waiting deliveries`, 30*time.Second)
	ds := allSucceeded(t, srv, srv.Token, listener, 10, 60*time.Second)
	for _, d := range ds {
		if d.AttemptCount != 1 {
			t.Fatalf("delivery %s took %d attempts, want 1", d.ID, d.AttemptCount)
		}
	}
	if got := webhookIDs(rc.Requests()); strings.Join(got, " ") != strings.Join(ids, " ") {
		t.Fatalf("the local receiver got\n%v\nwant each event once, in publish order:\n%v", got, ids)
	}
	if n := again.count(`→ 200 OK`); n != 10 {
		t.Fatalf("herald listen printed %d forwarded lines, want 10:\n%s", n, again.out.String())
	}
}

// The server restarted under herald listen: it reconnects by itself and
// nothing is lost, neither what was in flight nor what was published
// after.
func TestListen_ReconnectsWhenTheServerRestarts(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "herald.db")
	srv := startSQLite(t, db)
	token := srv.Token
	proxy := heraldtest.NewProxy(t, srv.URL)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { time.Sleep(100 * time.Millisecond) })
	e := newListenEnv(t, proxy.URL, token)
	cli := e.start("--forward-to", rc.URL)
	listener := cli.wait(listenerRE, 30*time.Second)[1]
	cli.wait(`(?m)^connected$`, 30*time.Second)

	var ids []string
	for i := range 5 {
		ids = append(ids, publish(t, srv, token, "order.created", map[string]any{"n": i}))
	}
	rc.WaitRequests(t, 1, 30*time.Second)
	srv.Stop(30 * time.Second) // while the listener is catching up
	cli.wait(`disconnected: .*; reconnecting in`, 30*time.Second)

	srv = heraldtest.StartProcess(t, heraldtest.Binary(t), "--db", db)
	proxy.SetTarget(srv.URL)
	cli.wait(`(?s)disconnected: .*connected`, 60*time.Second)
	for i := 5; i < 10; i++ {
		ids = append(ids, publish(t, srv, token, "order.created", map[string]any{"n": i}))
	}
	allSucceeded(t, srv, token, listener, 10, 60*time.Second)
	seen := map[string]bool{}
	for _, id := range webhookIDs(rc.Requests()) {
		seen[id] = true
	}
	for _, id := range ids {
		if !seen[id] {
			t.Fatalf("event %s never reached the local receiver; it got %v", id, webhookIDs(rc.Requests()))
		}
	}
}

// A connection that goes silent (a proxy that stops forwarding, a laptop's
// sleep) is found dead within 30 seconds by the CLI and by the server,
// which releases the delivery it had pushed into it; the CLI reconnects by
// itself once the network is back, and the delivery arrives on its first
// attempt.
func TestListen_FindsASilentConnectionDeadWithin30s(t *testing.T) {
	t.Parallel()
	srv := startSQLite(t, filepath.Join(t.TempDir(), "herald.db"))
	proxy := heraldtest.NewProxy(t, srv.URL)
	rc := heraldtest.NewReceiver(t, nil)
	e := newListenEnv(t, proxy.URL, srv.Token)
	cli := e.start("--forward-to", rc.URL)
	listener := cli.wait(listenerRE, 30*time.Second)[1]
	cli.wait(`(?m)^connected$`, 30*time.Second)
	connected := func() bool {
		var out struct {
			Node struct{ Listener struct{ Connected bool } }
		}
		decode(t, srv.GraphQL(t, srv.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { listener { connected } } } }`,
			map[string]any{"id": listener}), &out)
		return out.Node.Listener.Connected
	}
	if !connected() {
		t.Fatal("the listener does not show connected")
	}

	proxy.Freeze()
	frozen := time.Now()
	ev := publish(t, srv, srv.Token, "order.created", map[string]any{"n": 1}) // pushed into the silence
	if !heraldtest.Eventually(40*time.Second, func() bool { return !connected() }) {
		t.Fatal("the server never found the silent connection dead")
	}
	serverTook := time.Since(frozen)
	if serverTook > 30*time.Second {
		t.Fatalf("the server found the silent connection dead after %s, want within 30s", serverTook.Round(time.Second))
	}
	cli.wait(`disconnected: no heartbeat`, 40*time.Second)
	cliTook := time.Since(frozen)
	if cliTook > 30*time.Second {
		t.Fatalf("herald listen found the silent connection dead after %s, want within 30s", cliTook.Round(time.Second))
	}
	t.Logf("a silent connection found dead by the server after %s, by herald listen after %s (at most)",
		serverTook.Round(100*time.Millisecond), cliTook.Round(100*time.Millisecond))
	if n := len(rc.Requests()); n != 0 {
		t.Fatalf("the local receiver got %d requests through a frozen connection", n)
	}

	proxy.Thaw()
	cli.wait(`(?s)disconnected: no heartbeat.*\nconnected: catching up on 1 waiting delivery`, 60*time.Second)
	ds := allSucceeded(t, srv, srv.Token, listener, 1, 30*time.Second)
	if ds[0].AttemptCount != 1 || rc.Requests()[0].Header.Get("Webhook-Id") != ev {
		t.Fatalf("delivery %+v: the push lost in the silence should not have used an attempt", ds[0])
	}
}

// With two PostgreSQL replicas, herald listen reconnecting to the other
// one carries on there: nothing is lost, events published on either
// replica arrive.
func TestListen_CarriesOnOnAnotherReplica(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	ps, token := startReplicas(t, dsn, 2)
	a, b := ps[0], ps[1]
	proxy := heraldtest.NewProxy(t, a.URL)
	rc := heraldtest.NewReceiver(t, nil)
	e := newListenEnv(t, proxy.URL, token)
	cli := e.start("--forward-to", rc.URL)
	listener := cli.wait(listenerRE, 30*time.Second)[1]
	cli.wait(`(?m)^connected$`, 30*time.Second)

	var ids []string
	for i := range 5 {
		p := a
		if i%2 == 1 {
			p = b
		}
		ids = append(ids, publish(t, p, token, "order.created", map[string]any{"n": i}))
	}
	rc.WaitRequests(t, 5, 60*time.Second)

	// The connection moves to B.
	proxy.SetTarget(b.URL)
	proxy.Cut()
	cli.wait(`(?s)disconnected: .*\nconnected`, 60*time.Second)
	for i := 5; i < 10; i++ {
		p := a
		if i%2 == 1 {
			p = b
		}
		ids = append(ids, publish(t, p, token, "order.created", map[string]any{"n": i}))
	}
	ds := allSucceeded(t, b, token, listener, 10, 60*time.Second)
	seen := map[string]int{}
	for _, id := range webhookIDs(rc.Requests()) {
		seen[id]++
	}
	for _, id := range ids {
		if seen[id] == 0 {
			t.Fatalf("event %s never reached the local receiver after the move to replica B", id)
		}
	}
	for _, d := range ds {
		if d.AttemptCount != 1 {
			t.Fatalf("delivery %s took %d attempts, want 1", d.ID, d.AttemptCount)
		}
	}
}

// One session holds a listener: a second herald listen on it, through
// another replica, takes it over; the first is told and exits, and the
// listener's deliveries go to the second.
func TestListen_ANewSessionOnAnotherReplicaTakesTheListenerOver(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	ps, token := startReplicas(t, dsn, 2)
	a, b := ps[0], ps[1]
	first := heraldtest.NewReceiver(t, nil)
	second := heraldtest.NewReceiver(t, nil)
	one := newListenEnv(t, a.URL, token).start("--forward-to", first.URL)
	listener := one.wait(listenerRE, 30*time.Second)[1]
	one.wait(`(?m)^connected$`, 30*time.Second)

	two := newListenEnv(t, b.URL, token).start("--forward-to", second.URL, "--listener", listener)
	if got := two.wait(listenerRE, 30*time.Second); !strings.HasPrefix(got[0], "Resumed") {
		t.Fatalf("herald listen --listener printed %q, want it to resume %s", got[0], listener)
	}
	two.wait(`(?m)^connected$`, 30*time.Second)
	if code := one.exited(30 * time.Second); code != exitConflict {
		t.Fatalf("the first session exited %d, want %d; output:\n%s", code, exitConflict, one.out.String())
	}
	contains(t, one.out.String(), "took this listener over")

	ev := publish(t, a, token, "order.created", map[string]any{})
	if got := second.WaitRequests(t, 1, 60*time.Second); got[0].Header.Get("Webhook-Id") != ev {
		t.Fatalf("the second session got %v", webhookIDs(got))
	}
	if n := len(first.Requests()); n != 0 {
		t.Fatalf("the session that was taken over got %d requests", n)
	}
}

// Wrong command lines and refusals say what to do, with the exit codes of
// the other commands.
func TestListen_CommandLineMistakes(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	e.fails(exitUsage, "--forward-to is required", "listen")
	e.fails(exitUsage, "want an http(s) URL", "listen", "--forward-to", "localhost:3000")
	e.fails(exitUsage, "not a listener", "listen", "--forward-to", "http://localhost:3000", "--listener",
		func() string {
			id, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "web", "url": "http://127.0.0.1:9/x", "eventTypes": []string{"*"}})
			return id
		}())
	e.fails(exitUsage, "input.ttl", "listen", "--forward-to", "http://localhost:3000", "--ttl", "10s")
	e.fails(exitNotFound, "not found", "listen", "--forward-to", "http://localhost:3000", "--listener", "ep_01M95000000000000000000000")
}

// listenIn runs herald listen in this process (against an in-process
// server) until the test ends, and returns its output.
func (e *cliEnv) listenIn(args ...string) *heraldtest.SyncBuffer {
	e.t.Helper()
	out := &heraldtest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, append([]string{"listen"}, args...), strings.NewReader(""), out, out, func(k string) string { return e.vars[k] })
	}()
	e.t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			e.t.Errorf("herald listen exited %d; output:\n%s", code, out.String())
		}
	})
	if !heraldtest.Eventually(30*time.Second, func() bool { return regexp.MustCompile(`(?m)^connected`).MatchString(out.String()) }) {
		e.t.Fatalf("herald listen did not connect; output:\n%s", out.String())
	}
	return out
}

// publishIn publishes an event with an ordering key on an in-process
// server.
func publishIn(t *testing.T, s *heraldtest.Server, eventType, key string, payload any) string {
	t.Helper()
	in := map[string]any{"eventType": eventType, "payload": payload}
	if key != "" {
		in["orderingKey"] = key
	}
	var out struct{ PublishEvent struct{ ID string } }
	s.Do(s.Token, `mutation($in: PublishEventInput!) { publishEvent(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, &out)
	return out.PublishEvent.ID
}

// Filters, ordering and rate limits work on listeners as on endpoints.
func TestListen_FiltersOrderingAndRateLimitsApply(t *testing.T) {
	t.Parallel()
	failFirst := func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}
	t.Run("filter", func(t *testing.T) {
		t.Parallel()
		s := heraldtest.Start(t)
		rc := heraldtest.NewReceiver(t, nil)
		newCLI(t, s).listenIn("--forward-to", rc.URL, "--filter", `{"data.total": {"$gte": 1000}}`)
		publishIn(t, s, "order.created", "", map[string]any{"total": 500})
		big := publishIn(t, s, "order.created", "", map[string]any{"total": 1500})
		rc.WaitRequests(t, 1, 30*time.Second)
		if got := webhookIDs(rc.Requests()); len(got) != 1 || got[0] != big {
			t.Fatalf("the local receiver got %v, want only %s, whose total matches the filter", got, big)
		}
	})
	t.Run("strict ordering", func(t *testing.T) {
		t.Parallel()
		s := heraldtest.Start(t)
		rc := heraldtest.NewReceiver(t, failFirst)
		newCLI(t, s).listenIn("--forward-to", rc.URL, "--ordering", "strict")
		e1 := publishIn(t, s, "order.created", "", map[string]any{"n": 1})
		e2 := publishIn(t, s, "order.created", "", map[string]any{"n": 2})
		e3 := publishIn(t, s, "order.created", "", map[string]any{"n": 3})
		rc.WaitRequests(t, 4, 60*time.Second)
		if got, want := strings.Join(webhookIDs(rc.Requests()), " "), strings.Join([]string{e1, e1, e2, e3}, " "); got != want {
			t.Fatalf("the local receiver got %s, want %s: the later events wait for the first one's retry", got, want)
		}
	})
	t.Run("key ordering", func(t *testing.T) {
		t.Parallel()
		s := heraldtest.Start(t)
		rc := heraldtest.NewReceiver(t, failFirst)
		newCLI(t, s).listenIn("--forward-to", rc.URL, "--ordering", "key")
		a1 := publishIn(t, s, "order.created", "ord_a", map[string]any{"n": 1})
		b1 := publishIn(t, s, "order.created", "ord_b", map[string]any{"n": 2})
		a2 := publishIn(t, s, "order.created", "ord_a", map[string]any{"n": 3})
		rc.WaitRequests(t, 4, 60*time.Second)
		if got, want := strings.Join(webhookIDs(rc.Requests()), " "), strings.Join([]string{a1, b1, a1, a2}, " "); got != want {
			t.Fatalf("the local receiver got %s, want %s: ord_a's second event waits for its first, ord_b's does not", got, want)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		t.Parallel()
		s := heraldtest.Start(t)
		rc := heraldtest.NewReceiver(t, nil)
		newCLI(t, s).listenIn("--forward-to", rc.URL, "--rate-limit", "2/1s")
		for i := range 6 {
			publishIn(t, s, "order.created", "", map[string]any{"n": i})
		}
		rs := rc.WaitRequests(t, 6, 60*time.Second)
		for i := 2; i < len(rs); i++ {
			// Two requests per second at most, as the receiver saw them
			// (give or take the local hop's jitter).
			if gap := rs[i].At.Sub(rs[i-2].At); gap < 900*time.Millisecond {
				t.Fatalf("requests %d and %d arrived %s apart: more than 2 in a second", i-2, i, gap)
			}
		}
	})
}

// herald endpoints test on a listener that no session holds says that the
// test waits for herald listen, and which delivery to follow; once herald
// listen holds it, the test goes through it to the local receiver.
func TestListen_EndpointsTestOfAListener(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	var out struct {
		CreateListener struct{ Endpoint struct{ ID string } }
	}
	s.Do(s.Token, `mutation { createListener(input: {eventTypes: ["*"], forwardTo: "http://localhost:3000/hooks", timeout: "100ms"}) { endpoint { id } } }`, nil).Decode(t, &out)
	id := out.CreateListener.Endpoint.ID
	r := e.fails(exitFailure, "waits for herald listen", "endpoints", "test", id)
	contains(t, r.stdout, "not sent yet")

	rc := heraldtest.NewReceiver(t, nil)
	e.listenIn("--forward-to", rc.URL, "--listener", id)
	rc.WaitRequests(t, 1, 30*time.Second) // the first test, caught up on
	contains(t, e.ok("endpoints", "test", id), "Delivered:  yes", "Status:     200")
}

// With --json, herald listen prints one JSON object per line for scripts:
// the listener and its secret, each connection, each forwarded delivery.
func TestListen_JSONLinesForScripts(t *testing.T) {
	t.Parallel()
	srv := startSQLite(t, filepath.Join(t.TempDir(), "herald.db"))
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	e := newListenEnv(t, srv.URL, srv.Token)
	cli := e.start("--forward-to", rc.URL, "--events", "order.*", "--json")
	cli.wait(`"status":"connected"`, 30*time.Second)
	ev := publish(t, srv, srv.Token, "order.created", map[string]any{"orderId": "ord_1"})
	cli.wait(`"eventId":"`+ev+`"`, 30*time.Second)
	if code := cli.interrupt(); code != 0 {
		t.Fatalf("Ctrl-C: exit %d; output:\n%s", code, cli.out.String())
	}

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(cli.out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a line is not JSON: %q (%v); output:\n%s", l, err, cli.out.String())
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want the listener, the connection and the delivery:\n%s", len(lines), cli.out.String())
	}
	head, conn, fwd := lines[0], lines[1], lines[2]
	secret, _ := head["secret"].(string)
	l, _ := head["listener"].(map[string]any)
	if !strings.HasPrefix(secret, "whsec_") || head["resumed"] != false || head["forwardTo"] != rc.URL || l == nil || l["type"] != "LISTENER" {
		t.Fatalf("first line %v, want the new listener with its secret", head)
	}
	if conn["status"] != "connected" || conn["waiting"] != float64(0) {
		t.Fatalf("second line %v", conn)
	}
	if fwd["eventId"] != ev || fwd["eventType"] != "order.created" || fwd["status"] != float64(202) || fwd["attempt"] != float64(1) || fwd["deliveryId"] == "" {
		t.Fatalf("delivery line %v", fwd)
	}
	if err := webhook.Verify(secret, rc.Requests()[0].Header, rc.Requests()[0].Body); err != nil {
		t.Fatalf("the forwarded request does not verify with the secret of the first line: %v", err)
	}
}
