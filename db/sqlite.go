package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/mattn/go-sqlite3" // registers the sqlite3 driver

	"github.com/heraldhq/herald/db/walvfs"
	"github.com/heraldhq/herald/ent"
)

// openSQLite opens the SQLite database at path: one writer connection
// (SQLite allows one writer at a time, so queueing in Go is cheaper than
// retrying on SQLITE_BUSY) and a small pool of read-only connections, both
// in WAL mode, behind a single ent client that sends reads to the pool and
// everything else to the writer.
func openSQLite(ctx context.Context, cfg Config, path string) (*DB, error) {
	cfg.Path = path
	sync := strings.ToUpper(cfg.Synchronous)
	if sync == "" {
		sync = "NORMAL"
	}
	if sync != "NORMAL" && sync != "FULL" {
		return nil, fmt.Errorf("open database: synchronous must be NORMAL or FULL, got %q", cfg.Synchronous)
	}
	lock, err := lockFile(cfg.Path + ".lock")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	readers := cfg.Readers
	if readers <= 0 {
		readers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	common := url.Values{}
	common.Set("_foreign_keys", "on")
	common.Set("_busy_timeout", "10000")
	common.Set("_cache_size", "-8192") // 8 MiB per reader; the OS caches the file too
	common.Set("_temp_store", "memory")

	wq := url.Values{}
	for k, v := range common {
		wq[k] = v
	}
	wq.Set("_synchronous", sync)
	wq.Set("_txlock", "immediate")
	// The writer appends to the WAL through walvfs, which writes a
	// commit's frames with one system call instead of two per frame.
	if err := walvfs.Register(); err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
	}
	wq.Set("vfs", walvfs.Name)
	// The writer's cache keeps 8 MiB too: appends touch the right edges of
	// the tables and indexes and their paths from the root, which fit many
	// times over; the rest comes from the OS's cache of the file. 32 MiB
	// made no measurable difference to CPU per delivery and cost 17-25 MB
	// of peak RSS in the benchmark.
	w, err := sql.Open("sqlite3", "file:"+cfg.Path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
	}
	// Checkpoints run in the background (see checkpoint), not in the
	// writer's commits. The WAL file keeps its size when it starts over
	// (no journal_size_limit): cutting hundreds of MiB off a file stalls
	// the commit that does it far longer than the checkpoint itself.
	pragmas := []string{"PRAGMA journal_mode = WAL", "PRAGMA wal_autocheckpoint = 0"}
	for _, pragma := range pragmas {
		if _, err := w.ExecContext(ctx, pragma); err != nil {
			w.Close()
			return nil, fmt.Errorf("open database %s: %s: %w", cfg.Path, pragma, err)
		}
	}

	rq := url.Values{}
	for k, v := range common {
		rq[k] = v
	}
	rq.Set("_query_only", "true")
	r, err := sql.Open("sqlite3", "file:"+cfg.Path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", cfg.Path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxIdleTime(0)

	cq := url.Values{}
	for k, v := range common {
		cq[k] = v
	}
	cq.Set("_cache_size", "-1024") // checkpoints read the WAL, not the cache
	// A restarting checkpoint holds off the writer while it waits for
	// readers: it never waits in SQLite, whose busy handler sleeps 1, 2,
	// 5, 10… ms between looks, but looks again itself (see restart).
	cq.Set("_busy_timeout", "0")
	cp, err := sql.Open("sqlite3", "file:"+cfg.Path+"?"+cq.Encode())
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open database %s for checkpoints: %w", cfg.Path, err)
	}
	cp.SetMaxOpenConns(1)
	drv := &router{w: entsql.OpenDB(dialect.SQLite, w), r: entsql.OpenDB(dialect.SQLite, r)}
	walLimit := cfg.WALLimit
	if walLimit <= 0 {
		walLimit = 256 << 20
	}
	d := &DB{
		dialect: dialect.SQLite, log: logger(cfg),
		Write: w, Read: r, Client: ent.NewClient(ent.Driver(drv)),
		lock: lock, cp: cp, stop: make(chan struct{}), stopped: make(chan struct{}),
		restartFrames: int(walLimit / walFrameSize),
	}
	// The lock file keeps other processes off while this one migrates.
	if err := d.migrateOnOpen(ctx, cfg.Migrate, w); err != nil {
		d.Client.Close()
		cp.Close()
		return nil, fmt.Errorf("database %s: %w", cfg.Path, err)
	}
	ok = true
	go d.checkpoint()
	return d, nil
}

const (
	// checkpointInterval is how often the background checkpointer copies
	// the WAL into the database file.
	checkpointInterval = 250 * time.Millisecond
	// walFrameSize is the size of one WAL frame: a 4 KiB page and its
	// 24-byte header.
	walFrameSize = 4096 + 24
	// restartHold is how long a restart first holds the writer waiting
	// for the readers of the WAL to finish; it doubles after each restart
	// that gives up, up to maxRestartHold, so that the WAL starts over
	// even under readers that never pause, and is back to restartHold
	// once one succeeds.
	restartHold    = 10 * time.Millisecond
	maxRestartHold = time.Second
	// restartPoll is how often a restart looks again for readers.
	restartPoll = 200 * time.Microsecond
	// A restart copies the WAL without holding the writer, again and
	// again (at most maxCatchUps times) until a copy finds at most
	// caughtUp frames to copy and leaves at most caughtUp behind (those
	// still read from the WAL): what is written during that short copy
	// and what it left are all the restart copies while it holds the
	// writer. The time a copy takes grows with the pages it syncs, about
	// 15 µs each on this machine's disk when idle and three times that
	// under load, and the writer appends more meanwhile: stopping at a
	// copy that had little to do is what keeps the copy done while
	// holding the writer short.
	maxCatchUps = 20
	caughtUp    = 64
)

// checkpoint copies committed WAL frames into the database file, on its own
// connection, so that the writer never pays for it in a commit. PASSIVE
// checkpoints never wait for readers or the writer, but under steady load
// they never catch up with the writer either, and SQLite only starts the
// WAL over once a checkpoint has caught up: the file would grow for as long
// as the load lasts. So once the WAL is longer than Config.WALLimit,
// restart finishes the copy while the writer waits, and the next commit
// writes from the start of the file. The file then stays about WALLimit
// long until Close empties it.
func (d *DB) checkpoint() {
	defer close(d.stopped)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	hold := restartHold
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			var busy, frames, copied int
			if err := d.cp.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
				continue
			}
			if frames < d.restartFrames {
				continue
			}
			if d.restart(hold) {
				hold = restartHold
			} else {
				hold = min(2*hold, maxRestartHold)
			}
		}
	}
}

// restart copies what was written since the last checkpoint while the
// writer goes on, until it has caught up, then takes the writer
// connection, so that writes queue in Go and resume the moment it is
// handed back instead of polling SQLite's lock, and runs a RESTART
// checkpoint: it copies the frames written meanwhile, syncs, and, looking
// again every restartPoll for at most hold, waits for the readers of the
// old WAL to finish. It reports whether the WAL starts over.
//
// It used to wait for readers in SQLite's busy handler, for up to 50 ms,
// which sleeps longer at each look: next to TestNoisyNeighbour's noisy
// app, whose queries keep the readers busy, restarts held the writer 41
// to 52 ms, two or three times in each measurement, and some gave up and
// came back. Then they succeeded, once or twice in a measurement, holding
// the writer 22 to 53 ms: nearly all of it the sync of the database file,
// whose pages, copied while holding the writer, land all over the file
// (syncing 650 scattered pages takes 9 ms on this machine's disk when
// idle, and 42 ms took place under that load). The catch-up that stops
// only at a copy with little to do brought that to 0.02 to 5 ms in five
// restarts.
func (d *DB) restart(hold time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), hold+time.Second)
	defer cancel()
	var busy, frames, copied int
	for i := range maxCatchUps {
		if i > 0 {
			time.Sleep(time.Millisecond) // for readers of frames still to copy to finish
		}
		before := copied
		if err := d.cp.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
			return false
		}
		if i > 0 && frames-before <= caughtUp && frames-copied <= caughtUp {
			break
		}
	}
	w, err := d.Write.Conn(ctx)
	if err != nil {
		return false
	}
	defer w.Close()
	deadline := time.Now().Add(hold)
	for {
		// With the writer held, a look that finds readers copies
		// nothing more and syncs nothing: it costs a few locks.
		err := d.cp.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &frames, &copied)
		if err == nil && busy == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(restartPoll)
	}
}

// closeSQLite closes the client and both connection pools, after a last
// checkpoint that leaves the WAL empty.
func (d *DB) closeSQLite() error {
	close(d.stop)
	<-d.stopped
	_, _ = d.cp.Exec("PRAGMA busy_timeout = 10000")
	_, _ = d.cp.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	d.cp.Close()
	err := d.Client.Close()
	if d.lock != nil {
		d.lock.Close() // releases the lock
	}
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// lockFile takes an exclusive lock on path, so that only one Herald process
// uses a database file at a time. The SQLite claimer relies on it: at
// startup every leased delivery belongs to a process that is gone.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("database %s is in use by another herald process (lock %s held)", strings.TrimSuffix(path, ".lock"), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// router is an ent driver that sends plain SELECTs to the read pool and
// everything else, including every transaction, to the writer.
type router struct {
	w, r *entsql.Driver
}

var _ dialect.Driver = (*router)(nil)

func (d *router) Exec(ctx context.Context, query string, args, v any) error {
	return d.w.Exec(ctx, query, args, v)
}

func (d *router) Query(ctx context.Context, query string, args, v any) error {
	if isSelect(query) {
		return d.r.Query(ctx, query, args, v)
	}
	return d.w.Query(ctx, query, args, v)
}

func (d *router) Tx(ctx context.Context) (dialect.Tx, error) { return d.w.Tx(ctx) }

// BeginTx is used by ent's Client.BeginTx.
func (d *router) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	return d.w.BeginTx(ctx, opts)
}

func (d *router) Close() error {
	werr := d.w.Close()
	if rerr := d.r.Close(); werr == nil {
		werr = rerr
	}
	return werr
}

func (d *router) Dialect() string { return dialect.SQLite }

func isSelect(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) >= 6 && strings.EqualFold(q[:6], "SELECT")
}
