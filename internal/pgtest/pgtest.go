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
	"os"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/pgcluster"
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

// Cluster is a PostgreSQL server that tests create databases on.
type Cluster struct {
	*pgcluster.Cluster
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error

	// clusters are the throwaway clusters this binary started, stopped by
	// Main.
	clustersMu sync.Mutex
	clusters   []*pgcluster.Cluster
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
		_ = c.Close()
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
			var c *pgcluster.Cluster
			if c, sharedErr = pgcluster.External(s); sharedErr == nil {
				shared = &Cluster{c}
			}
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
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// startCluster starts a throwaway cluster, fast rather than durable, and
// remembers it for StopAll.
func startCluster() (*Cluster, error) {
	c, err := pgcluster.Start(false)
	if err != nil {
		return nil, err
	}
	clustersMu.Lock()
	clusters = append(clusters, c)
	clustersMu.Unlock()
	return &Cluster{c}, nil
}

// unavailable skips t, or fails it when PostgreSQL is required.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("PostgreSQL is required (%s=1) but unavailable: %v", EnvRequire, err)
	}
	t.Skipf("PostgreSQL unavailable (set %s=1 to fail instead): %v", EnvRequire, err)
}

// New creates a fresh, empty database with a unique name and returns its
// URL. The database is dropped when the test ends.
func (c *Cluster) New(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, dsn, err := c.CreateDatabase(ctx, "herald_test_")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if c.Throwaway() && c.Stopped() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dsn
}

// Stop stops a throwaway cluster (a fast shutdown: connections are
// closed). Its databases stay on disk until Resume or the end of the test.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if !c.Throwaway() {
		t.Fatalf("pgtest: cannot stop %s: not a throwaway cluster", EnvServer)
	}
	if err := c.Cluster.Stop(); err != nil {
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
	if err := c.Cluster.Resume(); err != nil {
		t.Fatalf("pgtest: start again: %v", err)
	}
}
