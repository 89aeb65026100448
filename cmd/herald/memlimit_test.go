package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
			addr, out := startServe(t, bin, tc.env, tc.args...)
			var got float64
			if !heraldtest.Eventually(60*time.Second, func() bool {
				var ok bool
				got, ok = runtimeGauge(addr, "go_gc_gomemlimit_bytes")
				return ok
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

// startServe starts herald serve --dev on a database of its own, with
// the environment's variables and env (GOMAXPROCS and GOMEMLIMIT only as
// env gives them), and returns its address and output.
func startServe(t *testing.T, bin string, env []string, args ...string) (addr string, out *heraldtest.SyncBuffer) {
	t.Helper()
	addr = heraldtest.FreeAddr(t)
	out = &heraldtest.SyncBuffer{}
	cmd := exec.Command(bin, append([]string{"serve", "--dev", "--db", filepath.Join(t.TempDir(), "h.db"), "--addr", addr}, args...)...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOMAXPROCS=") || strings.HasPrefix(kv, "GOMEMLIMIT=")
	}), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return addr, out
}

// runtimeGauge reads a gauge without labels from the /metrics of the
// server at addr; ok is false if there is none (yet).
func runtimeGauge(addr, name string) (v float64, ok bool) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	v, err = strconv.ParseFloat(string(m[1]), 64)
	return v, err == nil
}
