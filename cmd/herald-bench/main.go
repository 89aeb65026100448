// Command herald-bench measures Herald end to end: it starts the herald
// binary (one process, or several replicas) on a fresh database (SQLite, or
// PostgreSQL with --db) and a webhook receiver in a separate process,
// drives load through the public GraphQL API only, and reports throughput,
// latency, CPU (herald's, PostgreSQL's, the receiver's and its own),
// memory and database size.
//
// Usage:
//
//	herald-bench [--quick] [--scenarios ingest,throughput,fanout,filtered,flow,latency,failure,live,rabbitmq,nats] [flags]
//
// --quick runs every scenario small enough to finish in under a minute and
// checks only correctness (every event delivered, no errors); CI runs it.
// Results are printed as a table and written as JSON (--out).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heraldhq/herald/internal/pgcluster"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "receiver" {
		if err := runReceiver(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "receiver:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "herald-bench:", err)
		}
		os.Exit(1)
	}
}

// config holds the command-line settings.
type config struct {
	herald      string
	self        string
	scenarios   []string
	quick       bool
	scale       float64
	duration    time.Duration
	rate        int
	subscribers int
	long        bool
	out         string
	heraldFlags []string
	keep        bool
	// db is "sqlite", "postgres" (a throwaway local server) or a
	// postgres:// URL of a server whose user may create databases.
	db       string
	replicas int
}

var allScenarios = []string{"ingest", "throughput", "fanout", "filtered", "flow", "latency", "failure", "live", "rabbitmq", "nats"}

func parseConfig(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("herald-bench", flag.ContinueOnError)
	fs.StringVar(&c.herald, "herald", "bin/herald", "herald binary to benchmark (build it with make build)")
	list := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios: "+strings.Join(allScenarios, ", "))
	fs.BoolVar(&c.quick, "quick", false, "small runs that finish in under a minute and only check correctness")
	fs.Float64Var(&c.scale, "scale", 1, "multiplies every event count")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "length of the steady-rate latency and live scenarios")
	fs.IntVar(&c.rate, "rate", 1000, "events per second of the latency and live scenarios")
	fs.IntVar(&c.subscribers, "subscribers", 500, "deliveryUpdated subscribers of the live scenario")
	fs.BoolVar(&c.long, "long", false, "also deliver 1,000,000 events and report memory afterwards")
	fs.StringVar(&c.out, "out", "bench/results/latest.json", "where to write the JSON results (empty: nowhere)")
	extra := fs.String("herald-flags", "", "extra flags for herald serve, space-separated")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary databases")
	fs.StringVar(&c.db, "db", "sqlite", `the store: "sqlite", "postgres" (a throwaway PostgreSQL on this machine, default durability settings) or a postgres:// URL of a server to create databases on`)
	fs.IntVar(&c.replicas, "replicas", 1, "herald processes sharing the database (PostgreSQL only); load is spread over them")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, s := range strings.Split(*list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		found := false
		for _, a := range allScenarios {
			found = found || a == s
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q", s)
		}
		c.scenarios = append(c.scenarios, s)
	}
	if *extra != "" {
		c.heraldFlags = strings.Fields(*extra)
	}
	if c.db != "sqlite" && c.db != "postgres" && !strings.HasPrefix(c.db, "postgres://") && !strings.HasPrefix(c.db, "postgresql://") {
		return nil, fmt.Errorf(`--db must be "sqlite", "postgres" or a postgres:// URL, got %q`, c.db)
	}
	if c.replicas < 1 || (c.replicas > 1 && c.db == "sqlite") {
		return nil, fmt.Errorf("--replicas %d: several replicas need --db postgres", c.replicas)
	}
	if c.quick {
		c.duration = 5 * time.Second
		c.rate = 200
		c.subscribers = 50
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c.self = self
	if _, err := exec.LookPath(c.herald); err != nil {
		if _, serr := os.Stat(c.herald); serr != nil {
			return nil, fmt.Errorf("herald binary %s not found: run make build", c.herald)
		}
	}
	c.herald, _ = filepath.Abs(c.herald)
	return c, nil
}

// n scales an event count.
func (c *config) n(full, quick int) int {
	if c.quick {
		return quick
	}
	return max(1, int(float64(full)*c.scale))
}

// result is the outcome of one scenario.
type result struct {
	Name    string             `json:"name"`
	Metrics map[string]float64 `json:"metrics"`
	Notes   []string           `json:"notes,omitempty"`
	Error   string             `json:"error,omitempty"`
}

// report is the JSON written to --out.
type report struct {
	When     time.Time `json:"when"`
	Quick    bool      `json:"quick"`
	Store    string    `json:"store"`
	Replicas int       `json:"replicas"`
	Machine  machine   `json:"machine"`
	Results  []result  `json:"results"`
}

type machine struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	MemGiB int    `json:"memGiB"`
	GOOS   string `json:"goos"`
	Go     string `json:"go"`
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GOOS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		m.MemGiB = int(kb / 1024 / 1024)
	}
	return m
}

func run(args []string, stdout io.Writer) error {
	c, err := parseConfig(args)
	if err != nil {
		return err
	}
	rcv, err := startReceiver(c.self)
	if err != nil {
		return err
	}
	defer rcv.stop()
	var pg *pgcluster.Cluster
	switch {
	case c.db == "postgres":
		fmt.Fprintln(stdout, "herald-bench: starting a throwaway PostgreSQL (default durability: fsync and synchronous commits on)")
		if pg, err = pgcluster.Start(true); err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer pg.Close()
	case c.db != "sqlite":
		if pg, err = pgcluster.External(c.db); err != nil {
			return err
		}
	}
	rep := report{When: time.Now().UTC(), Quick: c.quick, Machine: describeMachine(), Store: c.db, Replicas: c.replicas}
	if pg != nil && !pg.Throwaway() {
		rep.Store = "postgres (external)"
	}
	fmt.Fprintf(stdout, "herald-bench: %d CPUs (%s), quick=%v, store %s, %d replica(s)\n", rep.Machine.CPUs, rep.Machine.CPU, c.quick, rep.Store, c.replicas)
	failed := 0
	var latencyAlone *result
	for _, name := range c.scenarios {
		fmt.Fprintf(stdout, "--- %s\n", name)
		start := time.Now()
		r := runScenario(c, rcv, pg, name, latencyAlone)
		if name == "latency" && r.Error == "" {
			latencyAlone = &r
		}
		if r.Error != "" {
			failed++
			fmt.Fprintf(stdout, "    FAILED: %s\n", r.Error)
		}
		fmt.Fprintf(stdout, "    done in %s\n", time.Since(start).Round(100*time.Millisecond))
		rep.Results = append(rep.Results, r)
	}
	if c.long {
		fmt.Fprintf(stdout, "--- long\n")
		r := runScenario(c, rcv, pg, "long", nil)
		if r.Error != "" {
			failed++
		}
		rep.Results = append(rep.Results, r)
	}
	printTable(stdout, rep.Results)
	if c.out != "" {
		if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(c.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "results written to %s\n", c.out)
	}
	if failed > 0 {
		return fmt.Errorf("%d scenario(s) failed", failed)
	}
	return nil
}

func runScenario(c *config, rcv *receiverProc, pg *pgcluster.Cluster, name string, latencyAlone *result) result {
	r := result{Name: name, Metrics: map[string]float64{}}
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	if err := rcv.reset(0); err != nil {
		r.Error = "reset receiver: " + err.Error()
		return r
	}
	dsn := filepath.Join(dir, "herald.db")
	if pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		dbName, url, err := pg.CreateDatabase(ctx, "herald_bench_")
		cancel()
		if err != nil {
			r.Error = err.Error()
			return r
		}
		dsn = url
		if !c.keep {
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_ = pg.DropDatabase(ctx, dbName)
			}()
		}
	}
	fleet, err := startFleet(c.herald, dir, dsn, c.replicas, c.heraldFlags)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer func() {
		for _, h := range fleet {
			h.stop()
		}
	}()
	h := fleet[0]
	urls := make([]string, len(fleet))
	for i, f := range fleet {
		urls[i] = f.url
	}
	s := &scenario{c: c, h: h, fleet: fleet, rcv: rcv, api: newClient(urls, h.token), r: &r, latencyAlone: latencyAlone}
	smps := make([]*sampler, len(fleet))
	for i, f := range fleet {
		smps[i] = sample(f.process)
	}
	cpu := func() (d time.Duration) {
		for _, f := range fleet {
			d += f.cpu()
		}
		return d
	}
	cpu0 := cpu()
	rcpu0 := rcv.cpu()
	bcpu0 := cpuOf(os.Getpid())
	var pgcpu0 time.Duration
	if pg != nil && pg.Throwaway() {
		pgcpu0 = pgCPU(pg.Pid())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := s.run(ctx, name); err != nil {
		r.Error = err.Error()
	}
	r.Metrics["heraldCpuSec"] = (cpu() - cpu0).Seconds()
	r.Metrics["receiverCpuSec"] = (rcv.cpu() - rcpu0).Seconds()
	// The load generator (clients and subscribers) shares the machine.
	r.Metrics["loadCpuSec"] = (cpuOf(os.Getpid()) - bcpu0).Seconds()
	if pg != nil && pg.Throwaway() {
		r.Metrics["postgresCpuSec"] = (pgCPU(pg.Pid()) - pgcpu0).Seconds()
	}
	if n := r.Metrics["deliveries"]; n > 0 {
		r.Metrics["heraldCpuUsPerDelivery"] = r.Metrics["heraldCpuSec"] * 1e6 / n
		if v, ok := r.Metrics["postgresCpuSec"]; ok {
			r.Metrics["postgresCpuUsPerDelivery"] = v * 1e6 / n
		}
	}
	var peak int64
	for _, smp := range smps {
		peak = max(peak, smp.stop())
	}
	r.Metrics["peakRssMB"] = float64(peak) / (1 << 20)
	if r.Error == "" {
		if err := measureIdle(c, h, &r); err != nil {
			r.Error = "measure idle memory: " + err.Error()
		}
	}
	return r
}

// measureIdle records what the server holds once the scenario is over:
// the live heap after a forced collection and the resident set a few
// seconds later, when the runtime has had time to return freed memory.
func measureIdle(c *config, h *heraldProc, r *result) error {
	heap, err := h.heapAfterGC()
	if err != nil {
		return err
	}
	wait := 5 * time.Second
	if c.quick {
		wait = time.Second
	}
	time.Sleep(wait)
	cur, _ := h.rss()
	r.Metrics["heapAfterMB"] = float64(heap) / (1 << 20)
	r.Metrics["idleRssMB"] = float64(cur) / (1 << 20)
	return nil
}

func printTable(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSCENARIO\tMETRIC\tVALUE")
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\terror\t%s\n", r.Name, r.Error)
		}
		for _, k := range sortedKeys(r.Metrics) {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, k, format(r.Metrics[k]))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(tw, "%s\tnote\t%s\n", r.Name, n)
		}
	}
	tw.Flush()
}

func format(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func sortedKeys(m map[string]float64) []string {
	return slices.Sorted(maps.Keys(m))
}
