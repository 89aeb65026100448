// Command herald-bench measures Herald end to end: it starts the herald
// binary (one process, or several replicas) on a fresh database (SQLite, or
// PostgreSQL with --db) and a webhook receiver in a separate process,
// drives load through the public GraphQL API only, and reports throughput,
// latency, CPU (herald's, PostgreSQL's, the receiver's and its own),
// memory and database size.
//
// Usage:
//
//	herald-bench [--quick] [--scenarios single,batched,...,rabbitmq,nats] [--against OLD_BINARY --rounds 3] [--stages] [flags]
//
// --quick runs every scenario small enough to finish in under a minute and
// checks only correctness (every event delivered, no errors); CI runs it.
// --against runs each scenario for both binaries, interleaved (the order
// alternating from round to round, so that neither always runs on a
// warmer or cooler machine), and prints each metric's median and range
// for both and the ratio of the medians. --stages profiles herald while a
// scenario runs and splits its CPU per delivery by stage.
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
	// against is the binary to compare with (empty: none).
	against string
	rounds  int
	stages  bool
	// profiles is where to write each run's CPU profile (empty: nowhere).
	profiles string
}

// allScenarios is every scenario in the order they run. "ceiling" needs
// no herald: the load generator posts webhook-sized requests straight to
// the receiver, the most this machine can deliver.
var allScenarios = []string{"ceiling", "ingest", "single", "batched", "throughput", "fanout", "wide", "filtered", "flow", "latency", "steady", "failure", "live", "backup", "rabbitmq", "nats"}

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
	fs.BoolVar(&c.long, "long", false, "also deliver 1,000,000 events at 4,000/s and compare latency and memory of the first and last tenths")
	fs.StringVar(&c.out, "out", "bench/results/latest.json", "where to write the JSON results (empty: nowhere)")
	extra := fs.String("herald-flags", "", "extra flags for herald serve, space-separated")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary databases")
	fs.StringVar(&c.db, "db", "sqlite", `the store: "sqlite", "postgres" (a throwaway PostgreSQL on this machine, default durability settings) or a postgres:// URL of a server to create databases on`)
	fs.IntVar(&c.replicas, "replicas", 1, "herald processes sharing the database (PostgreSQL only); load is spread over them")
	fs.StringVar(&c.against, "against", "", "a second herald binary (e.g. an older build) to run every scenario with, interleaved, for ratios")
	fs.IntVar(&c.rounds, "rounds", 0, "times to run each scenario (per binary); medians and ranges are reported (default 3 with --against, else 1)")
	fs.StringVar(&c.profiles, "profiles", "", "write herald's CPU profile of each run to this directory (SCENARIO-BINARY-rROUND.pprof; implies --stages)")
	fs.BoolVar(&c.stages, "stages", false, "profile herald during each scenario and split its CPU per delivery by stage (ingest, fan-out, claim, send, record)")
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
	c.stages = c.stages || c.profiles != ""
	if c.rounds == 0 {
		c.rounds = 1
		if c.against != "" {
			c.rounds = 3
		}
	}
	if c.rounds < 1 {
		return nil, fmt.Errorf("--rounds %d: at least one round", c.rounds)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c.self = self
	if c.herald, err = findBinary(c.herald); err != nil {
		return nil, fmt.Errorf("herald binary: %w (run make build)", err)
	}
	if c.against != "" {
		if c.against, err = findBinary(c.against); err != nil {
			return nil, fmt.Errorf("--against: %w", err)
		}
	}
	return c, nil
}

// findBinary returns the absolute path of an executable file.
func findBinary(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", path)
	}
	return filepath.Abs(path)
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
	Name string `json:"name"`
	// Binary is "new" (--herald) or "old" (--against); Round counts from 1.
	Binary  string             `json:"binary"`
	Round   int                `json:"round"`
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
	// New and Old are the binaries compared (Old empty without --against).
	New     string    `json:"new"`
	Old     string    `json:"old,omitempty"`
	Rounds  int       `json:"rounds"`
	Results []result  `json:"results"`
	Summary []summary `json:"summary,omitempty"`
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
	rep.New, rep.Old, rep.Rounds = c.herald, c.against, c.rounds
	fmt.Fprintf(stdout, "herald-bench: %d CPUs (%s), quick=%v, store %s, %d replica(s), %d round(s)\n", rep.Machine.CPUs, rep.Machine.CPU, c.quick, rep.Store, c.replicas, c.rounds)
	binaries := []binary{{"new", c.herald}}
	if c.against != "" {
		binaries = append(binaries, binary{"old", c.against})
		fmt.Fprintf(stdout, "herald-bench: new = %s\nherald-bench: old = %s\n", c.herald, c.against)
	}
	failed := 0
	names := slices.Clone(c.scenarios)
	if c.long {
		names = append(names, "long")
	}
	for round := 1; round <= c.rounds; round++ {
		latencyAlone := map[string]*result{}
		for _, name := range names {
			order := slices.Clone(binaries)
			if round%2 == 0 {
				slices.Reverse(order)
			}
			for _, b := range order {
				fmt.Fprintf(stdout, "--- %s", name)
				if c.rounds > 1 || len(binaries) > 1 {
					fmt.Fprintf(stdout, " (round %d, %s)", round, b.label)
				}
				fmt.Fprintln(stdout)
				start := time.Now()
				r := runScenario(c, b, round, rcv, pg, name, latencyAlone[b.label])
				if name == "latency" && r.Error == "" {
					latencyAlone[b.label] = &r
				}
				if r.Error != "" {
					failed++
					fmt.Fprintf(stdout, "    FAILED: %s\n", r.Error)
				}
				fmt.Fprintf(stdout, "    done in %s\n", time.Since(start).Round(100*time.Millisecond))
				rep.Results = append(rep.Results, r)
			}
		}
	}
	if c.rounds == 1 && len(binaries) == 1 {
		printTable(stdout, rep.Results)
	} else {
		rep.Summary = summarizeRuns(rep.Results, len(binaries) > 1)
		printSummary(stdout, rep.Summary, len(binaries) > 1)
	}
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

// binary is a herald binary under test.
type binary struct{ label, path string }

func runScenario(c *config, bin binary, round int, rcv *receiverProc, pg *pgcluster.Cluster, name string, latencyAlone *result) result {
	r := result{Name: name, Binary: bin.label, Round: round, Metrics: map[string]float64{}}
	if name == "ceiling" {
		if err := ceiling(c, rcv, &r); err != nil {
			r.Error = err.Error()
		}
		return r
	}
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
	fleet, err := startFleet(bin.path, dir, dsn, c.replicas, c.heraldFlags)
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
	setupCtx, cancelSetup := context.WithTimeout(context.Background(), time.Minute)
	err = s.api.ensureEventType(setupCtx, "order.created")
	cancelSetup()
	if err != nil {
		r.Error = err.Error()
		return r
	}
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
	commits0 := fleetCommits(fleet)
	var prof *profiler
	if c.stages {
		prof = startProfiler(fleet)
	}
	if err := s.run(ctx, name); err != nil {
		r.Error = err.Error()
	}
	commitMetrics(&r, commits0, fleetCommits(fleet))
	var stages map[string]float64
	if prof != nil {
		merged, err := prof.stop()
		switch {
		case err != nil:
			if r.Error == "" {
				r.Error = "profile: " + err.Error()
			}
		case c.profiles != "":
			path := filepath.Join(c.profiles, fmt.Sprintf("%s-%s-r%d.pprof", name, bin.label, round))
			if err := writeProfile(path, merged); err != nil && r.Error == "" {
				r.Error = "profile: " + err.Error()
			}
			fallthrough
		default:
			stages = stageShares(merged)
		}
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
		for stage, share := range stages {
			r.Metrics["stageUs."+stage] = share * r.Metrics["heraldCpuUsPerDelivery"]
		}
	}
	var peak memory
	for _, smp := range smps {
		if m := smp.stop(); m.rss > peak.rss {
			peak = m
		}
	}
	r.Metrics["peakRssMB"] = float64(peak.rss) / (1 << 20)
	r.Metrics["peakRssAnonMB"] = float64(peak.anon) / (1 << 20)
	r.Metrics["peakRssFileMB"] = float64(peak.file) / (1 << 20)
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
	cur := h.mem()
	r.Metrics["heapAfterMB"] = float64(heap) / (1 << 20)
	r.Metrics["idleRssMB"] = float64(cur.rss) / (1 << 20)
	r.Metrics["idleRssFileMB"] = float64(cur.file) / (1 << 20)
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
