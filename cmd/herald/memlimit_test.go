package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// The memory limit herald serve sets is the one the Go runtime uses, as
// its own metric (go_gc_gomemlimit_bytes) reports: --memory-limit wins,
// "auto" keeps a GOMEMLIMIT the environment gives, and a bad value refuses
// to start.
func TestServe_MemoryLimitReachesTheRuntime(t *testing.T) {
	bin := heraldtest.Binary(t)
	gauge := regexp.MustCompile(`(?m)^go_gc_gomemlimit_bytes (\S+)$`)
	for name, tc := range map[string]struct {
		args []string
		env  []string
		want float64
	}{
		"a size":             {[]string{"--memory-limit", "300MiB"}, nil, 300 << 20},
		"auto keeps the env": {nil, []string{"GOMEMLIMIT=200MiB"}, 200 << 20},
		"the flag wins":      {[]string{"--memory-limit", "96MiB"}, []string{"GOMEMLIMIT=200MiB"}, 96 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			addr := heraldtest.FreeAddr(t)
			var out heraldtest.SyncBuffer
			cmd := exec.Command(bin, append([]string{"serve", "--dev", "--db", filepath.Join(t.TempDir(), "h.db"), "--addr", addr}, tc.args...)...)
			cmd.Env = append(os.Environ(), tc.env...)
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			var got float64
			if !heraldtest.Eventually(60*time.Second, func() bool {
				resp, err := http.Get("http://" + addr + "/metrics")
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				m := gauge.FindSubmatch(b)
				if m == nil {
					return false
				}
				got, _ = strconv.ParseFloat(string(m[1]), 64)
				return true
			}) {
				t.Fatalf("no go_gc_gomemlimit_bytes on /metrics:\n%s", out.String())
			}
			if got != tc.want {
				t.Errorf("the runtime's memory limit is %.0f bytes, want %.0f", got, tc.want)
			}
		})
	}
	out, err := exec.Command(bin, "serve", "--db", filepath.Join(t.TempDir(), "h.db"), "--memory-limit", "lots").CombinedOutput()
	if err == nil || !regexp.MustCompile(`--memory-limit must be auto, off or a size such as 512MiB, got "lots"`).Match(out) {
		t.Errorf("a bad --memory-limit: %v\n%s", err, out)
	}
}
