package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// cliEnv runs herald's commands in-process against a real server, with
// an environment of their own.
type cliEnv struct {
	t    *testing.T
	s    *heraldtest.Server
	vars map[string]string
}

func newCLI(t *testing.T, s *heraldtest.Server) *cliEnv {
	t.Helper()
	return &cliEnv{t: t, s: s, vars: map[string]string{
		"HERALD_URL":     s.URL,
		"HERALD_API_KEY": s.Token,
		"HERALD_CONFIG":  filepath.Join(t.TempDir(), "config.json"),
	}}
}

// result is what a command printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

func (e *cliEnv) runIn(stdin string, args ...string) result {
	e.t.Helper()
	var out, errOut heraldtest.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := execute(ctx, args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return e.vars[k] })
	return result{out.String(), errOut.String(), code}
}

func (e *cliEnv) run(args ...string) result { e.t.Helper(); return e.runIn("", args...) }

// ok runs a command that must succeed and returns its output.
func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("herald %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// okJSON runs a command with --json and decodes its output into v.
func (e *cliEnv) okJSON(v any, args ...string) {
	e.t.Helper()
	out := e.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("herald %s --json printed %q: %v", strings.Join(args, " "), out, err)
	}
}

// fails runs a command that must fail with the exit code and print want
// on stderr.
func (e *cliEnv) fails(code int, want string, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		e.t.Fatalf("herald %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), r.code, r.stderr, code, want)
	}
	return r
}

func contains(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestCLI_LoginSavesTheKeyInAFileOnlyTheUserReads(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	delete(e.vars, "HERALD_API_KEY")
	delete(e.vars, "HERALD_URL")
	e.fails(exitAuth, `run "herald login"`, "endpoints", "list")

	r := e.runIn("hrld_wrong\n", "login", "--url", s.URL)
	if r.code != exitAuth || !strings.Contains(r.stderr, "hint: check the API key") {
		t.Fatalf("login with a wrong key: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(e.vars["HERALD_CONFIG"]); err == nil {
		t.Fatal("a wrong key was saved")
	}
	r = e.runIn(s.Token+"\n", "login", "--url", s.URL)
	if r.code != 0 {
		t.Fatalf("login: exit %d %s", r.code, r.stderr)
	}
	contains(t, r.stdout, "Logged in to "+s.URL, `app "default"`, "admin")
	fi, err := os.Stat(e.vars["HERALD_CONFIG"])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file %v, mode %v; want 0600", err, fi.Mode())
	}
	if b, _ := os.ReadFile(e.vars["HERALD_CONFIG"]); !strings.Contains(string(b), s.Token) {
		t.Fatalf("config lacks the key: %s", b)
	}
	contains(t, e.ok("endpoints", "list"), "No endpoints yet")

	// The environment overrides the saved key.
	e.vars["HERALD_API_KEY"] = "hrld_override"
	e.fails(exitAuth, "check the API key", "endpoints", "list")
	delete(e.vars, "HERALD_API_KEY")

	var who map[string]any
	e.okJSON(&who, "login", "--api-key", s.Token)
	if who["admin"] != true || who["url"] != s.URL {
		t.Fatalf("login --json: %v", who)
	}
	contains(t, e.ok("logout"), "Logged out")
	e.fails(exitAuth, "not logged in", "events", "list")
}

func TestCLI_PublishesAndTriggersEvents(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "eventTypes": []string{"order.*"}})

	out := e.ok("publish", "order.created", "--data", `{"id":"ord_1"}`, "--idempotency-key", "k1", "--ordering-key", "ord_1")
	m := regexp.MustCompile(`Published (evt_\w+) \(order.created\) to 1 endpoint\.`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("publish printed %q", out)
	}
	var ev struct {
		ID, EventType, OrderingKey string
		DeliveryCount              int
		Payload                    map[string]any
	}
	e.okJSON(&ev, "publish", "order.created", "--data", `{"id":"ord_1"}`, "--idempotency-key", "k1")
	if ev.ID != m[1] || ev.Payload["id"] != "ord_1" {
		t.Fatalf("an idempotent publish --json gave %+v, want event %s", ev, m[1])
	}
	file := filepath.Join(t.TempDir(), "order.json")
	if err := os.WriteFile(file, []byte(`{"from":"file"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.okJSON(&ev, "publish", "order.updated", "--data", "@"+file)
	if ev.Payload["from"] != "file" {
		t.Fatalf("--data @file: %+v", ev)
	}
	r := e.runIn(`{"from":"stdin"}`, "publish", "order.updated", "--data", "@-", "--deliver-at", "1h", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"from": "stdin"`) || !strings.Contains(r.stdout, `"deliverAt"`) {
		t.Fatalf("--data @- --deliver-at: %+v", r)
	}
	e.fails(exitUsage, "--data is not valid JSON", "publish", "order.created", "--data", "{nope")
	e.fails(exitUsage, "--data is required", "publish", "order.created")
	e.fails(exitUsage, "takes TYPE", "publish")
	e.fails(exitUsage, "--deliver-at", "publish", "order.created", "--data", "{}", "--deliver-at", "soon")
	e.fails(exitUsage, "no.such", "publish", "no.such", "--data", "{}")
	e.fails(exitConflict, "idempotencyKey", "publish", "order.created", "--data", `{"id":"other"}`, "--idempotency-key", "k1")

	out = e.ok("trigger", "order.created")
	contains(t, out, "(order.created) to 1 endpoint")
	e.okJSON(&ev, "trigger", "order.created")
	if ev.Payload["orderId"] != "ord_1042" {
		t.Fatalf("trigger did not publish the catalog's example: %+v", ev)
	}
	e.fails(exitNotFound, "not in the app's catalog", "trigger", "no.such.type")
	rc.WaitRequests(t, 4, 30*time.Second) // the event for later is not sent yet
}

func TestCLI_ManagesEndpoints(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	var mu sync.Mutex
	status := http.StatusOK
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	})
	out := e.ok("endpoints", "create", "--url", rc.Hook("/a"), "--name", "alpha", "-t", "order.*", "--rate-limit", "10/1s", "--header", "X-Team: billing", "--max-attempts", "3")
	contains(t, out, "Name:", "alpha", "order.*", "10 per 1s", "X-Team: billing", "3 attempts", "Signing secret (shown only now")
	id := regexp.MustCompile(`ID:\s+(ep_\w+)`).FindStringSubmatch(out)[1]
	if !regexp.MustCompile(`whsec_\S+`).MatchString(out) {
		t.Fatalf("no secret printed:\n%s", out)
	}
	var created struct {
		Endpoint struct{ ID, URL string }
		Secret   string
	}
	e.okJSON(&created, "endpoints", "create", "--url", rc.Hook("/b"), "--inactive", "--filter", `{"data.total":{"$gte":10}}`)
	if !strings.HasPrefix(created.Secret, "whsec_") || created.Endpoint.URL != rc.Hook("/b") {
		t.Fatalf("create --json: %+v", created)
	}
	e.fails(exitConflict, "", "endpoints", "create", "--url", rc.Hook("/a"), "-t", "order.created")
	r := e.fails(exitUsage, "url", "endpoints", "create", "--url", "ftp://example.com")
	if strings.Contains(r.stderr, "hrld_") {
		t.Fatalf("an error printed the key: %s", r.stderr)
	}
	e.fails(exitUsage, "--url is required", "endpoints", "create")
	e.fails(exitUsage, "--rate-limit", "endpoints", "create", "--url", rc.URL, "--rate-limit", "fast")

	contains(t, e.ok("endpoints", "list"), "ID", "HEALTH", id, "alpha", created.Endpoint.ID)
	var page struct {
		Items []struct {
			ID       string
			IsActive bool
		}
		TotalCount int
	}
	e.okJSON(&page, "endpoints", "list", "--inactive")
	if page.TotalCount != 1 || page.Items[0].ID != created.Endpoint.ID {
		t.Fatalf("list --inactive --json: %+v", page)
	}
	r = e.run("endpoints", "list", "--limit", "1")
	if r.code != 0 || !strings.Contains(r.stderr, "next page: --after") {
		t.Fatalf("a full page does not say how to go on: %+v", r)
	}
	contains(t, e.ok("endpoints", "get", id), "alpha", rc.Hook("/a"))

	out = e.ok("endpoints", "update", id, "--name", "alpha2", "--no-rate-limit")
	contains(t, out, "alpha2", "Rate limit:")
	if strings.Contains(out, "10 per 1s") {
		t.Fatalf("--no-rate-limit kept the limit:\n%s", out)
	}
	e.fails(exitUsage, "nothing to change", "endpoints", "update", id)
	e.fails(exitNotFound, "", "endpoints", "update", "ep_missing", "--name", "x")

	contains(t, e.ok("endpoints", "disable", id), "is disabled")
	var ep struct{ IsActive bool }
	e.okJSON(&ep, "endpoints", "enable", id)
	if !ep.IsActive {
		t.Fatal("enable --json: still inactive")
	}
	contains(t, e.ok("endpoints", "test", id), "Delivered:", "yes", "200")
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	r = e.fails(exitFailure, "the test delivery", "endpoints", "test", id)
	contains(t, r.stdout, "503")

	out = e.ok("endpoints", "rotate-secret", id, "--overlap", "1h")
	contains(t, out, "New signing secret", "whsec_", "also signs until")
	var rot struct{ Secret string }
	e.okJSON(&rot, "endpoints", "rotate-secret", id, "--overlap", "0s")
	if !strings.HasPrefix(rot.Secret, "whsec_") {
		t.Fatalf("rotate-secret --json: %+v", rot)
	}
	contains(t, e.ok("endpoints", "delete", id), "Deleted endpoint "+id)
	e.fails(exitNotFound, "not found", "endpoints", "get", id)
	var del map[string]string
	e.okJSON(&del, "endpoints", "delete", created.Endpoint.ID)
	if del["deletedId"] != created.Endpoint.ID {
		t.Fatalf("delete --json: %v", del)
	}
}

func TestCLI_ShowsEventsAndRetriesAndReplaysDeliveries(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	var mu sync.Mutex
	status := http.StatusInternalServerError
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	})
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": map[string]any{"maxAttempts": 1}})
	evID := s.Publish(s.Token, "order.created", map[string]any{"total": 12})
	ev2 := s.Publish(s.Token, "contact.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	s.WaitDelivery(s.Token, ev2, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })

	contains(t, e.ok("events", "list"), "TYPE", evID, ev2, "order.created")
	var events struct {
		Items []struct{ ID string }
	}
	e.okJSON(&events, "events", "list", "--type", "order.*", "--since", "1h")
	if len(events.Items) != 1 || events.Items[0].ID != evID {
		t.Fatalf("events list --type order.*: %+v", events)
	}
	e.fails(exitUsage, "--since", "events", "list", "--since", "last week")
	contains(t, e.ok("events", "get", evID), "order.created", `"total": 12`, "Deliveries:", d.ID, "FAILED")
	var got struct {
		Event      struct{ ID string }
		Deliveries []struct{ ID, Status string }
	}
	e.okJSON(&got, "events", "get", evID)
	if got.Event.ID != evID || len(got.Deliveries) != 1 || got.Deliveries[0].Status != "FAILED" {
		t.Fatalf("events get --json: %+v", got)
	}
	e.fails(exitNotFound, "not found", "events", "get", "evt_missing")

	contains(t, e.ok("deliveries", "list", "--status", "failed", "--endpoint", epID), d.ID, "FAILED")
	var dl struct {
		Items      []struct{ ID string }
		TotalCount int
	}
	e.okJSON(&dl, "deliveries", "list", "--event", evID)
	if dl.TotalCount != 1 || dl.Items[0].ID != d.ID {
		t.Fatalf("deliveries list --event --json: %+v", dl)
	}
	e.fails(exitUsage, "--status", "deliveries", "list", "--status", "lost")
	contains(t, e.ok("deliveries", "get", d.ID), "Attempts:", "TRIGGER", "500")
	var detail struct {
		Delivery struct{ Status string }
		Attempts []struct{ ResponseStatus int }
	}
	e.okJSON(&detail, "deliveries", "get", d.ID)
	if detail.Delivery.Status != "FAILED" || len(detail.Attempts) != 1 || detail.Attempts[0].ResponseStatus != 500 {
		t.Fatalf("deliveries get --json: %+v", detail)
	}

	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	contains(t, e.ok("deliveries", "retry", d.ID), "Queued "+d.ID+" again")
	s.WaitDelivery(s.Token, evID, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	e.fails(exitNotFound, "dlv_missing", "deliveries", "retry", "dlv_missing")

	contains(t, e.ok("replay", "--endpoint", epID, "--since", "1h"), "Queued 1 failed delivery of "+epID)
	s.WaitDelivery(s.Token, ev2, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	var n map[string]int
	e.okJSON(&n, "replay", "--endpoint", epID, "--since", "1h", "--status", "SUCCEEDED")
	if n["count"] != 2 {
		t.Fatalf("replay --json: %v", n)
	}
	e.fails(exitUsage, "--endpoint and --since", "replay", "--since", "1h")
}

// tail runs herald tail until the test stops it, collecting its output.
func (e *cliEnv) tail(args ...string) (stdout, stderr *heraldtest.SyncBuffer, stop func() int) {
	var out, errOut heraldtest.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, append([]string{"tail"}, args...), strings.NewReader(""), &out, &errOut, func(k string) string { return e.vars[k] })
	}()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	e.t.Cleanup(func() { stop() })
	return &out, &errOut, stop
}

func TestCLI_TailFollowsDeliveriesLive(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	out, errOut, stop := e.tail("--type", "order.*")
	jsonOut, _, stopJSON := e.tail("--json", "--status", "SUCCEEDED")
	succeeded := regexp.MustCompile(`ATTEMPT_FINISHED\s+SUCCEEDED\s+#1\s+order.created\s+dlv_\w+\s+ep_\w+\s+HTTP 200 in \d+ms`)
	if !heraldtest.Eventually(30*time.Second, func() bool {
		if succeeded.MatchString(out.String()) && strings.Contains(jsonOut.String(), `"status":"SUCCEEDED"`) {
			return true
		}
		s.Publish(s.Token, "order.created", map[string]any{})
		s.Publish(s.Token, "contact.created", map[string]any{})
		return false
	}) {
		t.Fatalf("tail printed:\n%s\nstderr: %s\njson: %s", out.String(), errOut.String(), jsonOut.String())
	}
	if code := stop(); code != 0 {
		t.Fatalf("tail stopped with %d: %s", code, errOut.String())
	}
	stopJSON()
	if strings.Contains(out.String(), "contact.created") {
		t.Fatalf("tail --type order.* showed another type:\n%s", out.String())
	}
	contains(t, errOut.String(), "Following deliveries on", "connected")
	for _, line := range strings.Split(strings.TrimSpace(jsonOut.String()), "\n") {
		var ch struct{ Kind, Status, DeliveryId string }
		if err := json.Unmarshal([]byte(line), &ch); err != nil || ch.Status != "SUCCEEDED" || ch.DeliveryId == "" {
			t.Fatalf("tail --json line %q: %+v %v", line, ch, err)
		}
	}
}

func TestCLI_TailReconnectsAfterTheServerRestarts(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	proxy := heraldtest.NewProxy(t, s.URL)
	e := newCLI(t, s)
	e.vars["HERALD_URL"] = proxy.URL
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	out, errOut, stop := e.tail()
	publishUntil := func(s *heraldtest.Server, typ string) {
		t.Helper()
		if !heraldtest.Eventually(60*time.Second, func() bool {
			if strings.Contains(out.String(), typ) {
				return true
			}
			s.Publish(s.Token, typ, map[string]any{})
			return false
		}) {
			t.Fatalf("tail never showed %s:\n%s\n%s", typ, out.String(), errOut.String())
		}
	}
	publishUntil(s, "order.created")
	s2 := s.Restart()
	proxy.SetTarget(s2.URL)
	publishUntil(s2, "contact.created")
	stop()
	contains(t, errOut.String(), "disconnected:", "reconnecting in")
	if strings.Count(errOut.String(), "connected\n") < 2 {
		t.Fatalf("tail did not say it reconnected:\n%s", errOut.String())
	}
}

func TestCLI_PortalLink(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	r := e.run("portal-link", "--expires-in", "2h", "--read-only", "--name", "Acme")
	if r.code != 0 || !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/portal/app_\w+#token=\S+\n$`).MatchString(r.stdout) {
		t.Fatalf("portal-link: %+v", r)
	}
	contains(t, r.stderr, "read-only", "expires")
	var ps struct {
		URL, Token string
		ReadOnly   bool
	}
	e.okJSON(&ps, "portal-link", "--app", s.AppID)
	if !strings.Contains(ps.URL, ps.Token) || ps.ReadOnly {
		t.Fatalf("portal-link --json: %+v", ps)
	}
	e.fails(exitNotFound, "", "portal-link", "--app", "app_missing")
	e.fails(exitUsage, "", "portal-link", "--expires-in", "1y")
}

func TestCLI_ErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	_, appKey := s.NewApp("scoped")
	tests := []struct {
		name string
		vars map[string]string
		args []string
		code int
		want []string
	}{
		{"wrong key", map[string]string{"HERALD_API_KEY": "hrld_wrong"}, []string{"endpoints", "list"}, exitAuth, []string{"herald:", "hint: check the API key"}},
		{"unreachable", map[string]string{"HERALD_URL": "http://127.0.0.1:1"}, []string{"events", "list"}, exitUnreachable, []string{"cannot reach herald at http://127.0.0.1:1", "hint: is Herald running there?"}},
		{"bad url", map[string]string{"HERALD_URL": "localhost:8080"}, []string{"events", "list"}, exitUsage, []string{"http(s)://host"}},
		{"another app without admin", map[string]string{"HERALD_API_KEY": appKey}, []string{"endpoints", "list", "--app", s.AppID}, exitAuth, []string{"admin"}},
		{"unknown command", nil, []string{"publishh"}, exitUsage, []string{`unknown command "publishh"`}},
		{"unknown flag", nil, []string{"events", "list", "--colour"}, exitUsage, []string{"unknown flag: --colour", "herald events list --help"}},
		{"server flags without serve", nil, []string{"--db", "x.db"}, exitUsage, []string{`herald serve --db x.db`}},
		{"too many arguments", nil, []string{"endpoints", "get", "a", "b"}, exitUsage, []string{"takes ID"}},
		{"a flag serve does not know", nil, []string{"serve", "--colour"}, exitUsage, []string{"flag provided but not defined: -colour"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &cliEnv{t: t, s: s, vars: map[string]string{}}
			for k, v := range newCLI(t, s).vars {
				e.vars[k] = v
			}
			for k, v := range tt.vars {
				e.vars[k] = v
			}
			r := e.fails(tt.code, "", tt.args...)
			contains(t, r.stderr, tt.want...)
			if r.stdout != "" && tt.name != "unknown command" {
				t.Errorf("stdout of a failure: %q", r.stdout)
			}
		})
	}
	// With --json, the error is JSON too.
	e.vars["HERALD_API_KEY"] = "hrld_wrong"
	r := e.fails(exitAuth, "", "endpoints", "list", "--json")
	var je struct {
		Error struct {
			Code, Message, Hint string
			ExitCode            int
		}
	}
	if err := json.Unmarshal([]byte(r.stderr), &je); err != nil || je.Error.Code != "UNAUTHENTICATED" || je.Error.ExitCode != exitAuth || je.Error.Hint == "" {
		t.Fatalf("--json error %q: %+v %v", r.stderr, je, err)
	}
}

func TestCLI_HelpVersionAndCompletion(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	e := newCLI(t, s)
	for _, args := range [][]string{nil, {"help"}, {"--help"}} {
		contains(t, e.ok(args...), "Running Herald:", "serve", "Using a Herald server:", "publish", "tail", "completion")
	}
	r := e.run("serve", "--help")
	if r.code != 0 || !strings.Contains(r.stderr, "-db string") || !strings.Contains(r.stderr, "HERALD_DB") {
		t.Fatalf("serve --help: %+v", r)
	}
	r = e.run("help", "serve")
	if r.code != 0 || !strings.Contains(r.stderr, "-allow-http") {
		t.Fatalf("help serve: %+v", r)
	}
	contains(t, e.ok("help", "endpoints", "create"), "--rate-limit", "--event-type", "Examples:")
	contains(t, e.ok("version"), "herald ")
	contains(t, e.ok("--version"), "herald ")
	contains(t, e.ok("completion", "bash"), "__start_herald")
	contains(t, e.ok("completion", "zsh"), "#compdef herald")
	contains(t, e.ok("completion", "fish"), "complete -c herald")

	// Dynamic completion asks the server.
	id, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "complete me", "url": "http://127.0.0.1:9/x"})
	contains(t, e.ok("__complete", "endpoints", "get", ""), id+"\tcomplete me")
	contains(t, e.ok("__complete", "publish", "order.cr"), "order.created\t")
	contains(t, e.ok("__complete", "deliveries", "list", "--status", ""), "FAILED")
}

// TestBinary_ExitCodesAndHelp runs the built binary: what a shell sees.
func TestBinary_ExitCodesAndHelp(t *testing.T) {
	t.Parallel()
	bin := heraldtest.Binary(t)
	run := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append([]string{"HOME=" + t.TempDir(), "HERALD_CONFIG=" + filepath.Join(t.TempDir(), "none.json")}, env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := run(nil); code != 0 || !strings.Contains(out, "herald serve") && !strings.Contains(out, "serve ") {
		t.Fatalf("herald without a command: exit %d\n%s", code, out)
	}
	if out, code := run(nil, "events", "list"); code != exitAuth || !strings.Contains(out, "herald login") {
		t.Fatalf("not logged in: exit %d\n%s", code, out)
	}
	if out, code := run([]string{"HERALD_URL=http://127.0.0.1:1", "HERALD_API_KEY=hrld_x"}, "events", "list"); code != exitUnreachable {
		t.Fatalf("unreachable: exit %d\n%s", code, out)
	}
	if out, code := run(nil, "publish"); code != exitUsage {
		t.Fatalf("usage: exit %d\n%s", code, out)
	}
}

func TestCLI_KeysRotateAndAudit(t *testing.T) {
	t.Parallel()
	k1 := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := "k2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	s := heraldtest.Start(t, func(c *server.Config) { c.EncryptionKeys = k1 })
	rc := heraldtest.NewReceiver(t, nil)
	for i := range 3 {
		s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL + "/" + strconv.Itoa(i)})
	}
	s = s.Restart(func(c *server.Config) { c.EncryptionKeys = k2 + "," + k1 })
	e := newCLI(t, s)
	contains(t, e.ok("keys", "status"), "k2", "k1")
	out := e.ok("keys", "rotate", "--batch", "2")
	contains(t, out, "Every endpoint's secrets are encrypted with key k2", "3 re-encrypted now")
	var st struct {
		Primary string
		Keys    []struct {
			ID        string
			Endpoints int
		}
	}
	e.okJSON(&st, "keys", "status")
	for _, k := range st.Keys {
		if k.ID == "k1" && k.Endpoints != 0 || k.ID == "k2" && k.Endpoints != 3 {
			t.Errorf("after rotation: %+v", st)
		}
	}
	contains(t, e.ok("audit", "--action", "rotateEncryptionKeys"), "rotateEncryptionKeys", "EncryptionKey")
	contains(t, e.ok("audit", "--action", "createEndpoint", "--since", "1h"), "createEndpoint")
	e.fails(exitUsage, "not a mutation", "audit", "--action", "nope")
}
