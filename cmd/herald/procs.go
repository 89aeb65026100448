package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"strings"
	"syscall"
	"time"
)

// Herald's processors under light load. Each step of a delivery hands it
// to another goroutine (publish, commit, scheduler, worker, transport,
// recorder), and with two processors each hand-off wakes the other
// processor's thread: at a steady 500 events/s, a sixth of Herald's CPU
// went to threads waking each other, which one processor does not spend.
// So when the process used less than procsLowBelow cores on average over
// procsLowAfter, GOMAXPROCS becomes 1. The runtime's default is back as
// soon as, within a procsWindow, the process uses more than
// procsHighAbove of that one core, or goroutines wait for it: more than
// procsWaitedAbove of the goroutines that ran waited procsWait or longer.
// The second catches a load on a machine whose other processes (a
// database, other services) leave Herald's one thread less than
// procsHighAbove of a core.
const (
	procsWindow      = 100 * time.Millisecond
	procsLowBelow    = 0.5
	procsLowAfter    = 2 * time.Second
	procsHighAbove   = 0.75
	procsWait        = time.Millisecond
	procsWaitedAbove = 0.2
	procsWaitsMin    = 50 // goroutines run in a window, for its waits to count
)

// procsWindowUse is what the process did in one window of time.
type procsWindowUse struct {
	elapsed time.Duration
	cpu     time.Duration // CPU time used
	ran     uint64        // goroutines that ran after waiting to (sampled)
	waited  uint64        // of those, the ones that waited procsWait or longer
}

// procsTuner decides GOMAXPROCS from what the process did in each window
// of time.
type procsTuner struct {
	// set sets GOMAXPROCS: 1, or 0 for the runtime's default.
	set func(n int)
	low bool           // GOMAXPROCS is 1
	sum procsWindowUse // since the last decision, with all processors
}

// observe takes what the process did in the last window.
func (t *procsTuner) observe(w procsWindowUse) {
	if w.elapsed <= 0 {
		return
	}
	if t.low {
		if float64(w.cpu)/float64(w.elapsed) > procsHighAbove || w.waiting() {
			t.set(0)
			t.low = false
		}
		return
	}
	t.sum.elapsed += w.elapsed
	t.sum.cpu += w.cpu
	t.sum.ran += w.ran
	t.sum.waited += w.waited
	if t.sum.elapsed < procsLowAfter {
		return
	}
	// Little CPU while goroutines wait is a process that other processes
	// crowd out, not a light load.
	if float64(t.sum.cpu)/float64(t.sum.elapsed) < procsLowBelow && !t.sum.waiting() {
		t.set(1)
		t.low = true
	}
	t.sum = procsWindowUse{}
}

// waiting reports whether goroutines waited to run in w: more than
// procsWaitedAbove of those that ran waited procsWait or longer.
func (w procsWindowUse) waiting() bool {
	return w.ran >= procsWaitsMin && float64(w.waited) > procsWaitedAbove*float64(w.ran)
}

// parseProcs reads --procs: "auto" adapts GOMAXPROCS to the load (see
// adaptProcs), "all" leaves it to the runtime.
func parseProcs(spec string) (adapt bool, err error) {
	switch strings.ToLower(strings.TrimSpace(spec)) {
	case "auto", "":
		return true, nil
	case "all":
		return false, nil
	}
	return false, fmt.Errorf("--procs must be auto or all, got %q", spec)
}

// adaptProcs runs the tuner until ctx ends, then gives the runtime its
// default GOMAXPROCS back. It does nothing when the GOMAXPROCS
// environment variable is set (the operator chose) or the runtime gives
// one processor only.
func adaptProcs(ctx context.Context, getenv func(string) string, log *slog.Logger) {
	if getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) < 2 {
		return
	}
	t := &procsTuner{set: func(n int) {
		if n == 0 {
			runtime.SetDefaultGOMAXPROCS()
		} else {
			runtime.GOMAXPROCS(n)
		}
		log.Debug("processors", "gomaxprocs", runtime.GOMAXPROCS(0))
	}}
	go func() {
		tick := time.NewTicker(procsWindow)
		defer tick.Stop()
		sample := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
		waits := func() (ran, waited uint64) {
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
				return 0, 0
			}
			h := sample[0].Value.Float64Histogram()
			for i, n := range h.Counts {
				ran += n
				if h.Buckets[i] >= procsWait.Seconds() {
					waited += n
				}
			}
			return ran, waited
		}
		last, _ := cpuTime()
		lastRan, lastWaited := waits()
		lastAt := time.Now()
		for {
			select {
			case <-ctx.Done():
				if t.low {
					runtime.SetDefaultGOMAXPROCS()
				}
				return
			case now := <-tick.C:
				used, ok := cpuTime()
				ran, waited := waits()
				if ok && used >= last {
					t.observe(procsWindowUse{elapsed: now.Sub(lastAt), cpu: used - last, ran: ran - lastRan, waited: waited - lastWaited})
				}
				last, lastRan, lastWaited, lastAt = used, ran, waited, now
			}
		}
	}()
}

// cpuTime returns the CPU time the process has used, user and system; ok
// is false if it could not be read.
func cpuTime() (d time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
