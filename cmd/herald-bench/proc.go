package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// process is a child process whose output is kept for error reports.
type process struct {
	cmd *exec.Cmd
	out *lockedBuffer
	log io.Closer // closed once the process has exited (nil: none)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (p *process) stop() {
	if p.cmd.Process == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	if p.log != nil {
		p.log.Close()
	}
}

// memory is a process's resident set: its anonymous memory (heap,
// stacks, SQLite's page caches) and the pages of files it maps (its
// binary) that are in memory.
type memory struct {
	rss, anon, file int64
}

// mem returns the process's resident set, read from /proc.
func (p *process) mem() memory {
	var m memory
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		parse := func() int64 {
			fields := strings.Fields(line)
			if len(fields) < 2 {
				return 0
			}
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			return n * 1024
		}
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			m.rss = parse()
		case strings.HasPrefix(line, "RssAnon:"):
			m.anon = parse()
		case strings.HasPrefix(line, "RssFile:"):
			m.file = parse()
		}
	}
	return m
}

// cpu returns the process's user+system CPU time so far.
func (p *process) cpu() time.Duration { return cpuOf(p.cmd.Process.Pid) }

// cpuOf returns the user+system CPU time so far of process pid.
func cpuOf(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// receiverProc is the receiver process.
type receiverProc struct {
	*process
	addr string
}

func startReceiver(self string) (*receiverProc, error) {
	cmd := exec.Command(self, "receiver")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	errOut := &lockedBuffer{}
	cmd.Stderr = errOut
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start receiver: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("receiver did not report its address: %v: %s", err, errOut.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return &receiverProc{process: &process{cmd: cmd, out: errOut}, addr: strings.TrimSpace(line)}, nil
}

func (r *receiverProc) url(path string) string { return "http://" + r.addr + path }

func (r *receiverProc) reset(failRate float64) error {
	resp, err := http.Post(r.url(fmt.Sprintf("/reset?failRate=%g", failRate)), "text/plain", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (r *receiverProc) stats() (receiverStats, error) {
	var st receiverStats
	resp, err := http.Get(r.url("/stats"))
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// heraldProc is a herald server process.
type heraldProc struct {
	*process
	url      string
	debugURL string
	token    string
	db       string // SQLite path or PostgreSQL URL
}

var tokenRE = regexp.MustCompile(`hrld_[A-Za-z0-9_-]{43}`)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startFleet starts n herald processes on one database: the first alone
// (it creates the default app and prints its key), then the others at
// once.
func startFleet(bin, dir, db string, n int, extra []string) ([]*heraldProc, error) {
	// Every replica of a PostgreSQL database needs the same encryption
	// key (herald refuses to make one up there): one for this database.
	var env []string
	if strings.HasPrefix(db, "postgres") && os.Getenv("HERALD_ENCRYPTION_KEYS") == "" {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		env = append(os.Environ(), "HERALD_ENCRYPTION_KEYS=bench:"+base64.StdEncoding.EncodeToString(key))
	}
	first, err := startHerald(bin, filepath.Join(dir, "herald-0.log"), db, extra, env, true)
	if err != nil {
		return nil, err
	}
	fleet := make([]*heraldProc, n)
	fleet[0] = first
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fleet[i], errs[i] = startHerald(bin, filepath.Join(dir, fmt.Sprintf("herald-%d.log", i)), db, extra, env, false)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, h := range fleet {
			if h != nil {
				h.stop()
			}
		}
		return nil, err
	}
	for _, h := range fleet[1:] {
		h.token = first.token
	}
	return fleet, nil
}

// startHerald starts herald serve on db, its output kept in memory and in
// logPath (kept with --keep), with env as its environment (nil: this
// process's).
func startHerald(bin, logPath, db string, extra, env []string, wantToken bool) (*heraldProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--db", db, "--addr", addr, "--debug-addr", debugAddr,
		"--allow-http", "--allow-private-destinations", "--log-level", "warn",
		"--max-connections-per-key", "10000", "--max-subscriptions-per-connection", "100"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out := &lockedBuffer{}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.MultiWriter(out, logFile)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start herald: %w", err)
	}
	h := &heraldProc{process: &process{cmd: cmd, out: out, log: logFile}, url: "http://" + addr, debugURL: "http://" + debugAddr, db: db}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(h.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("herald did not become ready:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.token = tokenRE.FindString(out.String())
	// The key is printed before herald listens, but this process's
	// goroutine that copies herald's output may not have copied it yet.
	for printed := time.Now().Add(5 * time.Second); wantToken && h.token == "" && time.Now().Before(printed); {
		time.Sleep(10 * time.Millisecond)
		h.token = tokenRE.FindString(out.String())
	}
	if wantToken && h.token == "" {
		h.stop()
		return nil, errors.New("herald printed no API key on first start")
	}
	return h, nil
}

// goroutines returns the server's goroutine count, read from its pprof
// endpoint.
func (h *heraldProc) goroutines() (int, error) {
	resp, err := http.Get(h.debugURL + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("read goroutine profile: %w", err)
	}
	var n int
	if _, err := fmt.Sscanf(line, "goroutine profile: total %d", &n); err != nil {
		return 0, fmt.Errorf("parse goroutine profile header %q: %w", line, err)
	}
	return n, nil
}

// heapAfterGC forces a garbage collection in the server (through its heap
// profile) and returns the bytes of live heap that remain.
func (h *heraldProc) heapAfterGC() (int64, error) {
	resp, err := http.Get(h.debugURL + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read heap profile: %w", err)
	}
	return 0, errors.New("heap profile has no HeapAlloc line")
}

// settledGoroutines waits until the goroutine count stops changing (two
// equal readings 200ms apart, or 5s) and returns it.
func (h *heraldProc) settledGoroutines() (int, error) {
	last, err := h.goroutines()
	if err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		n, err := h.goroutines()
		if err != nil {
			return 0, err
		}
		if n == last {
			break
		}
		last = n
	}
	return last, nil
}

// dbSize returns the size of the database and, for SQLite, of its WAL
// (which stays allocated up to herald's WAL limit, whatever it holds).
func (h *heraldProc) dbSize() (file, wal int64) {
	if strings.HasPrefix(h.db, "postgres") {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, h.db)
		if err != nil {
			return 0, 0
		}
		defer conn.Close(ctx)
		_ = conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&file)
		return file, 0
	}
	if fi, err := os.Stat(h.db); err == nil {
		file = fi.Size()
	}
	if fi, err := os.Stat(h.db + "-wal"); err == nil {
		wal = fi.Size()
	}
	return file, wal
}

// pgCPU returns the CPU time PostgreSQL used so far: its postmaster's own
// and that of its children, those that exited (cutime, cstime) and those
// still running (its backends).
func pgCPU(postmaster int) time.Duration {
	total := cpuOf(postmaster) + childCPUOf(postmaster)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parentOf(pid) == postmaster {
			total += cpuOf(pid)
		}
	}
	return total
}

// statFields returns the fields of /proc/pid/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+2:])
}

func parentOf(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// childCPUOf returns the CPU time of pid's children that it has waited
// for.
func childCPUOf(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	cu, _ := strconv.ParseInt(f[13], 10, 64)
	cs, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(cu+cs) * (time.Second / 100)
}

// sampler records the peak resident set of a process while a scenario
// runs (and the split of that peak into anonymous and file pages).
type sampler struct {
	p      *process
	peak   memory
	cancel context.CancelFunc
	done   chan struct{}
}

func sample(p *process) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{p: p, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if m := p.mem(); m.rss > s.peak.rss {
				s.peak = m
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() memory {
	s.cancel()
	<-s.done
	return s.peak
}
