// Package db opens Herald's database: a SQLite file, or a PostgreSQL
// database shared by several replicas.
//
// With SQLite, one process uses the file (a lock file beside it keeps
// others off): one writer connection and a pool of read-only connections
// behind a single ent client. With PostgreSQL, one pgx pool serves ent
// (through database/sql), Herald's own SQL, and the native connections
// that LISTEN for notifications take their settings from it.
//
// Either way Open brings the schema up to date with the versioned
// migrations embedded in the binary, one process at a time (see Migrate),
// and refuses a database that a newer herald changed in a way this one
// cannot use (see SchemaVersion).
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"entgo.io/ent/dialect"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhq/herald/ent"
	_ "github.com/heraldhq/herald/ent/runtime" // registers schema hooks and interceptors
)

// Config says where the database lives and how to open it.
type Config struct {
	// DSN is the database: a SQLite file path (created if missing), or a
	// postgres:// or postgresql:// URL such as
	// "postgres://herald:secret@db:5432/herald?sslmode=verify-full".
	DSN string
	// Path is the SQLite file.
	//
	// Deprecated: use DSN, which also accepts PostgreSQL URLs. Path is
	// used when DSN is empty.
	Path string

	// Synchronous is SQLite's synchronous setting: "NORMAL" (default) keeps
	// every committed transaction through a process crash; "FULL" also
	// through a power loss, at the cost of an fsync per commit.
	Synchronous string
	// Readers is the size of SQLite's read pool (default 2×GOMAXPROCS, at
	// least 4).
	Readers int
	// WALLimit is the WAL length in bytes beyond which SQLite's background
	// checkpointer holds off writes for one checkpoint (an fsync, about
	// 10 ms) so that the WAL starts over (default 256 MiB). Smaller limits
	// bound the disk used by the WAL more tightly at the cost of more
	// frequent pauses.
	WALLimit int64

	// MaxConns is the most connections the PostgreSQL pool opens (default:
	// the URL's pool_max_conns, else 16). Connections that LISTEN or hold
	// an advisory lock are not counted.
	MaxConns int

	// Migrate says what Open does about pending migrations: apply them
	// (the default), refuse the database (MigrateCheck), or nothing
	// (MigrateNone).
	Migrate MigrateMode

	// Logger receives the few logs of opening and migrating (default
	// slog.Default()).
	Logger *slog.Logger
}

// DB is an open database.
type DB struct {
	dialect string
	log     *slog.Logger

	// Write is where every write goes. With SQLite it is the single
	// writer connection; with PostgreSQL, database/sql over Pool.
	Write *sql.DB
	// Read is where plain reads go. With SQLite it is a pool of read-only
	// connections; with PostgreSQL it is Write.
	Read *sql.DB
	// Client is the ent client over both.
	Client *ent.Client
	// Pool is the native pgx pool Write and Read are built on (PostgreSQL
	// only; nil with SQLite), for code that wants pgx's own API (batches,
	// COPY).
	Pool *pgxpool.Pool

	// SQLite.
	lock *os.File
	cp   *sql.DB // the checkpointer's connection
	// restartFrames is the WAL length, in frames, at which the
	// checkpointer makes the WAL start over.
	restartFrames int
	stop          chan struct{}
	stopped       chan struct{}
	sqliteMu      sync.Map // name → *sync.Mutex, for Mutex on SQLite
}

// IsPostgres reports whether dsn names a PostgreSQL database (a postgres://
// or postgresql:// URL) rather than a SQLite file.
func IsPostgres(dsn string) bool {
	scheme, _, ok := strings.Cut(dsn, "://")
	return ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"))
}

// Open opens (creating if needed) and migrates the database (see
// Config.Migrate).
func Open(ctx context.Context, cfg Config) (*DB, error) {
	dsn := cfg.DSN
	if dsn == "" {
		dsn = cfg.Path
	}
	if dsn == "" {
		return nil, errors.New("open database: no path or URL")
	}
	if IsPostgres(dsn) {
		return openPostgres(ctx, cfg, dsn)
	}
	return openSQLite(ctx, cfg, dsn)
}

// Dialect returns the ent dialect of the database: dialect.SQLite or
// dialect.Postgres.
func (d *DB) Dialect() string { return d.dialect }

// ConnConfig returns a copy of the settings of the PostgreSQL pool's
// connections, for a native connection of one's own (pgx.ConnectConfig),
// such as one that LISTENs. It returns nil with SQLite.
func (d *DB) ConnConfig() *pgx.ConnConfig {
	if d.Pool == nil {
		return nil
	}
	return d.Pool.Config().ConnConfig.Copy()
}

// Close closes the client and the connections.
func (d *DB) Close() error {
	if d.dialect == dialect.Postgres {
		return d.closePostgres()
	}
	return d.closeSQLite()
}

func logger(cfg Config) *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.Default()
}

// WithTx runs fn with a transactional client and commits if fn returns nil.
// If client is already transactional, fn runs in that transaction.
func WithTx(ctx context.Context, client *ent.Client, fn func(tx *ent.Client) error) error {
	tx, err := client.Tx(ctx)
	if errors.Is(err, ent.ErrTxStarted) {
		return fn(client)
	}
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx.Client()); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
