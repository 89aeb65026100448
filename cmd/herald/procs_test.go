package main

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestProcsTuner_OneProcessorWhileLightAllUnderLoad feeds the tuner the CPU
// a process used, window after window, and checks when it changes
// GOMAXPROCS.
func TestProcsTuner_OneProcessorWhileLightAllUnderLoad(t *testing.T) {
	t.Parallel()
	w := procsWindow
	light := time.Duration(0.3 * float64(w)) // 0.3 cores
	busy := time.Duration(1.6 * float64(w))  // 1.6 cores
	middling := time.Duration(0.6 * float64(w))
	windows := func(n int, used time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = used
		}
		return out
	}
	lowAfter := int(procsLowAfter / w)
	tests := []struct {
		name  string
		usage []time.Duration
		want  []int // the GOMAXPROCS settings made, in order (0: the runtime's default)
	}{
		{"busy: all processors", windows(3*lowAfter, busy), nil},
		{"light for less than procsLowAfter: all", windows(lowAfter-1, light), nil},
		{"light for procsLowAfter: one", windows(lowAfter, light), []int{1}},
		{"busy for half of it: all", slices.Concat(windows(lowAfter/2, light), windows(lowAfter/2, busy), windows(lowAfter/2, light), windows(lowAfter/2, busy)), nil},
		{"light on average, a busy moment included: one", slices.Concat(windows(lowAfter-1, light), windows(1, busy)), []int{1}},
		{"load comes back: all at once", slices.Concat(windows(lowAfter, light), windows(1, busy)), []int{1, 0}},
		{"between the thresholds: it stays where it is", slices.Concat(windows(lowAfter, light), windows(lowAfter, middling)), []int{1}},
		{"and again", slices.Concat(windows(lowAfter, light), windows(1, busy), windows(lowAfter, light)), []int{1, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			tu := &procsTuner{set: func(n int) { got = append(got, n) }}
			for _, u := range tt.usage {
				tu.observe(procsWindowUse{elapsed: w, cpu: u})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("settings %v, want %v", got, tt.want)
			}
		})
	}
}

// TestProcsTuner_GoroutinesWaitingBringBackAll checks the other way back to
// all processors: goroutines waiting for the one, while the process gets
// less than procsHighAbove of a core (other processes use the machine).
func TestProcsTuner_GoroutinesWaitingBringBackAll(t *testing.T) {
	t.Parallel()
	w := procsWindow
	light := procsWindowUse{elapsed: w, cpu: w / 5, ran: 400, waited: 4}
	tests := []struct {
		name   string
		window procsWindowUse
		want   []int
	}{
		{"a fifth waited 1 ms or more: all", procsWindowUse{elapsed: w, cpu: w / 2, ran: 400, waited: 120}, []int{1, 0}},
		{"few waited: one", procsWindowUse{elapsed: w, cpu: w / 2, ran: 400, waited: 40}, []int{1}},
		{"too few ran to tell: one", procsWindowUse{elapsed: w, cpu: w / 2, ran: 20, waited: 20}, []int{1}},
	}
	// With all processors, little CPU while goroutines wait is not a
	// light load: other processes crowd Herald out.
	t.Run("crowded out: all", func(t *testing.T) {
		var got []int
		tu := &procsTuner{set: func(n int) { got = append(got, n) }}
		for range 3 * int(procsLowAfter/w) {
			tu.observe(procsWindowUse{elapsed: w, cpu: w / 5, ran: 400, waited: 200})
		}
		if len(got) > 0 {
			t.Errorf("settings %v, want none", got)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			tu := &procsTuner{set: func(n int) { got = append(got, n) }}
			for range int(procsLowAfter / w) {
				tu.observe(light)
			}
			tu.observe(tt.window)
			if !slices.Equal(got, tt.want) {
				t.Errorf("settings %v, want %v", got, tt.want)
			}
		})
	}
}

// TestParseProcs_TakesAutoOrAll checks --procs's values and its error.
func TestParseProcs_TakesAutoOrAll(t *testing.T) {
	t.Parallel()
	for spec, want := range map[string]bool{"auto": true, "": true, "ALL": false, "all": false} {
		if adapt, err := parseProcs(spec); err != nil || adapt != want {
			t.Errorf("--procs %q: adapt %v, %v; want %v", spec, adapt, err, want)
		}
	}
	if _, err := parseProcs("fast"); err == nil || !strings.Contains(err.Error(), `--procs must be auto or all, got "fast"`) {
		t.Errorf("--procs fast: %v", err)
	}
}

// TestServe_OneProcessorWhileIdleAllUnderLoad runs herald serve and reads
// the runtime's GOMAXPROCS from its own metric
// (go_sched_gomaxprocs_threads): one processor once idle, all of them
// under load, one again when the load is gone; and with --procs all, or
// GOMAXPROCS in the environment, never lowered.
func TestServe_OneProcessorWhileIdleAllUnderLoad(t *testing.T) {
	t.Parallel()
	if runtime.NumCPU() < 2 {
		t.Fatalf("this test needs 2 CPUs to see GOMAXPROCS change; the machine has %d", runtime.NumCPU())
	}
	bin := heraldtest.Binary(t)
	start := func(t *testing.T, env []string, args ...string) (procs func() int) {
		addr, _ := startServe(t, bin, env, args...)
		return func() int {
			n, _ := runtimeGauge(addr, "go_sched_gomaxprocs_threads")
			return int(n)
		}
	}

	t.Run("auto", func(t *testing.T) {
		t.Parallel()
		procs := start(t, nil)
		if !heraldtest.Eventually(60*time.Second, func() bool { return procs() == 1 }) {
			t.Fatalf("idle, GOMAXPROCS is %d, want 1", procs())
		}
		// Load: metrics scraped without a pause by four clients.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
						procs()
					}
				}
			})
		}
		busy := heraldtest.Eventually(60*time.Second, func() bool { return procs() > 1 })
		close(stop)
		wg.Wait()
		if !busy {
			t.Fatalf("under load, GOMAXPROCS stayed %d", procs())
		}
		if !heraldtest.Eventually(60*time.Second, func() bool { return procs() == 1 }) {
			t.Fatalf("idle again, GOMAXPROCS is %d, want 1", procs())
		}
	})
	for name, tc := range map[string]struct {
		env  []string
		args []string
	}{
		"--procs all":           {nil, []string{"--procs", "all"}},
		"GOMAXPROCS in the env": {[]string{"GOMAXPROCS=2"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			procs := start(t, tc.env, tc.args...)
			if !heraldtest.Eventually(60*time.Second, func() bool { return procs() > 0 }) {
				t.Fatal("no go_sched_gomaxprocs_threads on /metrics")
			}
			time.Sleep(procsLowAfter + time.Second)
			if n := procs(); n < 2 {
				t.Errorf("idle, GOMAXPROCS is %d: lowered", n)
			}
		})
	}
}
