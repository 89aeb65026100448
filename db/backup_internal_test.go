package db

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestBackup_StepsReadOneSnapshotWhileAnotherProcessWrites copies a
// database in many small steps while another connection (as the serving
// herald would) keeps committing pairs of rows: the copy must finish, pass
// its check, and hold whole pairs only, from one moment between commits.
func TestBackup_StepsReadOneSnapshotWhileAnotherProcessWrites(t *testing.T) {
	defer func(n int) { backupStep = n }(backupStep)
	backupStep = 8 // pages: dozens of steps, with commits in between
	dir := t.TempDir()
	src := filepath.Join(dir, "herald.db")
	w, err := sql.Open("sqlite3", "file:"+src+"?_journal_mode=WAL&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := w.Exec("CREATE TABLE events (id INTEGER PRIMARY KEY, pair INTEGER NOT NULL, body BLOB NOT NULL); CREATE TABLE deliveries (next_attempt_at INTEGER)"); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 2000)
	insertPair := func(i int) {
		tx, err := w.Begin()
		if err != nil {
			t.Error(err)
			return
		}
		for range 2 {
			if _, err := tx.Exec("INSERT INTO events (pair, body) VALUES (?, ?)", i, body); err != nil {
				t.Error(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Error(err)
		}
	}
	for i := range 500 {
		insertPair(i)
	}
	var committed atomic.Int64
	committed.Store(500)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 500; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			insertPair(i)
			committed.Add(1)
		}
	}()
	before := committed.Load()
	info, err := Backup(ctx, src, filepath.Join(dir, "backup.db"))
	after := committed.Load()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	b, err := sql.Open("sqlite3", "file:"+info.Path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var rows, pairs int
	if err := b.QueryRow("SELECT count(*), count(DISTINCT pair) FROM events").Scan(&rows, &pairs); err != nil {
		t.Fatal(err)
	}
	if rows != 2*pairs {
		t.Fatalf("the backup holds %d rows of %d pairs: it mixes moments", rows, pairs)
	}
	if int64(pairs) < before || int64(pairs) > after {
		t.Fatalf("the backup holds %d pairs; %d were committed before it began, %d by its end", pairs, before, after)
	}
	t.Logf("%d pairs committed before the backup, %d by its end; it holds %d, copied in %v in steps of %d pages (%d pairs written meanwhile)",
		before, after, pairs, info.Copy, backupStep, after-before)
	if after == before {
		t.Errorf("nothing was written during the backup: the test proved nothing")
	}
}
