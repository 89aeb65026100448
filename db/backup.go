package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// BackupInfo describes a backup Backup wrote.
type BackupInfo struct {
	// Path is the backup file.
	Path string
	// Bytes is its size.
	Bytes int64
	// Took is how long the copy and its check took.
	Took time.Duration
	// Copy is how long the copy alone took: how long the backup held its
	// read snapshot of the database.
	Copy time.Duration
	// Events is the number of events in the backup.
	Events int
	// Unfinished is the number of deliveries the backup holds unfinished:
	// after a restore they are due again (at least once: some may have
	// been sent since the backup).
	Unfinished int
}

// Backup copies the SQLite database at src into a new file dst while
// herald may be serving it: SQLite's online backup copies the pages of one
// read snapshot, so the copy is consistent and holds every transaction
// committed before it began. It takes no lock that writers wait for: in
// WAL mode a reader never blocks the writer. While it runs, the WAL cannot
// start over (it holds the pages the snapshot still reads), so it grows by
// what is written meanwhile.
//
// The copy is written beside dst, switched to a rollback journal (one
// self-contained file), checked with PRAGMA integrity_check, synced, and
// then renamed to dst, which must not exist.
func Backup(ctx context.Context, src, dst string) (*BackupInfo, error) {
	start := time.Now()
	if IsPostgres(src) {
		return nil, errors.New("herald backup copies SQLite databases: back up PostgreSQL with pg_dump or point-in-time recovery (see docs/backups.md)")
	}
	if _, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return nil, fmt.Errorf("backup: %s exists: remove it or choose another name", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmpPath)
			os.Remove(tmpPath + "-journal")
		}
	}()

	// The source connection only reads (query_only) but is not opened
	// read-only: a read-only connection cannot create the WAL index
	// (-shm) when no other connection has the database open.
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_query_only", "true")
	srcDB, err := sql.Open("sqlite3", "file:"+src+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("backup: open %s: %w", src, err)
	}
	defer srcDB.Close()
	dstDB, err := sql.Open("sqlite3", "file:"+tmpPath+"?_busy_timeout=10000")
	if err != nil {
		return nil, fmt.Errorf("backup: open %s: %w", tmpPath, err)
	}
	defer dstDB.Close()
	copyStart := time.Now()
	if err := onlineBackup(ctx, srcDB, dstDB, tmpPath); err != nil {
		return nil, fmt.Errorf("backup %s: %w", src, err)
	}
	info := &BackupInfo{Path: dst, Copy: time.Since(copyStart)}
	// A copy of a WAL database is in WAL mode: make it one file.
	var mode string
	if err := dstDB.QueryRowContext(ctx, "PRAGMA journal_mode = DELETE").Scan(&mode); err != nil || mode != "delete" {
		return nil, fmt.Errorf("backup: leave WAL mode: %q, %v", mode, err)
	}
	if err := integrityCheck(ctx, dstDB); err != nil {
		return nil, fmt.Errorf("backup: the copy failed its check: %w", err)
	}
	if err := dstDB.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&info.Events); err != nil {
		return nil, fmt.Errorf("backup: count events: %w", err)
	}
	if err := dstDB.QueryRowContext(ctx, "SELECT count(*) FROM deliveries WHERE next_attempt_at IS NOT NULL").Scan(&info.Unfinished); err != nil {
		return nil, fmt.Errorf("backup: count unfinished deliveries: %w", err)
	}
	if err := dstDB.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := syncFile(tmpPath); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.Link(tmpPath, dst); err != nil { // fails, unlike rename, if dst appeared meanwhile
		return nil, fmt.Errorf("backup: %w", err)
	}
	os.Remove(tmpPath)
	ok = true
	if err := syncFile(filepath.Dir(dst)); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	info.Bytes = fi.Size()
	info.Took = time.Since(start)
	return info, nil
}

// backupStep is how many pages one step of the copy takes (16 MiB of 4 KiB
// pages), and syncEvery how many bytes may be written between two syncs of
// the copy: flushing it as it grows keeps the disk's write-back queue
// short, so that the writes of the herald serving the database do not wait
// behind hundreds of megabytes at the end.
var (
	backupStep = 4096 // a variable for the test of many steps
	syncEvery  = 64 << 20
)

// onlineBackup copies every page of src's main database into dst. It
// holds one read transaction on the source for the whole copy, so that
// every step reads the same snapshot (without it, a backup in several
// steps starts over whenever another process writes), and syncs the copy
// as it grows (see syncEvery).
func onlineBackup(ctx context.Context, srcDB, dstDB *sql.DB, dstPath string) error {
	srcConn, err := srcDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer srcConn.Close()
	if _, err := srcConn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	defer srcConn.ExecContext(context.Background(), "ROLLBACK") //nolint:errcheck // ends the read snapshot
	var n int
	if err := srcConn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		return err // the read transaction, and its snapshot, starts here
	}
	dstConn, err := dstDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer dstConn.Close()
	if _, err := dstConn.ExecContext(ctx, "PRAGMA synchronous = OFF"); err != nil {
		return err // the copy is synced as it grows, and at the end
	}
	out, err := os.OpenFile(dstPath, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer out.Close()
	return dstConn.Raw(func(d any) error {
		return srcConn.Raw(func(s any) error {
			dc, ok1 := d.(*sqlite3.SQLiteConn)
			sc, ok2 := s.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return fmt.Errorf("unexpected driver connections %T, %T", d, s)
			}
			b, err := dc.Backup("main", sc, "main")
			if err != nil {
				return err
			}
			unsynced := 0
			for {
				done, err := b.Step(backupStep)
				if err != nil {
					b.Close()
					return err
				}
				if done {
					return b.Finish()
				}
				if unsynced += backupStep * 4096; unsynced >= syncEvery {
					if err := out.Sync(); err != nil {
						b.Close()
						return err
					}
					unsynced = 0
				}
				if err := ctx.Err(); err != nil {
					b.Close()
					return err
				}
			}
		})
	})
}

// integrityCheck runs PRAGMA integrity_check and returns what it found
// unless it says "ok".
func integrityCheck(ctx context.Context, d *sql.DB) error {
	rows, err := d.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// syncFile flushes a file or directory to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
