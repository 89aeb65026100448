package db_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
)

func open(t *testing.T, path string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), db.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCheckpoint_WALStaysBoundedUnderSteadyLoad writes far more than the
// WAL's restart threshold while readers never stop reading: the WAL must
// start over instead of growing with everything written.
func TestCheckpoint_WALStaysBoundedUnderSteadyLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	const limit = 16 << 20
	d, err := db.Open(context.Background(), db.Config{Path: path, WALLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if _, err := d.Write.ExecContext(ctx, "CREATE TABLE load (b BLOB)"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int
				_ = d.Read.QueryRowContext(ctx, "SELECT count(*) FROM load").Scan(&n)
			}
		}()
	}
	const written = 8 * limit
	blob := make([]byte, 256<<10)
	var peak int64
	for range written / len(blob) {
		if _, err := d.Write.ExecContext(ctx, "INSERT INTO load (b) VALUES (?)", blob); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path + "-wal"); err == nil {
			peak = max(peak, fi.Size())
		}
		time.Sleep(time.Millisecond) // a steady load, not one burst
	}
	close(stop)
	wg.Wait()
	if peak > written/2 { // without restarts the WAL holds all of it
		t.Errorf("WAL grew to %d MiB while %d MiB were written", peak>>20, written>>20)
	}
	t.Logf("WAL peaked at %d MiB for %d MiB written", peak>>20, written>>20)
}

// TestClose_LeavesNoWALAndReleasesTheLock closes a database after writes:
// the WAL is checkpointed away and a second Open succeeds, while a second
// Open of a database still in use is refused.
func TestClose_LeavesNoWALAndReleasesTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	d := open(t, path)
	if _, err := db.Open(context.Background(), db.Config{Path: path}); err == nil {
		t.Fatal("a second Open of a database in use succeeded")
	}
	if _, err := d.Write.Exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		t.Errorf("WAL holds %d bytes after Close", fi.Size())
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	again := open(t, path)
	defer again.Close()
	var x int
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := again.Read.QueryRowContext(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 1 {
		t.Fatalf("reopened database: x=%d err=%v", x, err)
	}
}
