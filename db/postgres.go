package db

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/heraldhq/herald/ent"
)

// defaultMaxConns is the size of the PostgreSQL pool unless the URL's
// pool_max_conns or Config.MaxConns says otherwise. The engine commits in
// groups, so a handful of connections carry thousands of deliveries per
// second; the rest serve API reads.
const defaultMaxConns = 16

// openPostgres opens a pgx pool on dsn, database/sql and ent over it, and
// migrates the schema under an advisory lock (Migrate) so that replicas
// starting at once migrate one after the other.
func openPostgres(ctx context.Context, cfg Config, dsn string) (*DB, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %s: %w", redact(dsn), err)
	}
	switch {
	case cfg.MaxConns > 0:
		pc.MaxConns = int32(cfg.MaxConns)
	case !hasParam(dsn, "pool_max_conns"):
		pc.MaxConns = defaultMaxConns
	}
	pc.AfterConnect = afterConnect
	target := redact(dsn)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", target, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database %s: %w", target, err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	d := &DB{
		dialect: dialect.Postgres, log: logger(cfg),
		Write: sqlDB, Read: sqlDB, Pool: pool,
		Client: ent.NewClient(ent.Driver(entsql.OpenDB(dialect.Postgres, sqlDB))),
	}
	if err := d.migrateOnOpen(ctx, cfg.Migrate, sqlDB); err != nil {
		d.closePostgres()
		return nil, fmt.Errorf("database %s: %w", target, err)
	}
	return d, nil
}

// afterConnect prepares every new connection of the pool: timestamptz
// values are read in UTC, as SQLite's are, so that times compare and print
// the same on both.
func afterConnect(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{
		Name: "timestamptz", OID: pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
	})
	return nil
}

func (d *DB) closePostgres() error {
	err := d.Client.Close() // closes the database/sql handle, not the pool
	d.Pool.Close()
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

func hasParam(dsn, name string) bool {
	u, err := url.Parse(dsn)
	return err == nil && u.Query().Has(name)
}

// Redact returns dsn as it may be logged: a SQLite path as it is, a
// PostgreSQL URL without its password.
func Redact(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	return redact(dsn)
}

// redact returns a PostgreSQL URL without its password.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable PostgreSQL URL)"
	}
	return u.Redacted()
}
