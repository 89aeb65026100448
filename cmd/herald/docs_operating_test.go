package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgtest"
)

// startScript runs a bash script in its own process group (the script
// starts servers in the background), with this build of herald on PATH;
// the whole group is killed when the test ends.
func startScript(t *testing.T, bin, script string, env ...string) *heraldtest.SyncBuffer {
	t.Helper()
	binDir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(binDir, "herald")); err != nil {
		t.Fatal(err)
	}
	var out heraldtest.SyncBuffer
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script+"\nwait")
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH")), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return &out
}

// waitReady waits until the herald at addr answers /readyz.
func waitReady(t *testing.T, addr string, out *heraldtest.SyncBuffer) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	if !heraldtest.Eventually(60*time.Second, func() bool {
		resp, err := c.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("herald on %s never became ready:\n%s", addr, out.String())
	}
}

// graphql posts an operation to the herald at addr and returns the body.
func graphql(t *testing.T, addr, token string, header http.Header, query string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/graphql", bytes.NewReader(body))
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || bytes.Contains(b, []byte(`"errors"`)) {
		t.Fatalf("%s: HTTP %d %s", query, resp.StatusCode, b)
	}
	return string(b)
}

var adminKey = regexp.MustCompile(`hrld_[A-Za-z0-9_-]{43}`)

// printedKey waits for the admin key of the first start in herald's
// output: a herald may answer /readyz a moment before it prints it.
func printedKey(t *testing.T, out *heraldtest.SyncBuffer) string {
	t.Helper()
	if !heraldtest.Eventually(10*time.Second, func() bool { return adminKey.MatchString(out.String()) }) {
		t.Fatalf("herald printed no admin key:\n%s", out.String())
	}
	return adminKey.FindString(out.String())
}

// TestDocs_TracingCommandRunsAsWritten runs docs/operating.md's tracing
// command with its collector's address pointed at a test OTLP endpoint
// (and, through HERALD_* variables, a loopback address and a temporary
// database): a publish that carries a sampled trace is exported to it.
func TestDocs_TracingCommandRunsAsWritten(t *testing.T) {
	t.Parallel()
	bin := heraldtest.Binary(t)
	var line string
	for _, l := range shellLines(t, "operating.md") {
		if strings.HasPrefix(l, "OTEL_EXPORTER_OTLP_ENDPOINT=") {
			line = l
		}
	}
	const docCollector = "http://otel-collector:4318"
	if !strings.Contains(line, docCollector) || !strings.HasSuffix(line, "herald serve") {
		t.Fatalf("docs/operating.md's tracing command is %q: update the test", line)
	}
	var exports atomic.Int64
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			exports.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(col.Close)
	addr := heraldtest.FreeAddr(t)
	out := startScript(t, bin, strings.Replace(line, docCollector, col.URL, 1),
		"HERALD_ADDR="+addr, "HERALD_DB="+filepath.Join(t.TempDir(), "herald.db"), "OTEL_BSP_SCHEDULE_DELAY=20")
	waitReady(t, addr, out)
	token := printedKey(t, out)
	// The sampler keeps a tenth of new traces but follows a sampled parent.
	sampled := http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	graphql(t, addr, token, sampled, `{ viewer { app { id } } }`)
	if !heraldtest.Eventually(30*time.Second, func() bool { return exports.Load() > 0 }) {
		t.Fatalf("herald exported no spans to the collector:\n%s", out.String())
	}
}

// TestDocs_ReplicasCommandsRunAsWritten runs docs/operating.md's commands
// for several replicas on PostgreSQL, the URL pointed at a test database
// (created already, so createdb is not run) and the ports at free loopback
// ones: both replicas serve, and the admin key is printed once.
func TestDocs_ReplicasCommandsRunAsWritten(t *testing.T) {
	t.Parallel()
	bin := heraldtest.Binary(t)
	dsn := pgtest.New(t)
	const docURL = "postgres://herald:secret@db.internal:5432/herald?sslmode=verify-full"
	addrs := []string{heraldtest.FreeAddr(t), heraldtest.FreeAddr(t)}
	rewrite := strings.NewReplacer(docURL, dsn, "--addr :8080", "--addr "+addrs[0], "--addr :8081", "--addr "+addrs[1])
	var script []string
	for _, l := range shellLines(t, "operating.md") {
		switch {
		case strings.HasPrefix(l, "createdb "):
			t.Logf("not run here (the test database exists): %s", l)
		case strings.HasPrefix(l, "export HERALD_DB="), strings.HasPrefix(l, "export HERALD_ENCRYPTION_KEYS="), strings.HasPrefix(l, "herald serve --addr :808"):
			script = append(script, rewrite.Replace(l))
		}
	}
	if len(script) != 4 || !strings.Contains(script[0], dsn) {
		t.Fatalf("docs/operating.md's replica commands are %q: update the test", script)
	}
	out := startScript(t, bin, strings.Join(script, "\n"))
	for _, a := range addrs {
		waitReady(t, a, out)
	}
	printedKey(t, out)
	keys := map[string]bool{}
	for _, k := range adminKey.FindAllString(out.String(), -1) {
		keys[k] = true
	}
	if len(keys) != 1 || strings.Count(out.String(), "Herald created the app") != 1 {
		t.Fatalf("the replicas printed %d admin keys, want one, once:\n%s", len(keys), out.String())
	}
	var key string
	for k := range keys {
		key = k
	}
	// Each replica serves the same app with that key.
	a := graphql(t, addrs[0], key, nil, `{ viewer { app { id } } }`)
	b := graphql(t, addrs[1], key, nil, `{ viewer { app { id } } }`)
	if a != b {
		t.Errorf("the replicas answer %s and %s", a, b)
	}
}
