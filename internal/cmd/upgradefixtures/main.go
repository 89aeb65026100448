// Command upgradefixtures makes the databases of earlier heralds that the
// upgrade tests (internal/upgradetest) migrate with the current one. For
// each release it builds that commit's binary from git history
// (internal/releasebin), runs it on a fresh database, drives it through
// its GraphQL API (an event type, a second app and key, an endpoint that
// accepts everything and one that fails, published events: delivered,
// retrying, with their attempts), stops it, and writes the database: the
// SQLite file, or a plain pg_dump of the PostgreSQL database, with a
// manifest of the keys and IDs the tests need.
//
//	go run ./internal/cmd/upgradefixtures [-out internal/upgradetest/testdata]
//
// PostgreSQL fixtures need PostgreSQL's binaries (a throwaway cluster is
// started here). 8f9a04e knew only SQLite.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/heraldhq/herald/internal/pgcluster"
	"github.com/heraldhq/herald/internal/releasebin"
)

// Fixture describes one fixture; the tests read it from the manifest.
type Fixture struct {
	Release string `json:"release"`
	Dialect string `json:"dialect"` // "sqlite" or "postgres"
	// File is the database (SQLite) or its dump (PostgreSQL), beside the
	// manifest.
	File string `json:"file"`
	// Token is the admin key of the default app.
	Token string `json:"token"`
	// OK and Failing are the endpoints: the first got every event, the
	// second failed every attempt and holds retrying deliveries.
	OK      string `json:"okEndpoint"`
	Failing string `json:"failingEndpoint"`
	Events  int    `json:"events"`
}

// releases are the heralds whose databases the upgrade tests adopt.
var releases = []struct {
	commit   string
	dialects []string
}{
	{"8f9a04e", []string{"sqlite"}},
	{"8a13244", []string{"sqlite", "postgres"}},
}

func main() {
	out := flag.String("out", "internal/upgradetest/testdata", "where to write the fixtures")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "upgradefixtures:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	ctx := context.Background()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var pg *pgcluster.Cluster
	defer func() {
		if pg != nil {
			_ = pg.Close()
		}
	}()
	var all []Fixture
	for _, r := range releases {
		bin, err := releasebin.Build(ctx, r.commit)
		if err != nil {
			return err
		}
		for _, d := range r.dialects {
			f := Fixture{Release: r.commit, Dialect: d}
			var dsn string
			switch d {
			case "sqlite":
				f.File = r.commit + "-sqlite.db"
				dsn = filepath.Join(out, f.File)
				for _, suffix := range []string{"", "-wal", "-shm", ".lock"} {
					os.Remove(dsn + suffix)
				}
			case "postgres":
				f.File = r.commit + "-postgres.sql"
				if pg == nil {
					if pg, err = pgcluster.Start(false); err != nil {
						return err
					}
				}
				if _, dsn, err = pg.CreateDatabase(ctx, "herald_fixture_"); err != nil {
					return err
				}
			}
			if err := drive(ctx, bin, dsn, &f); err != nil {
				return fmt.Errorf("%s on %s: %w", r.commit, d, err)
			}
			switch d {
			case "sqlite":
				os.Remove(dsn + ".lock")
			case "postgres":
				if err := dump(dsn, filepath.Join(out, f.File)); err != nil {
					return err
				}
			}
			fmt.Printf("%s on %s: %d events -> %s\n", r.commit, d, f.Events, filepath.Join(out, f.File))
			all = append(all, f)
		}
	}
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "fixtures.json"), append(b, '\n'), 0o644)
}

var tokenRE = regexp.MustCompile(`hrld_[A-Za-z0-9_-]{43}`)

// drive runs the old herald on dsn and leaves data of every kind behind.
func drive(ctx context.Context, bin, dsn string, f *Fixture) error {
	var mu sync.Mutex
	seen := map[string]int{}
	rcv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path+" "+r.Header.Get("Webhook-Id")]++
		mu.Unlock()
		if r.URL.Path == "/failing" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go rcv.Serve(ln)
	defer rcv.Close()

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln2.Addr().String()
	ln2.Close()
	var stdout bytes.Buffer
	cmd := exec.Command(bin, "serve", "--db", dsn, "--addr", addr, "--allow-http", "--allow-private-destinations",
		"--poll-interval", "20ms", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: &stdout, mu: &mu}, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	api := &client{url: "http://" + addr + "/graphql"}
	if !waitFor(60*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		return errors.New("herald did not start")
	}
	// The key is printed before herald listens, but the goroutine that
	// copies herald's output into stdout may not have copied it yet.
	waitFor(5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		api.token = tokenRE.FindString(stdout.String())
		return api.token != ""
	})
	if api.token == "" {
		return errors.New("herald printed no admin key")
	}
	f.Token = api.token
	hook := "http://" + ln.Addr().String()
	steps := []struct {
		query string
		vars  map[string]any
		out   *string
		path  string
	}{
		{query: `mutation($ex: JSON) { createEventType(input: {name: "invoice.paid", description: "An order was placed", example: $ex}) { id } }`,
			vars: map[string]any{"ex": map[string]any{"orderId": "o_1"}}},
		{query: `mutation { createApp(input: {name: "second"}) { id } }`},
		{query: `mutation { createAPIKey(input: {name: "publisher"}) { token } }`},
		{query: `mutation($u: String!) { createEndpoint(input: {name: "ok", url: $u, eventTypes: ["invoice.paid"], headers: [{name: "X-Env", value: "fixture"}]}) { endpoint { id } } }`,
			vars: map[string]any{"u": hook + "/ok"}, out: &f.OK, path: "createEndpoint.endpoint.id"},
		{query: `mutation($u: String!) { createEndpoint(input: {name: "failing", url: $u, eventTypes: ["*"], retryPolicy: {maxAttempts: 8, initialDelay: "1s", maxDelay: "1h"}}) { endpoint { id } } }`,
			vars: map[string]any{"u": hook + "/failing"}, out: &f.Failing, path: "createEndpoint.endpoint.id"},
	}
	for _, s := range steps {
		data, err := api.do(ctx, s.query, s.vars)
		if err != nil {
			return err
		}
		if s.out != nil {
			if *s.out, err = pick(data, s.path); err != nil {
				return err
			}
		}
	}
	var batch []map[string]any
	for i := range 40 {
		in := map[string]any{"eventType": "invoice.paid", "payload": map[string]any{"orderId": fmt.Sprintf("o_%d", i), "total": 1000 + i, "items": []any{map[string]any{"sku": "TSHIRT-1"}}}}
		if i%4 == 0 {
			in["idempotencyKey"] = fmt.Sprintf("order-%d", i)
		}
		batch = append(batch, in)
	}
	if _, err := api.do(ctx, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": batch}); err != nil {
		return err
	}
	for i := range 10 {
		if _, err := api.do(ctx, `mutation($in: PublishEventInput!) { publishEvent(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"eventType": "invoice.paid", "payload": map[string]any{"single": i}}}); err != nil {
			return err
		}
	}
	f.Events = 50
	// Every event delivered to ok; two failed attempts of each to failing.
	if !waitFor(120*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		ok, failing := 0, 0
		for k, n := range seen {
			switch {
			case strings.HasPrefix(k, "/ok "):
				ok++
			case n >= 2:
				failing++
			}
		}
		return ok == f.Events && failing == f.Events
	}) {
		return errors.New("the deliveries did not reach the state wanted")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return cmd.Wait()
}

// dump writes a plain pg_dump of the database.
func dump(dsn, path string) error {
	pgDump, err := pgcluster.Tool("pg_dump")
	if err != nil {
		return err
	}
	out, err := exec.Command(pgDump, "--no-owner", "--no-privileges", "--format=plain", "--file="+path, dsn).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_dump: %v: %s", err, out)
	}
	return nil
}

type client struct {
	url, token string
}

func (c *client) do(ctx context.Context, query string, vars map[string]any) (json.RawMessage, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var env struct {
		Data   json.RawMessage
		Errors json.RawMessage
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Errors != nil {
		return nil, fmt.Errorf("%s: %s", query, raw)
	}
	return env.Data, nil
}

// pick reads a dotted path of object keys out of data.
func pick(data json.RawMessage, path string) (string, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return "", err
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("no %s in %s", path, data)
		}
		v = m[k]
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("no %s in %s", path, data)
	}
	return s, nil
}

func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
