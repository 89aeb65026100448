package pgtest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestNew_GivesEachCallAFreshEmptyDatabase(t *testing.T) {
	a, b := pgtest.New(t), pgtest.New(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	ctx := context.Background()
	ca := connect(t, a)
	if _, err := ca.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	err := connect(t, b).QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n)
	if err != nil || n != 0 {
		t.Fatalf("second database has %d tables (%v), want none", n, err)
	}
}

func TestRestart_ClosesConnectionsAndKeepsData(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.New(t)
	ctx := context.Background()
	conn := connect(t, dsn)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	c.Restart(t)
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a connection opened before the restart still works")
	}
	var x int
	if err := connect(t, dsn).QueryRow(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 42 {
		t.Fatalf("after restart: x=%d err=%v", x, err)
	}
}

// The helper process starts a private cluster, prints its postmaster's
// PID and then exits the way HERALD_PGTEST_HELPER says.
func TestHelperProcess(t *testing.T) {
	how := os.Getenv("HERALD_PGTEST_HELPER")
	if how == "" {
		t.Skip("helper process for TestCluster_DiesWithTheTestBinary")
	}
	c := pgtest.Shared(t)
	pid, dir := postmaster(t, c.URL("postgres"))
	fmt.Printf("dir %s\npid %d\n", dir, pid)
	switch how {
	case "exit":
		return // pgtest.Main stops the cluster
	case "hang":
		select {} // until killed
	}
}

// postmaster returns the PID of the server's postmaster and its data
// directory.
func postmaster(t *testing.T, dsn string) (int, string) {
	t.Helper()
	var dir string
	if err := connect(t, dsn).QueryRow(context.Background(), "SHOW data_directory").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dir + "/postmaster.pid")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatal(err)
	}
	return pid, dir
}

// TestCluster_DiesWithTheTestBinary runs a test binary that starts a
// cluster and either ends normally (Main stops the cluster) or is killed
// with SIGKILL (the kernel's parent-death signal takes postgres down).
func TestCluster_DiesWithTheTestBinary(t *testing.T) {
	pgtest.Shared(t) // skips without PostgreSQL
	if os.Getenv(pgtest.EnvServer) != "" {
		t.Skip("uses a throwaway cluster; " + pgtest.EnvServer + " is set")
	}
	for _, how := range []string{"exit", "hang"} {
		t.Run(how, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
			cmd.Env = append(os.Environ(), "HERALD_PGTEST_HELPER="+how)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid, dir := 0, ""
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if d, ok := strings.CutPrefix(sc.Text(), "dir "); ok {
					dir = d
				}
				if n, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
					pid, _ = strconv.Atoi(n)
					break
				}
			}
			if pid == 0 {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatal("helper printed no postmaster PID")
			}
			if how == "hang" {
				_ = cmd.Process.Kill()
			}
			go func() { _, _ = bufio.NewReader(out).WriteTo(discard{}) }()
			_ = cmd.Wait()
			deadline := time.Now().Add(30 * time.Second)
			for syscall.Kill(pid, 0) == nil {
				if time.Now().After(deadline) {
					_ = syscall.Kill(pid, syscall.SIGQUIT)
					t.Fatalf("postgres %d outlived its test binary (%s)", pid, how)
				}
				time.Sleep(20 * time.Millisecond) // polling the process table
			}
			if how == "hang" {
				// The killed binary could not remove its directory; the
				// next cluster started does.
				pgtest.Start(t)
				if _, err := os.Stat(filepath.Dir(dir)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the directory of a dead binary's cluster survived: %v", err)
				}
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
