// Package deploy holds what operators deploy beside Herald: Prometheus
// alerting rules (prometheus/alerts.yml, with unit tests in
// prometheus/alerts_test.yml) and a Grafana dashboard
// (grafana/herald.json). Its test checks them with promtool against a real
// scrape of a running herald.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestMain removes the herald binary the tests built.
func TestMain(m *testing.M) { heraldtest.Main(m) }

// promtool returns the promtool binary, or skips the test without one;
// HERALD_REQUIRE_PROMTOOL=1 (CI) makes that a failure.
func promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err == nil {
		return bin
	}
	msg := "promtool not found (Debian package prometheus)"
	if os.Getenv("HERALD_REQUIRE_PROMTOOL") == "1" {
		t.Fatal(msg + " (HERALD_REQUIRE_PROMTOOL=1)")
	}
	t.Skip(msg)
	return ""
}

func run(t *testing.T, stdin []byte, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", name, strings.Join(args, " "), out)
}

// scrapeRunningHerald starts the herald binary with --metrics-addr, makes
// it deliver a little (so that histograms have samples), and returns a
// scrape of its metrics.
func scrapeRunningHerald(t *testing.T) []byte {
	t.Helper()
	metricsAddr := heraldtest.FreeAddr(t)
	p := heraldtest.StartProcess(t, heraldtest.Binary(t), "--db", filepath.Join(t.TempDir(), "herald.db"), "--metrics-addr", metricsAddr)
	rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n%3 == 0 {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	p.GraphQL(t, p.Token, `mutation($url: String!) { createEndpoint(input: {name: "hook", url: $url, eventTypes: ["*"]}) { secret } }`,
		map[string]any{"url": rc.Hook("/")})
	for range 6 {
		p.GraphQL(t, p.Token, `mutation { publishEvent(input: {eventType: "order.created", payload: {n: 1}}) { id } }`, nil)
	}
	rc.WaitRequests(t, 6, 10*time.Second)

	// The metrics are on their own listener, not the main one.
	if resp, err := http.Get(p.URL + "/metrics"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode == http.StatusOK {
		t.Fatalf("the main listener serves /metrics too, with --metrics-addr")
	}
	var body []byte
	ok := heraldtest.Eventually(10*time.Second, func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`herald_attempts_total{destination="http",result="permanent"} 2`))
	})
	if !ok {
		t.Fatalf("no scrape with the attempts' metrics:\n%s", body)
	}
	return body
}

func TestDeploy_PromtoolAcceptsTheScrapeAndTheRules(t *testing.T) {
	bin := promtool(t)
	scrape := scrapeRunningHerald(t)
	run(t, scrape, bin, "check", "metrics")
	run(t, nil, bin, "check", "rules", "prometheus/alerts.yml")
	run(t, nil, bin, "test", "rules", "prometheus/alerts_test.yml")

	// Every Herald metric the rules and the dashboard use is in the scrape.
	have := map[string]bool{}
	for _, line := range strings.Split(string(scrape), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(name, " ")
			have[name] = true
			if typ == "histogram" {
				have[name+"_bucket"], have[name+"_sum"], have[name+"_count"] = true, true, true
			}
		}
	}
	used := metricNames(t, "prometheus/alerts.yml")
	used = append(used, dashboardMetrics(t, "grafana/herald.json")...)
	for _, m := range used {
		if !have[m] {
			t.Errorf("%s is used by the rules or the dashboard but herald does not export it", m)
		}
	}
	for _, m := range []string{"herald_deliveries_due", "herald_attempts_total", "herald_delivery_lag_seconds_bucket"} {
		if !slices.Contains(used, m) {
			t.Errorf("neither the rules nor the dashboard use %s", m)
		}
	}
}

var metricRE = regexp.MustCompile(`\b(?:herald|go_sql|go|process)_[a-z_]+\b`)

func metricNames(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:"); ok || strings.HasPrefix(line, "          ") {
			if !ok {
				e = line
			}
			out = append(out, metricRE.FindAllString(e, -1)...)
		}
	}
	return out
}

// dashboardMetrics returns the metrics the dashboard's queries use, and
// checks that the dashboard is well-formed for import.
func dashboardMetrics(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string
		UID    string
		Panels []struct {
			Title   string
			Type    string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", path)
	}
	var out []string
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := metricRE.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q queries no metric: %s", p.Title, tg.Expr)
			}
			out = append(out, names...)
		}
	}
	return out
}
