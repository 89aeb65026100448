package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/internal/pgtest"
)

// TestQuick_DeliversEverything runs every scenario in --quick mode against
// a freshly built herald, as CI does: it checks correctness (every event
// delivered, every failure retried to success, every live update received)
// and never speed.
func TestQuick_DeliversEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("builds herald and runs the quick benchmark")
	}
	herald, bench, results := buildBench(t)
	cmd := exec.Command(bench, "--quick", "--herald", herald, "--out", results)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("herald-bench --quick: %v", err)
	}
	rep := readReport(t, results)
	if len(rep.Results) != len(allScenarios) {
		t.Fatalf("got %d results, want one per scenario (%d)", len(rep.Results), len(allScenarios))
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Errorf("%s: %s", r.Name, r.Error)
		}
		if r.Name == "ceiling" {
			if r.Metrics["requestsPerSec"] <= 0 {
				t.Errorf("ceiling: no requests measured: %v", r.Metrics)
			}
			continue
		}
		if r.Metrics["peakRssMB"] <= 0 || r.Metrics["idleRssMB"] <= 0 || r.Metrics["heapAfterMB"] <= 0 {
			t.Errorf("%s: memory not measured: %v", r.Name, r.Metrics)
		}
		if r.Name == "live" && r.Metrics["goroutinesPerSubscriber"] < 1 {
			t.Errorf("live: subscribers added %.2f goroutines each; the leak check measured nothing", r.Metrics["goroutinesPerSubscriber"])
		}
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestQuick_PostgreSQLReplicas runs the quick single and batched
// scenarios on PostgreSQL with two replicas: the fleet starts (with the
// encryption key every replica must share) and delivers everything.
func TestQuick_PostgreSQLReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds herald and runs the quick benchmark on PostgreSQL")
	}
	server := pgtest.New(t)
	herald, bench, results := buildBench(t)
	cmd := exec.Command(bench, "--quick", "--herald", herald, "--db", server, "--replicas", "2", "--scenarios", "single,batched", "--out", results)
	cmd.Env = append(os.Environ(), "HERALD_ENCRYPTION_KEYS=")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("herald-bench --quick --db postgres --replicas 2: %v", err)
	}
	rep := readReport(t, results)
	for _, r := range rep.Results {
		if r.Error != "" || r.Metrics["deliveriesPerSec"] <= 0 {
			t.Errorf("%s: %s %v", r.Name, r.Error, r.Metrics)
		}
	}
}

// buildBench builds herald and herald-bench into a temporary directory
// and returns their paths and where the results go.
func buildBench(t *testing.T) (herald, bench, results string) {
	t.Helper()
	dir := t.TempDir()
	herald, bench = filepath.Join(dir, "herald"), filepath.Join(dir, "herald-bench")
	for bin, pkg := range map[string]string{herald: "../herald", bench: "."} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return herald, bench, filepath.Join(dir, "quick.json")
}

// readReport reads the results herald-bench wrote.
func readReport(t *testing.T, path string) report {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestMaxPublishDeliveries_IsTheEngines keeps the driver's copy of the
// engine's limit on one call's deliveries in step with it: with a larger
// copy, the wide scenario's calls were refused and it stalled.
func TestMaxPublishDeliveries_IsTheEngines(t *testing.T) {
	if maxPublishDeliveries != dispatch.MaxPublishDeliveries {
		t.Fatalf("maxPublishDeliveries is %d, dispatch.MaxPublishDeliveries %d", maxPublishDeliveries, dispatch.MaxPublishDeliveries)
	}
}
