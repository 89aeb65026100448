// Package migrationgen writes Herald's versioned migrations: it replays a
// migration directory into an empty development database, compares the
// schema that results with the one ent/schema describes, and writes the
// difference as a new migration file (Atlas's format, with the directory's
// atlas.sum brought up to date).
//
// `make migration name=add_x` runs it for both dialects through
// internal/cmd/newmigration; the test of package db runs it into a
// directory in memory to prove that ent/schema and the committed
// migrations agree.
package migrationgen

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"text/template"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	entschema "entgo.io/ent/dialect/sql/schema"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver
	_ "github.com/mattn/go-sqlite3"    // registers the sqlite3 driver

	entmigrate "github.com/heraldhq/herald/ent/migrate"
)

// Options say what to generate.
type Options struct {
	// Dialect is dialect.SQLite or dialect.Postgres.
	Dialect string
	// DevURL is an empty PostgreSQL database to replay the migrations
	// into (PostgreSQL only; SQLite uses a database in memory).
	DevURL string
	// Name describes the change, in lower case words joined by
	// underscores ("add_app_quotas"). It follows the version in the
	// file's name.
	Name string
	// Version is the new file's version, a UTC time as 20060102150405.
	// Both dialects' files of one change share it.
	Version string
	// Contract also writes the drops of columns and indexes that ent/schema
	// no longer has: the second step of an expand/contract change, one
	// release after the code stopped using them. Without it a migration
	// only adds and changes.
	Contract bool
	// Tables is the schema wanted (default: ent's generated
	// migrate.Tables).
	Tables []*entschema.Table
}

var nameRE = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)

// tablesMu serialises uses of ent's generated migrate.Tables, which a diff
// mutates.
var tablesMu sync.Mutex

// Generate writes into dir the migration that takes the schema its files
// make to the one opts.Tables describes, and updates dir's atlas.sum. It
// returns the name of the file written, or "" when the two agree.
func Generate(ctx context.Context, dir migrate.Dir, opts Options) (string, error) {
	if !nameRE.MatchString(opts.Name) {
		return "", fmt.Errorf("migration name %q: use lower-case words joined by underscores, such as add_app_quotas", opts.Name)
	}
	if err := migrate.CheckVersion(opts.Version); err != nil {
		return "", fmt.Errorf("migration version %q: %w", opts.Version, err)
	}
	if err := migrate.Validate(dir); err != nil {
		return "", fmt.Errorf("migration directory: %w (if you edited a migration by hand, run `make migration-hash`)", err)
	}
	dev, err := openDev(ctx, opts)
	if err != nil {
		return "", err
	}
	defer dev.Close()
	before, err := dir.Files()
	if err != nil {
		return "", fmt.Errorf("read migration directory: %w", err)
	}
	fmtr, err := formatter(opts.Version)
	if err != nil {
		return "", err
	}
	mopts := []entschema.MigrateOption{
		entschema.WithDir(dir),
		entschema.WithMigrationMode(entschema.ModeReplay),
		entschema.WithDialect(opts.Dialect),
		entschema.WithFormatter(fmtr),
		entschema.WithDropColumn(opts.Contract),
		entschema.WithDropIndex(opts.Contract),
	}
	m, err := entschema.NewMigrate(entsql.OpenDB(opts.Dialect, dev), mopts...)
	if err != nil {
		return "", fmt.Errorf("set up the diff: %w", err)
	}
	tables := opts.Tables
	if tables == nil {
		tables = entmigrate.Tables
	}
	tablesMu.Lock()
	err = m.NamedDiff(ctx, opts.Name, tables...)
	tablesMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("diff ent/schema with the %s migrations: %w", opts.Dialect, err)
	}
	after, err := dir.Files()
	if err != nil {
		return "", fmt.Errorf("read migration directory: %w", err)
	}
	if len(after) == len(before) {
		return "", nil
	}
	for _, f := range after {
		if f.Version() == opts.Version {
			return f.Name(), nil
		}
	}
	return "", errors.New("the diff wrote a file of an unexpected version")
}

// formatter is Atlas's default file format with a fixed version, so that
// the files of both dialects share it.
func formatter(version string) (migrate.Formatter, error) {
	name, err := template.New("name").Parse(version + "{{ with .Name }}_{{ . }}{{ end }}.sql")
	if err != nil {
		return nil, err
	}
	return migrate.TemplateFormatter{{N: name, C: migrate.DefaultFormatter[0].C}}, nil
}

// openDev opens an empty database to replay the migrations into.
func openDev(ctx context.Context, opts Options) (*sql.DB, error) {
	switch opts.Dialect {
	case dialect.SQLite:
		var b [8]byte
		_, _ = rand.Read(b[:])
		db, err := sql.Open("sqlite3", "file:dev"+hex.EncodeToString(b[:])+"?mode=memory&cache=shared&_foreign_keys=on")
		if err != nil {
			return nil, fmt.Errorf("open the development database: %w", err)
		}
		db.SetMaxOpenConns(1) // one connection keeps the database in memory alive
		return db, db.PingContext(ctx)
	case dialect.Postgres:
		if opts.DevURL == "" {
			return nil, errors.New("PostgreSQL migrations need an empty development database (DevURL)")
		}
		db, err := sql.Open("pgx", opts.DevURL)
		if err != nil {
			return nil, fmt.Errorf("open the development database: %w", err)
		}
		return db, db.PingContext(ctx)
	default:
		return nil, fmt.Errorf("unknown dialect %q", opts.Dialect)
	}
}

// Rehash writes dir's atlas.sum anew, after a migration was edited by hand.
func Rehash(dir migrate.Dir) error {
	sum, err := dir.Checksum()
	if err != nil {
		return fmt.Errorf("hash migrations: %w", err)
	}
	return migrate.WriteSumFile(dir, sum)
}
