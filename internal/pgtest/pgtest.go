// Package pgtest gives tests a real PostgreSQL: a fresh, empty database per
// test on a throwaway cluster that the test binary starts itself (initdb
// into a temporary directory, a free loopback port, its socket in that
// directory), or on the server HERALD_TEST_POSTGRES names.
//
// Without PostgreSQL the tests that need it are skipped, unless
// HERALD_REQUIRE_POSTGRES=1 (CI sets it), which makes them fail instead
// and say what is missing.
//
// A package whose tests use pgtest calls Main from its TestMain so that the
// shared cluster is stopped when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Every postgres started here is also killed by the kernel if the test
// binary dies (Pdeathsig), and a later run removes the directories of
// clusters whose test binary is gone.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables.
const (
	// EnvServer names an existing server to create test databases on, as
	// a URL (postgres://user:pass@host:port/db?sslmode=disable) whose user
	// may create databases. Tests that need a throwaway cluster of their
	// own (Start) still need PostgreSQL's binaries.
	EnvServer = "HERALD_TEST_POSTGRES"
	// EnvRequire, set to 1, turns skips for a missing PostgreSQL into
	// failures.
	EnvRequire = "HERALD_REQUIRE_POSTGRES"
)

// dirPrefix names the temporary directories of throwaway clusters, so that
// a later run can find those a dead test binary left behind.
const dirPrefix = "herald-pgtest-"

// Cluster is a PostgreSQL server that tests create databases on.
type Cluster struct {
	admin     string // URL of the maintenance database, as the superuser
	throwaway bool

	// Throwaway clusters only.
	bin  string // directory of initdb and postgres
	dir  string // data directory, socket directory and log
	port int
	cred *syscall.Credential // nil: run as ourselves

	mu      sync.Mutex
	proc    *exec.Cmd
	exited  chan struct{} // closed when proc has been waited for
	stopped bool
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error

	// clusters are the throwaway clusters this binary started, stopped by
	// Main.
	clustersMu sync.Mutex
	clusters   []*Cluster
)

// Main runs the package's tests and then stops every throwaway cluster
// they started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// StopAll stops every throwaway cluster this test binary started. Main
// calls it; a TestMain that needs to do more can call it itself.
func StopAll() {
	clustersMu.Lock()
	cs := clusters
	clusters = nil
	clustersMu.Unlock()
	for _, c := range cs {
		_ = c.stop(true)
	}
}

// New returns the URL of a fresh, empty database on the cluster shared by
// the test binary. The database is dropped when the test ends.
func New(t testing.TB) string {
	t.Helper()
	return Shared(t).New(t)
}

// Shared returns the cluster shared by the test binary: the server of
// HERALD_TEST_POSTGRES, or a throwaway cluster started on first use. It
// skips the test when PostgreSQL is unavailable (fails it with
// HERALD_REQUIRE_POSTGRES=1).
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		if s := os.Getenv(EnvServer); s != "" {
			shared, sharedErr = external(s)
			return
		}
		shared, sharedErr = startCluster()
	})
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared
}

// Start starts a throwaway cluster for this test alone, for tests that
// stop or restart the server, and stops it when the test ends. It needs
// PostgreSQL's binaries even when HERALD_TEST_POSTGRES is set.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { _ = c.stop(true) })
	return c
}

// unavailable skips t, or fails it when PostgreSQL is required.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("PostgreSQL is required (%s=1) but unavailable: %v", EnvRequire, err)
	}
	t.Skipf("PostgreSQL unavailable (set %s=1 to fail instead): %v", EnvRequire, err)
}

// external uses an existing server.
func external(s string) (*Cluster, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%s=%q is not a postgres:// URL", EnvServer, s)
	}
	c := &Cluster{admin: s}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", EnvServer, err)
	}
	conn.Close(ctx)
	return c, nil
}

// Throwaway reports whether the cluster was started by this test binary
// (and so may be restarted).
func (c *Cluster) Throwaway() bool { return c.throwaway }

// New creates a fresh, empty database with a unique name and returns its
// URL. The database is dropped when the test ends.
func (c *Cluster) New(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "herald_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c.isStopped() {
			return
		}
		if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.url(name)
}

// URL returns the URL of the named database on the cluster.
func (c *Cluster) URL(database string) string { return c.url(database) }

func (c *Cluster) url(database string) string {
	u, err := url.Parse(c.admin)
	if err != nil {
		panic(err) // parsed when the cluster was set up
	}
	u.Path = "/" + database
	return u.String()
}

func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func (c *Cluster) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// Stop stops a throwaway cluster (a fast shutdown: connections are
// closed). Its databases stay on disk until Start or the end of the test.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if !c.throwaway {
		t.Fatalf("pgtest: cannot stop %s: not a throwaway cluster", EnvServer)
	}
	if err := c.stop(false); err != nil {
		t.Fatalf("pgtest: stop: %v", err)
	}
}

// Restart stops a throwaway cluster and starts it again on the same port
// and data, as a server restart would: every connection is closed.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.Stop(t)
	c.Resume(t)
}

// Resume starts a cluster stopped by Stop again.
func (c *Cluster) Resume(t testing.TB) {
	t.Helper()
	if err := c.run(); err != nil {
		t.Fatalf("pgtest: start again: %v", err)
	}
}

// binDir finds PostgreSQL's server binaries: the newest
// /usr/lib/postgresql/*/bin, else initdb on PATH.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if len(dirs) > 0 {
		return filepath.Dir(dirs[0]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no initdb in /usr/lib/postgresql/*/bin or on PATH: install the postgresql package (apt-get install postgresql) or set " + EnvServer)
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// startCluster initialises and starts a throwaway cluster.
func startCluster() (*Cluster, error) {
	removeStale()
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	c := &Cluster{bin: bin, dir: dir, throwaway: true, stopped: true}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	// The owner file lets a later run tell that this binary is gone.
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	superuser := ""
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and there is no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("give %s to the postgres user: %w", dir, err)
		}
		superuser = "postgres"
	} else {
		u, err := user.Current()
		if err != nil {
			return nil, err
		}
		superuser = u.Username
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", superuser,
		"--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	c.port, err = freePort()
	if err != nil {
		return nil, err
	}
	c.admin = (&url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}).String()
	if err := c.run(); err != nil {
		return nil, err
	}
	clustersMu.Lock()
	clusters = append(clusters, c)
	clustersMu.Unlock()
	ok = true
	return c, nil
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// run starts postgres and waits until it accepts connections.
func (c *Cluster) run() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		return errors.New("already running")
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(c.bin, "postgres"),
		"-D", filepath.Join(c.dir, "data"),
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+c.dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=32MB",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGQUIT is postgres's immediate shutdown: the postmaster takes its
	// backends with it when the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	exited := make(chan struct{})
	started := make(chan error, 1)
	// Pdeathsig fires when the thread that started the child exits, not
	// the process: start it from a thread that lives as long as it does.
	go func() {
		runtime.LockOSThread()
		defer close(exited)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.proc, c.exited, c.stopped = cmd, exited, false

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.admin)
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-exited:
			c.stopped = true
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			return fmt.Errorf("postgres exited at start: %s", lastLines(string(log), 10))
		case <-ctx.Done():
			c.stopLocked(false)
			return fmt.Errorf("postgres did not accept connections within a minute: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop shuts postgres down (fast shutdown, then SIGKILL if it lingers)
// and, with remove, deletes its directory.
func (c *Cluster) stop(remove bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.stopLocked(remove)
	if remove {
		c.stopped = true
	}
	return err
}

func (c *Cluster) stopLocked(remove bool) error {
	if !c.throwaway {
		return nil
	}
	var err error
	if !c.stopped {
		_ = c.proc.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-c.exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-c.proc.Process.Pid, syscall.SIGKILL)
			<-c.exited
			err = errors.New("postgres ignored a fast shutdown for 30s and was killed")
		}
		c.stopped = true
	}
	if remove && c.dir != "" {
		os.RemoveAll(c.dir)
		c.dir = ""
	}
	return err
}

// removeStale deletes the directories of throwaway clusters whose test
// binary is gone, killing their postgres if it somehow survived.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(owner)))
		if err != nil || alive(pid) {
			continue
		}
		if pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(pidFile), "\n")
			if pm, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && runsIn(pm, dir) {
				_ = syscall.Kill(pm, syscall.SIGQUIT)
			}
		}
		os.RemoveAll(dir)
	}
}

// runsIn reports whether process pid is a postgres whose command line
// names dir, so that a reused process ID is never signalled.
func runsIn(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(cmdline), "postgres") && strings.Contains(string(cmdline), dir)
}

// alive reports whether a process with this ID exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
