// Package pgcluster runs a throwaway PostgreSQL server: initdb into a
// temporary directory (as the postgres user when running as root, since
// initdb refuses root), a free loopback port, the socket in that
// directory. Tests use it through package pgtest; herald-bench uses it to
// measure Herald on PostgreSQL.
//
// Every postgres started here is killed by the kernel if the process that
// started it dies (Pdeathsig), and RemoveStale deletes the directories of
// clusters whose starter is gone.
package pgcluster

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
	"time"

	"github.com/jackc/pgx/v5"
)

// dirPrefix names the temporary directories of throwaway clusters, so that
// a later run can find those a dead process left behind.
const dirPrefix = "herald-pgtest-"

// Cluster is a PostgreSQL server to create databases on: a throwaway one
// (Start) or an existing one (External).
type Cluster struct {
	admin     string // URL of the maintenance database, as the superuser
	throwaway bool
	durable   bool

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

// External returns a Cluster for an existing server, named by a URL whose
// user may create databases.
func External(s string) (*Cluster, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%q is not a postgres:// URL", s)
	}
	c := &Cluster{admin: s}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	conn.Close(ctx)
	return c, nil
}

// Throwaway reports whether the cluster was started here (and so may be
// stopped and restarted).
func (c *Cluster) Throwaway() bool { return c.throwaway }

// Pid returns the process ID of a throwaway cluster's postmaster (0 if it
// is stopped or not throwaway).
func (c *Cluster) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.proc == nil {
		return 0
	}
	return c.proc.Process.Pid
}

// Stopped reports whether a throwaway cluster is stopped.
func (c *Cluster) Stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// CreateDatabase creates a fresh database with a unique name starting with
// prefix and returns its name and URL.
func (c *Cluster) CreateDatabase(ctx context.Context, prefix string) (name, dsn string, err error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name = prefix + hex.EncodeToString(b[:])
	if err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", "", fmt.Errorf("create database: %w", err)
	}
	return name, c.URL(name), nil
}

// DropDatabase drops a database, closing its connections.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	return c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

// URL returns the URL of the named database on the cluster.
func (c *Cluster) URL(database string) string {
	u, err := url.Parse(c.admin)
	if err != nil {
		panic(err) // parsed when the cluster was set up
	}
	u.Path = "/" + database
	return u.String()
}

// Exec runs a statement on the maintenance database, as the superuser.
func (c *Cluster) Exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
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
	return "", errors.New("no initdb in /usr/lib/postgresql/*/bin or on PATH: install the postgresql package (apt-get install postgresql) or name an existing server")
}

// Tool returns the path of one of PostgreSQL's programs (psql, pg_dump,
// pg_restore): beside the server binaries Start uses, else on PATH.
func Tool(name string) (string, error) {
	if bin, err := binDir(); err == nil {
		if p := filepath.Join(bin, name); fileExists(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("no %s beside PostgreSQL's server binaries or on PATH: install the postgresql package", name)
	}
	return p, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// Start initialises and starts a throwaway cluster in a temporary
// directory, on a free loopback port. With durable false it trades
// durability for speed (fsync, synchronous commits and full page writes
// off), as tests want; benchmarks want PostgreSQL's defaults.
func Start(durable bool) (*Cluster, error) {
	RemoveStale()
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	c := &Cluster{bin: bin, dir: dir, throwaway: true, stopped: true, durable: durable}
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
	args := []string{
		"-D", filepath.Join(c.dir, "data"),
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + c.dir,
		"-c", "max_connections=300",
	}
	if c.durable {
		args = append(args, "-c", "shared_buffers=256MB")
	} else {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=32MB")
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), args...)
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

// Stop stops the server (a fast shutdown: connections are closed). Its
// data stays for Resume.
func (c *Cluster) Stop() error { return c.stop(false) }

// Resume starts a stopped server again on the same port and data.
func (c *Cluster) Resume() error { return c.run() }

// Close stops the server and deletes its directory.
func (c *Cluster) Close() error { return c.stop(true) }

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

// RemoveStale deletes the directories of throwaway clusters whose test
// binary is gone, killing their postgres if it somehow survived.
func RemoveStale() {
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
