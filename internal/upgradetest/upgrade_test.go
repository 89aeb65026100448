// Package upgradetest proves that databases made by earlier heralds open
// with this one: fixtures made by the binaries of 8f9a04e and 8a13244
// (internal/cmd/upgradefixtures writes testdata/) are migrated keeping every
// row, and on PostgreSQL a replica of the release before (oldRelease) and a replica of this herald
// deliver side by side during a rolling upgrade.
package upgradetest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver
	_ "github.com/mattn/go-sqlite3"    // registers the sqlite3 driver

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgcluster"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/internal/releasebin"
)

func TestMain(m *testing.M) { heraldtest.Main(m) }

// fixture is one entry of testdata/fixtures.json.
type fixture struct {
	Release string `json:"release"`
	Dialect string `json:"dialect"`
	File    string `json:"file"`
	Token   string `json:"token"`
	OK      string `json:"okEndpoint"`
	Failing string `json:"failingEndpoint"`
	Events  int    `json:"events"`
}

func fixtures(t *testing.T) []fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fs []fixture
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	return fs
}

// load puts a fixture in a fresh database and returns its DSN.
func load(t *testing.T, f fixture) string {
	t.Helper()
	src := filepath.Join("testdata", f.File)
	if f.Dialect == "sqlite" {
		dst := filepath.Join(t.TempDir(), "herald.db")
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	dsn := pgtest.New(t)
	psql, err := pgcluster.Tool("psql")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(psql, "--quiet", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--file", src, dsn).CombinedOutput(); err != nil {
		t.Fatalf("psql --file %s: %v\n%s", src, err, out)
	}
	return dsn
}

// tables are the tables whose every row an upgrade must keep.
var tables = []string{"apps", "api_keys", "endpoints", "event_types", "events", "deliveries", "attempts"}

// snapshot reads every row of tables: table → id → column → value.
func snapshot(t *testing.T, dsn string) map[string]map[string]map[string]string {
	t.Helper()
	driver := "sqlite3"
	if strings.HasPrefix(dsn, "postgres") {
		driver = "pgx"
	}
	conn, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	snap := make(map[string]map[string]map[string]string)
	for _, table := range tables {
		rows, err := conn.Query("SELECT * FROM " + table)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		snap[table] = make(map[string]map[string]string)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := make(map[string]string, len(cols))
			for i, c := range cols {
				row[c] = normalize(vals[i])
			}
			snap[table][row["id"]] = row
		}
		rows.Close()
	}
	return snap
}

// pointAt sets the URLs of endpoints in the database at dsn.
func pointAt(t *testing.T, dsn string, urls map[string]string) {
	t.Helper()
	driver, q := "sqlite3", "UPDATE endpoints SET url = ? WHERE id = ?"
	if strings.HasPrefix(dsn, "postgres") {
		driver, q = "pgx", "UPDATE endpoints SET url = $1 WHERE id = $2"
	}
	conn, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for id, url := range urls {
		if res, err := conn.Exec(q, url, id); err != nil {
			t.Fatalf("point endpoint %s at %s: %v", id, url, err)
		} else if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("point endpoint %s at %s: %d rows changed", id, url, n)
		}
	}
}

func normalize(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(x)
	}
}

// TestUpgrade_FixturesKeepEveryRow migrates each fixture with this
// herald's `herald migrate up`: every endpoint, event, delivery and
// attempt (and app, key and event type) is still there with the same
// values. Served by this herald, the apps' identical copies of the seeded
// event types are the default catalog's and the rest stay with their app,
// the old admin key works and the retrying
// deliveries are delivered once their endpoint is pointed at a receiver
// that accepts them.
func TestUpgrade_FixturesKeepEveryRow(t *testing.T) {
	bin := heraldtest.Binary(t)
	for _, f := range fixtures(t) {
		t.Run(f.Release+"/"+f.Dialect, func(t *testing.T) {
			t.Parallel()
			dsn := load(t, f)
			before := snapshot(t, dsn)
			if n := len(before["events"]); n != f.Events {
				t.Fatalf("the fixture holds %d events, its manifest says %d", n, f.Events)
			}
			if len(before["attempts"]) <= len(before["deliveries"]) {
				t.Fatalf("the fixture holds %d attempts for %d deliveries: no retries to keep", len(before["attempts"]), len(before["deliveries"]))
			}
			out, err := exec.Command(bin, "migrate", "up", "--db", dsn).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "adopted the database herald "+f.Release+" made") {
				t.Fatalf("herald migrate up: %v\n%s", err, out)
			}
			t.Logf("herald migrate up:\n%s", out)
			after := snapshot(t, dsn)
			for _, table := range tables {
				if len(after[table]) != len(before[table]) {
					t.Errorf("%s: %d rows before the upgrade, %d after", table, len(before[table]), len(after[table]))
				}
				for id, row := range before[table] {
					got, ok := after[table][id]
					if !ok {
						t.Errorf("%s %s is gone", table, id)
						continue
					}
					for col, v := range row {
						if got[col] != v {
							t.Errorf("%s %s: %s was %q, is %q", table, id, col, v, got[col])
						}
					}
				}
			}
			if t.Failed() {
				return
			}
			out, err = exec.Command(bin, "migrate", "status", "--db", dsn).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "pending:  none") {
				t.Fatalf("herald migrate status after the upgrade: %v\n%s", err, out)
			}

			// Both endpoints are pointed at the receiver before herald
			// starts: the failing endpoint's retries are due, and herald
			// sends them as it starts, sometimes before an updateEndpoint
			// could reach it; one sent to the fixture's dead address then
			// waits for its next backoff (36 s and more), past this test's
			// wait.
			rc := heraldtest.NewReceiver(t, nil)
			pointAt(t, dsn, map[string]string{f.OK: rc.URL + "/" + f.OK, f.Failing: rc.URL + "/" + f.Failing})
			p := heraldtest.StartProcess(t, bin, "--db", dsn, "--migrate=false")
			// The apps' identical copies of the seeded types became the
			// default catalog's; invoice.paid, which only the first app
			// had, stayed its own.
			var view struct {
				EventTypes struct {
					Edges []struct {
						Node struct {
							Name   string
							Shared bool
						}
					}
				}
				Catalogs struct {
					Edges []struct {
						Node struct {
							IsDefault bool
							Apps      struct{ TotalCount int }
						}
					}
				}
			}
			if err := json.Unmarshal(p.GraphQL(t, f.Token, `{ eventTypes(first: 100) { edges { node { name shared } } }
				catalogs { edges { node { isDefault apps { totalCount } } } } }`, nil), &view); err != nil {
				t.Fatal(err)
			}
			shared := map[string]bool{}
			for _, e := range view.EventTypes.Edges {
				shared[e.Node.Name] = e.Node.Shared
			}
			if own, ok := shared["invoice.paid"]; !ok || own {
				t.Errorf("invoice.paid after the upgrade: present %v, shared %v; want the first app's own", ok, own)
			}
			for _, name := range []string{"order.created", "email.bounced", "test.ping"} {
				if !shared[name] {
					t.Errorf("%s after the upgrade is not the shared catalog's: %v", name, shared)
				}
			}
			if c := view.Catalogs.Edges; len(c) != 1 || !c[0].Node.IsDefault || c[0].Node.Apps.TotalCount != 2 {
				t.Errorf("catalogs after the upgrade: %+v, want the default one with both apps", c)
			}
			data := p.GraphQL(t, f.Token, `mutation { publishEvent(input: {eventType: "invoice.paid", payload: {after: "upgrade"}}) { id } }`, nil)
			var pub struct{ PublishEvent struct{ ID string } }
			if err := json.Unmarshal(data, &pub); err != nil {
				t.Fatal(err)
			}
			// The failing endpoint's deliveries were retrying: each arrives
			// once; the new event arrives at both endpoints.
			want := map[string]bool{}
			for _, d := range before["deliveries"] {
				if d["endpoint_id"] == f.Failing {
					want["/"+f.Failing+" "+d["event_id"]] = true
				}
			}
			want["/"+f.OK+" "+pub.PublishEvent.ID] = true
			want["/"+f.Failing+" "+pub.PublishEvent.ID] = true
			if !heraldtest.Eventually(60*time.Second, func() bool {
				got := map[string]bool{}
				for _, r := range rc.Requests() {
					got[r.Path+" "+r.Header.Get("Webhook-Id")] = true
				}
				for k := range want {
					if !got[k] {
						return false
					}
				}
				return true
			}) {
				t.Fatalf("the upgraded database's deliveries did not all arrive: %d requests for %d wanted", len(rc.Requests()), len(want))
			}
		})
	}
}

// oldRelease is the herald of the rolling upgrade test: the last before
// shared catalogs. Rolling upgrades are promised from releases with
// versioned migrations: 8a13244, the last before them, diffs the schema
// at start and would make event_types.app_id NOT NULL again, which the
// shared catalogs' types (of no app) refuse; its databases upgrade by a
// restart (TestUpgrade_FixturesKeepEveryRow).
const oldRelease = "d9f6cf2"

// releaseBinary builds oldRelease from git history; without it in the
// checkout the test skips, unless HERALD_REQUIRE_HISTORY=1 (CI).
func releaseBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds an earlier herald from git history")
	}
	if !releasebin.HasCommit(oldRelease) {
		if os.Getenv("HERALD_REQUIRE_HISTORY") == "1" {
			t.Fatalf("commit %s is not in this checkout's history (HERALD_REQUIRE_HISTORY=1): clone the repository in full", oldRelease)
		}
		t.Skipf("commit %s is not in this checkout's history (set HERALD_REQUIRE_HISTORY=1 to fail instead)", oldRelease)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := releasebin.Build(ctx, oldRelease)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestUpgrade_RollingOnPostgres upgrades a replicated Herald as Kubernetes
// would: a replica of oldRelease serves a PostgreSQL database and publishing
// goes on throughout; a replica of this herald starts beside it (and
// migrates the database); the old replica restarts once on the migrated
// schema, then leaves. Every accepted event is delivered.
func TestUpgrade_RollingOnPostgres(t *testing.T) {
	t.Parallel()
	oldBin := releaseBinary(t)
	newBin := heraldtest.Binary(t)
	dsn := pgtest.New(t)
	const lease = "36s"
	old := heraldtest.StartProcess(t, oldBin, "--db", dsn, "--lease", lease)
	token := old.Token
	var (
		mu       sync.Mutex
		seen     = map[string]int{}
		accepted []string
		live     = []*heraldtest.Process{old}
	)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Webhook-Id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	old.GraphQL(t, token, `mutation($u: String!) { createEndpoint(input: {name: "all", url: $u, eventTypes: ["*"]}) { secret } }`,
		map[string]any{"u": rc.URL})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := 0; ; batch++ {
				select {
				case <-stop:
					return
				default:
				}
				in := make([]map[string]any, 20)
				for i := range in {
					in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"w": w, "b": batch, "i": i},
						"idempotencyKey": fmt.Sprintf("%d-%d-%d", w, batch, i)}
				}
				// A replica may be leaving: publish again on another,
				// with the same keys.
				var ids []string
				for try := 0; ids == nil; try++ {
					mu.Lock()
					p := live[(batch+try)%len(live)]
					mu.Unlock()
					data, errs, err := p.Do(token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in})
					if bytes.Contains(errs, []byte("BAD_USER_INPUT")) {
						// Clients do not send a refused event again:
						// neither release may refuse the other's types.
						t.Errorf("a replica refused the publish: %s", errs)
						return
					}
					if err != nil || errs != nil {
						if try == 20 {
							t.Errorf("publish: %v %s", err, errs)
							return
						}
						time.Sleep(100 * time.Millisecond)
						continue
					}
					var out struct{ PublishEvents []struct{ ID string } }
					if err := json.Unmarshal(data, &out); err != nil {
						t.Error(err)
						return
					}
					for _, e := range out.PublishEvents {
						ids = append(ids, e.ID)
					}
				}
				mu.Lock()
				accepted = append(accepted, ids...)
				mu.Unlock()
			}
		}()
	}
	published := func(n int) {
		t.Helper()
		mu.Lock()
		from := len(accepted)
		mu.Unlock()
		if !heraldtest.Eventually(120*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(accepted) >= from+n || t.Failed()
		}) {
			t.Fatalf("publishing stalled")
		}
	}
	published(500)
	// The new release starts beside the old one and migrates the database.
	next := heraldtest.StartProcess(t, newBin, "--db", dsn, "--lease", lease)
	mu.Lock()
	live = append(live, next)
	mu.Unlock()
	published(500)
	// The old release restarts once on the migrated schema.
	mu.Lock()
	live = []*heraldtest.Process{next}
	mu.Unlock()
	old.Stop(30 * time.Second)
	old = heraldtest.StartProcess(t, oldBin, "--db", dsn, "--lease", lease)
	mu.Lock()
	live = append(live, old)
	mu.Unlock()
	published(500)
	// The rollout ends: the old replica leaves.
	mu.Lock()
	live = []*heraldtest.Process{next}
	mu.Unlock()
	old.Stop(30 * time.Second)
	published(500)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	mu.Lock()
	ids := slices.Clone(accepted)
	mu.Unlock()
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, id := range ids {
			if seen[id] == 0 {
				n++
			}
		}
		return n
	}
	if !heraldtest.Eventually(120*time.Second, func() bool { return missing() == 0 }) {
		t.Fatalf("%d of %d accepted events were never delivered", missing(), len(ids))
	}
	mu.Lock()
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	mu.Unlock()
	t.Logf("%d events accepted across the rollout, all delivered, %d duplicates", len(ids), dups)
	st, err := exec.Command(newBin, "migrate", "status", "--db", dsn).CombinedOutput()
	if err != nil || !strings.Contains(string(st), "pending:  none") {
		t.Fatalf("herald migrate status after the rollout: %v\n%s", err, st)
	}
}
