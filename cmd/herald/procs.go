package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
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
// procsLowAfter, GOMAXPROCS becomes 1; the moment it uses more than
// procsHighAbove of that one core over a procsWindow, the runtime's
// default is back.
const (
	procsWindow    = 100 * time.Millisecond
	procsLowBelow  = 0.5
	procsLowAfter  = 2 * time.Second
	procsHighAbove = 0.75
)

// procsTuner decides GOMAXPROCS from the CPU the process used in each
// window of time.
type procsTuner struct {
	// set sets GOMAXPROCS: 1, or 0 for the runtime's default.
	set  func(n int)
	low  bool          // GOMAXPROCS is 1
	used time.Duration // CPU used since span began (with all processors)
	span time.Duration
}

// observe takes the CPU time the process used in the last elapsed time.
func (t *procsTuner) observe(used, elapsed time.Duration) {
	if elapsed <= 0 {
		return
	}
	if t.low {
		if float64(used)/float64(elapsed) > procsHighAbove {
			t.set(0)
			t.low = false
		}
		return
	}
	t.used += used
	t.span += elapsed
	if t.span < procsLowAfter {
		return
	}
	if float64(t.used)/float64(t.span) < procsLowBelow {
		t.set(1)
		t.low = true
	}
	t.used, t.span = 0, 0
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
		last, _ := cpuTime()
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
				if ok && used >= last {
					t.observe(used-last, now.Sub(lastAt))
				}
				last, lastAt = used, now
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
