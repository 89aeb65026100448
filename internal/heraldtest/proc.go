package heraldtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/pgtest"
)

// Process is a herald binary running in a process of its own, for tests
// that kill it, restart it or run several at once.
type Process struct {
	// URL is the base URL ("http://127.0.0.1:port").
	URL string
	// Token is the admin key the process printed when it created the
	// default app ("" if the database was not new).
	Token string

	cmd *exec.Cmd
	// out is the file the process writes its stdout and stderr to
	// itself, with no goroutine of this process copying them: whatever
	// it printed before it answered a request is there when the answer
	// comes (its first key, printed before it listens).
	out  *os.File
	args []string
	bin  string
	t    testing.TB
	done chan struct{}
}

// binDir is the directory buildOnce built the binary in, removed by Main.
var binDir struct {
	sync.Mutex
	path string
}

// repoRoot is the repository's directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// exampleCatalog is the example catalog file, which processes import at
// start (--catalog) as Start's servers do.
func exampleCatalog() string {
	return filepath.Join(repoRoot(), "examples", "catalog.json")
}

var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "herald-bin-")
	if err != nil {
		return "", err
	}
	binDir.Lock()
	binDir.path = dir
	binDir.Unlock()
	bin := filepath.Join(dir, "herald")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/herald")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// thisHerald reports whether bin is the herald Binary built from this
// checkout (rather than an earlier release's).
func thisHerald(bin string) bool {
	binDir.Lock()
	dir := binDir.path
	binDir.Unlock()
	return dir != "" && filepath.Dir(bin) == dir
}

// Main runs the package's tests, then removes the herald binary Binary
// built and stops the PostgreSQL clusters the tests started. Packages
// that call Binary call Main from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	binDir.Lock()
	if binDir.path != "" {
		os.RemoveAll(binDir.path)
	}
	binDir.Unlock()
	pgtest.StopAll()
	os.Exit(code)
}

// Binary builds cmd/herald once per test binary run and returns its path.
// Tests that run it skip in -short mode.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the herald binary")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// probeClient gives up on a readiness probe that gets no answer.
var probeClient = &http.Client{Timeout: 5 * time.Second}

var tokenRE = regexp.MustCompile(`hrld_[A-Za-z0-9_-]{43}`)

// StartProcess runs `herald serve` with the given arguments on a free
// loopback port (private destinations and http allowed, fast polling,
// warnings only) and waits until it answers its health probe. The process
// is killed when the test ends.
func StartProcess(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	for try := 0; ; try++ {
		p, inUse := startProcess(t, bin, args)
		if p != nil {
			return p
		}
		if !inUse || try == 4 {
			t.Fatalf("herald did not start")
		}
		// Another process took the port between our check and herald's
		// listen: pick another.
	}
}

func startProcess(t testing.TB, bin string, extra []string) (*Process, bool) {
	t.Helper()
	addr := FreeAddr(t)
	args := []string{"serve", "--addr", addr, "--allow-http", "--allow-private-destinations"}
	if thisHerald(bin) {
		// Releases from before shared catalogs seed each app's types
		// themselves and know no --catalog.
		args = append(args, "--catalog", exampleCatalog())
	}
	args = append(append(args, "--poll-interval", "20ms", "--log-level", "warn"), extra...)
	out, err := os.CreateTemp(t.TempDir(), "herald-output-")
	if err != nil {
		t.Fatalf("create herald's output file: %v", err)
	}
	t.Cleanup(func() { out.Close() })
	p := &Process{URL: "http://" + addr, out: out, args: args, bin: bin, t: t, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = processEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start herald: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	ok := Eventually(60*time.Second, func() bool {
		select {
		case <-p.done:
			return true
		default:
		}
		// A probe that gets no answer (another server took the port)
		// must not hang the test: it tries again until the deadline.
		resp, err := probeClient.Get(p.URL + "/healthz")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Another server may have taken the port: only herald says "ok".
		return resp.StatusCode == http.StatusOK && string(body) == "ok\n"
	})
	select {
	case <-p.done:
		if strings.Contains(p.Output(), "address already in use") {
			return nil, true
		}
		t.Fatalf("herald exited while starting; output:\n%s", p.Output())
	default:
	}
	if !ok {
		t.Fatalf("herald did not become ready; output:\n%s", p.Output())
	}
	p.Token = tokenRE.FindString(p.Output())
	return p, false
}

// EncryptionKeys are the encryption keys of the herald processes and the
// PostgreSQL servers tests start, unless the test gives its own: every
// replica of a test's deployment needs the same keys, and PostgreSQL has no
// key file beside it. They protect nothing but test data.
const EncryptionKeys = "test:dGVzdC1vbmx5LWtleS1kby1ub3QtdXNlLWl0LTMyYnk=" // "test-only-key-do-not-use-it-32by"

// processEnv is the environment of herald processes: this one's, with
// EncryptionKeys unless HERALD_ENCRYPTION_KEYS is set.
func processEnv() []string {
	env := os.Environ()
	if os.Getenv("HERALD_ENCRYPTION_KEYS") == "" {
		env = append(env, "HERALD_ENCRYPTION_KEYS="+EncryptionKeys)
	}
	return env
}

// Output returns what the process printed so far.
func (p *Process) Output() string {
	b, err := os.ReadFile(p.out.Name())
	if err != nil {
		return fmt.Sprintf("(herald's output could not be read: %v)", err)
	}
	return string(b)
}

// Kill kills the process with SIGKILL (if it still runs) and waits for it.
func (p *Process) Kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Stop asks the process to shut down gracefully (SIGTERM) and waits up to
// timeout for it to exit, killing it after that.
func (p *Process) Stop(timeout time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Errorf("herald did not exit within %s of SIGTERM; killing it", timeout)
		p.Kill()
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// GraphQL posts an operation and returns its data, failing the test on
// GraphQL errors.
func (p *Process) GraphQL(t testing.TB, token, query string, vars map[string]any) json.RawMessage {
	t.Helper()
	data, errs, err := p.Do(token, query, vars)
	if err != nil {
		t.Fatalf("graphql: %v", err)
	}
	if errs != nil {
		t.Fatalf("graphql errors: %s", errs)
	}
	return data
}

// Do posts an operation and returns its data and errors (nil if none), or
// an error if herald did not answer.
func (p *Process) Do(token, query string, vars map[string]any) (data, errs json.RawMessage, err error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, p.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	var env struct {
		Data   json.RawMessage
		Errors json.RawMessage
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, nil, fmt.Errorf("not a GraphQL response (HTTP %d): %s", resp.StatusCode, raw)
	}
	return env.Data, env.Errors, nil
}

// FreeAddr returns a loopback address with a port free at the moment.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
