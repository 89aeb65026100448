package main

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/docker/go-units"
)

// memoryLimitRatio is the share of a container's memory that "auto" gives
// the Go heap's soft limit: the rest is for SQLite's caches, stacks and
// what the runtime keeps back.
const memoryLimitRatio = 0.9

// setMemoryLimit sets the Go runtime's soft memory limit from
// --memory-limit: "auto" (GOMEMLIMIT if set, else 90% of the container's
// cgroup memory limit, else none), "off", or a size such as "512MiB". Near
// the limit the garbage collector works harder instead of letting the heap
// grow past it, so a container is not killed for a heap that could have
// been collected. It returns the limit set (math.MaxInt64: none).
func setMemoryLimit(spec string, log *slog.Logger) (int64, error) {
	switch s := strings.TrimSpace(spec); strings.ToLower(s) {
	case "auto", "":
		n, err := memlimit.Set(memlimit.WithRatio(memoryLimitRatio), memlimit.WithProvider(memlimit.FromCgroup),
			memlimit.WithLogger(log.With("component", "memlimit")))
		if err != nil {
			// No cgroup to read (not Linux, an unusual mount): run as
			// Go would, without a limit.
			log.Warn("memory limit: could not read the container's memory limit; none set (give --memory-limit)", "err", err)
			return debug.SetMemoryLimit(-1), nil
		}
		return n, nil
	case "off":
		debug.SetMemoryLimit(math.MaxInt64)
		return math.MaxInt64, nil
	default:
		n, err := units.RAMInBytes(s)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("--memory-limit must be auto, off or a size such as 512MiB, got %q", spec)
		}
		debug.SetMemoryLimit(n)
		return n, nil
	}
}
