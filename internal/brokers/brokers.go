// Package brokers runs throwaway message brokers for tests: Debian's
// rabbitmq-server and nats-server (with JetStream), each in a temporary
// directory on free loopback ports, stopped and restarted at will (a
// restart keeps the data directory: durable queues and streams survive
// it).
//
// Every process started here is killed by the kernel if the test binary
// dies (Pdeathsig, from a thread that lives as long as the process), and
// Close kills it and removes its directory. A test that needs a broker
// skips when the broker is not installed, unless HERALD_REQUIRE_RABBITMQ
// or HERALD_REQUIRE_NATS is set (as CI sets them): then it fails.
package brokers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// require skips t, or fails it when env is set, for want of a tool.
func require(t testing.TB, env, what string) {
	t.Helper()
	if os.Getenv(env) != "" {
		t.Fatalf("%s is not installed and %s is set: install it (apt-get install %s)", what, env, what)
	}
	t.Skipf("%s is not installed (set %s to fail instead of skipping)", what, env)
}

// FreePort returns a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a server process we start, stop and restart.
type proc struct {
	name string
	dir  string
	cmd  func() *exec.Cmd
	// ready reports whether the server accepts clients.
	ready func() error

	mu      sync.Mutex
	running *exec.Cmd
	exited  chan struct{}
}

// start starts the process and waits until it is ready.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running != nil {
		return errors.New("already running")
	}
	logf, err := os.OpenFile(filepath.Join(p.dir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := p.cmd()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	exited := make(chan struct{})
	started := make(chan error, 1)
	// Pdeathsig fires when the thread that started the child exits: start
	// it from a thread that lives as long as the child.
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
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.running, p.exited = cmd, exited
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := p.ready()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			p.running = nil
			log, _ := os.ReadFile(filepath.Join(p.dir, p.name+".log"))
			return fmt.Errorf("%s exited at start: %s", p.name, lastLines(string(log), 15))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.killLocked()
			return fmt.Errorf("%s was not ready within 2 minutes: %w", p.name, err)
		}
	}
}

// kill kills the process group at once (no graceful shutdown: a crash).
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killLocked()
}

func (p *proc) killLocked() {
	if p.running == nil {
		return
	}
	_ = syscall.Kill(-p.running.Process.Pid, syscall.SIGKILL)
	<-p.exited
	p.running = nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dialable reports whether addr accepts TCP connections.
func dialable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// RabbitMQ is a throwaway RabbitMQ node.
type RabbitMQ struct {
	// Addr is the AMQP listener, 127.0.0.1:port; URL is amqp://Addr/ (the
	// default virtual host; user guest, password guest).
	Addr string
	URL  string
	dir  string
	epmd *proc
	node *proc
}

// StartRabbitMQ starts a RabbitMQ node of its own (node name, base
// directory, AMQP, distribution and port-mapper ports) for the test, and
// stops it when the test ends.
func StartRabbitMQ(t testing.TB) *RabbitMQ {
	t.Helper()
	r, err := RunRabbitMQ()
	if errors.Is(err, ErrNotInstalled) {
		require(t, "HERALD_REQUIRE_RABBITMQ", "rabbitmq-server")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// ErrNotInstalled reports that a broker's server is not installed.
var ErrNotInstalled = errors.New("not installed")

// RunRabbitMQ starts a RabbitMQ node as StartRabbitMQ does, for a program
// (the benchmark) rather than a test; Close stops it. Its ports are free
// when chosen, but another process may take one before the node binds
// it (tests of several packages run at once): then it starts again on
// other ports.
func RunRabbitMQ() (*RabbitMQ, error) {
	for attempt := 1; ; attempt++ {
		r, err := runRabbitMQ()
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "eaddrinuse") {
			return r, err
		}
	}
}

func runRabbitMQ() (*RabbitMQ, error) {
	const server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	if _, err := os.Stat(server); err != nil {
		return nil, fmt.Errorf("rabbitmq-server: %w", ErrNotInstalled)
	}
	epmd, err := exec.LookPath("epmd")
	if err != nil {
		return nil, fmt.Errorf("rabbitmq-server (its epmd): %w", ErrNotInstalled)
	}
	dir, err := os.MkdirTemp("", "herald-rabbitmq-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	amqpPort, distPort, epmdPort := ports[0], ports[1], ports[2]
	node := "herald" + strconv.Itoa(amqpPort) + "@localhost"
	if err := os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte("[].\n"), 0o644); err != nil {
		return nil, err
	}
	conf := "listeners.tcp.1 = 127.0.0.1:" + strconv.Itoa(amqpPort) + "\n" +
		"loopback_users = none\n" + "log.console = true\nlog.file = false\n" +
		"disk_free_limit.absolute = 1\n"
	if err := os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"HOME="+dir,
		"RABBITMQ_NODENAME="+node,
		"RABBITMQ_BASE="+dir,
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbit.pid"),
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		// Run the VM in place of the script, without an Erlang shell.
		"RUNNING_UNDER_SYSTEMD=1",
	)
	r := &RabbitMQ{Addr: "127.0.0.1:" + strconv.Itoa(amqpPort), dir: dir}
	r.URL = "amqp://" + r.Addr + "/"
	r.epmd = &proc{name: "epmd", dir: dir,
		cmd: func() *exec.Cmd {
			c := exec.Command(epmd, "-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1")
			c.Env = env
			return c
		},
		ready: func() error { return dialable("127.0.0.1:" + strconv.Itoa(epmdPort)) },
	}
	r.node = &proc{name: "rabbitmq", dir: dir,
		cmd: func() *exec.Cmd {
			c := exec.Command(server)
			c.Env, c.Dir = env, dir
			return c
		},
		ready: func() error { return amqpReady(r.URL) },
	}
	if err := r.epmd.start(); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.node.start(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close stops the node and removes its directory.
func (r *RabbitMQ) Close() {
	r.node.kill()
	r.epmd.kill()
	os.RemoveAll(r.dir)
}

// freePorts returns n distinct free loopback TCP ports.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Kill kills the node at once, as a crash would.
func (r *RabbitMQ) Kill() { r.node.kill() }

// Start starts the node again after Kill, with its data.
func (r *RabbitMQ) Start() error { return r.node.start() }

// amqpReady reports whether an AMQP server answers the protocol header at
// url's address with its connection.start.
func amqpReady(rawURL string) error {
	addr := strings.TrimSuffix(strings.TrimPrefix(rawURL, "amqp://"), "/")
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		return err
	}
	b := make([]byte, 7)
	if _, err := c.Read(b); err != nil {
		return err
	}
	if b[0] != 1 { // a method frame: connection.start
		return fmt.Errorf("unexpected AMQP answer %x", b)
	}
	return nil
}

// NATS is a throwaway NATS server with JetStream.
type NATS struct {
	// Addr is the client listener, 127.0.0.1:port; URL is nats://Addr.
	Addr string
	URL  string
	// Monitor is the HTTP monitoring address (connz, varz).
	Monitor string
	dir     string
	proc    *proc
}

// NATSOptions are optional settings of StartNATS.
type NATSOptions struct {
	// User and Password, if set, are required of clients.
	User, Password string
}

// StartNATS starts a NATS server with JetStream (its store in a temporary
// directory) for the test, and stops it when the test ends.
func StartNATS(t testing.TB, opts NATSOptions) *NATS {
	t.Helper()
	n, err := RunNATS(opts)
	if errors.Is(err, ErrNotInstalled) {
		require(t, "HERALD_REQUIRE_NATS", "nats-server")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// RunNATS starts a NATS server as StartNATS does, for a program (the
// benchmark) rather than a test; Close stops it.
func RunNATS(opts NATSOptions) (*NATS, error) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr != nil {
			return nil, fmt.Errorf("nats-server: %w", ErrNotInstalled)
		}
		bin = "/usr/sbin/nats-server"
	}
	dir, err := os.MkdirTemp("", "herald-nats-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	port, mon := ports[0], ports[1]
	n := &NATS{Addr: "127.0.0.1:" + strconv.Itoa(port), Monitor: "127.0.0.1:" + strconv.Itoa(mon), dir: dir}
	n.URL = "nats://" + n.Addr
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mon), "-js", "-sd", filepath.Join(dir, "js")}
	if opts.User != "" {
		args = append(args, "--user", opts.User, "--pass", opts.Password)
	}
	n.proc = &proc{name: "nats", dir: dir,
		cmd:   func() *exec.Cmd { return exec.Command(bin, args...) },
		ready: func() error { return natsReady(n.Monitor) },
	}
	if err := n.proc.start(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close stops the server and removes its directory.
func (n *NATS) Close() {
	n.proc.kill()
	os.RemoveAll(n.dir)
}

// Kill kills the server at once, as a crash would.
func (n *NATS) Kill() { n.proc.kill() }

// Start starts the server again after Kill, with its JetStream store.
func (n *NATS) Start() error { return n.proc.start() }

// natsReady reports whether the server's JetStream is up.
func natsReady(monitor string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return httpOK(ctx, "http://"+monitor+"/healthz?js-enabled-only=true")
}
