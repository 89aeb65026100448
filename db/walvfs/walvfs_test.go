package walvfs_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/heraldhq/herald/db/walvfs"
)

// open opens path in WAL mode with one connection, through the VFS when
// viaVFS is set.
func open(t testing.TB, path string, viaVFS bool, params ...string) *sql.DB {
	t.Helper()
	if err := walvfs.Register(); err != nil {
		t.Fatal(err)
	}
	dsn := "file:" + path + "?_journal_mode=WAL&_busy_timeout=5000"
	if viaVFS {
		dsn += "&vfs=" + walvfs.Name
	}
	for _, p := range params {
		dsn += "&" + p
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
		t.Fatal(err)
	}
	return db
}

// schema has a table and three indexes, so that one inserted row changes
// four pages: four WAL frames of a commit.
const schema = `CREATE TABLE rows (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c BLOB);
CREATE INDEX rows_a ON rows (a);
CREATE INDEX rows_b ON rows (b);
CREATE INDEX rows_ab ON rows (a, b);`

func insert(t testing.TB, db *sql.DB, from, n int) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		if _, err := tx.Exec(`INSERT INTO rows (id, a, b, c) VALUES (?, ?, ?, ?)`,
			i, fmt.Sprintf("a%09d", i), fmt.Sprintf("b%09d", (i*7919)%1000003), bytes.Repeat([]byte{byte(i)}, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// writeCalls returns the write system calls this process has made.
func writeCalls(t testing.TB) int {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Fatalf("count write calls: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no syscw in /proc/self/io")
	return 0
}

func TestCommit_WritesItsFramesInOneCall(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts write calls in /proc/self/io, which only Linux has")
	}
	for _, tc := range []struct {
		name    string
		viaVFS  bool
		atMost  int // write calls for 100 one-row commits
		atLeast int
	}{
		// Four pages a commit, two calls a frame: 800 without the VFS.
		{name: "unix VFS", viaVFS: false, atLeast: 800},
		{name: "herald-wal VFS", viaVFS: true, atMost: 110},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t, filepath.Join(t.TempDir(), "t.db"), tc.viaVFS)
			if _, err := db.Exec(schema); err != nil {
				t.Fatal(err)
			}
			insert(t, db, 0, 1000) // past the first pages' splits
			before := writeCalls(t)
			for i := range 100 {
				insert(t, db, 1000+i, 1)
			}
			calls := writeCalls(t) - before
			t.Logf("%d write calls for 100 commits", calls)
			if tc.atMost > 0 && calls > tc.atMost {
				t.Errorf("%d write calls for 100 commits, want at most %d", calls, tc.atMost)
			}
			if calls < tc.atLeast {
				t.Errorf("%d write calls for 100 commits, want at least %d (is the test measuring?)", calls, tc.atLeast)
			}
		})
	}
}

// TestCommit_IsVisibleAndConsistent runs transactions that exercise every
// path of the VFS (large ones that spill to the WAL before they commit and
// rewrite frames, rollbacks, checkpoints that restart the log, and
// synchronous=FULL) and checks after each that another connection, on the
// unix VFS, reads exactly what was committed and that the database is
// intact.
func TestCommit_IsVisibleAndConsistent(t *testing.T) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		t.Run(sync, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			// A tiny cache makes a large transaction spill pages to the
			// WAL before it commits, and write some of them again.
			w := open(t, path, true, "_synchronous="+sync, "_cache_size=-64")
			if _, err := w.Exec(schema); err != nil {
				t.Fatal(err)
			}
			r := open(t, path, false)
			want := 0
			check := func(step string) {
				t.Helper()
				var n int
				if err := r.QueryRow(`SELECT count(*) FROM rows`).Scan(&n); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				if n != want {
					t.Fatalf("%s: the other connection reads %d rows, want %d", step, n, want)
				}
				var ok string
				if err := r.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
					t.Fatalf("%s: integrity_check: %q, %v", step, ok, err)
				}
			}
			next := 0
			commit := func(n int) {
				t.Helper()
				insert(t, w, next, n)
				next += n
				want += n
			}
			commit(1)
			check("one row")
			commit(5000) // spills: more pages than the cache holds
			check("a spilling transaction")

			// Rolled back after spilling: none of it may be read.
			tx, err := w.Begin()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3000 {
				if _, err := tx.Exec(`INSERT INTO rows (id, a, b, c) VALUES (?, ?, ?, ?)`, 1_000_000+i, "x", "y", bytes.Repeat([]byte{1}, 300)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			check("a rolled-back spilling transaction")
			commit(1)
			check("one row after the rollback")

			// Updates that change the same pages many times in one
			// transaction, then a savepoint rolled back inside it.
			tx, err = w.Begin()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(`UPDATE rows SET b = b || 'x', c = randomblob(300)`); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(`SAVEPOINT s; DELETE FROM rows; ROLLBACK TO s; RELEASE s`); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			check("an update of every row")

			// The log starts over after a checkpoint: its header is
			// written again.
			if _, err := w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				t.Fatal(err)
			}
			commit(10)
			check("after the log started over")
			for range 50 {
				commit(1)
			}
			check("fifty one-row commits")
		})
	}
}

// TestCommit_SurvivesSIGKILL commits in a child process that kills itself
// right after: every committed row must be in the database.
func TestCommit_SurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv("WALVFS_CHILD"); path != "" {
		db := open(t, path, true)
		if _, err := db.Exec(schema); err != nil {
			t.Fatal(err)
		}
		insert(t, db, 0, 2000)
		for i := range 200 {
			insert(t, db, 2000+i, 1)
		}
		if _, err := db.ExecContext(context.Background(), "PRAGMA user_version = 7"); err != nil {
			t.Fatal(err)
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	path := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCommit_SurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "WALVFS_CHILD="+path)
	out, err := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, out)
	}
	db := open(t, path, false)
	var n, version int
	if err := db.QueryRow(`SELECT count(*) FROM rows`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if n != 2200 || version != 7 {
		t.Fatalf("after SIGKILL: %d rows and user_version %d, want 2200 and 7", n, version)
	}
}
