package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlite"
	"entgo.io/ent/dialect"
	"github.com/jackc/pgx/v5/pgconn"
)

// The schema is changed by versioned migrations: SQL files, one directory
// per dialect, each checksummed by its atlas.sum, embedded in the binary
// and applied in order (Atlas's migrate.Executor), each in a transaction
// of its own. The database records the migrations applied in
// herald_schema_revisions. `make migration name=…` writes a new one from a
// change to ent/schema; the test of this package fails while ent/schema and
// the migrations disagree.
//
//go:embed migrations/sqlite/*.sql migrations/sqlite/atlas.sum migrations/postgres/*.sql migrations/postgres/atlas.sum
var migrationFiles embed.FS

// revisionsTable records the migrations applied to the database.
const revisionsTable = "herald_schema_revisions"

// MigrateMode says what Open does about migrations the database has not
// had yet.
type MigrateMode int

const (
	// MigrateApply applies them (the default), under the lock that keeps
	// other herald processes from migrating at the same time.
	MigrateApply MigrateMode = iota
	// MigrateCheck refuses a database that has any pending
	// (`herald serve --migrate=false`) with a PendingMigrationsError.
	MigrateCheck
	// MigrateNone opens the database as it is, for `herald migrate`.
	MigrateNone
)

// Migration is one versioned migration: a file of SQL statements.
type Migration struct {
	// Version orders the migrations: a UTC time as 20060102150405.
	Version string
	// Description is what the migration does ("add_app_quotas").
	Description string
	// SQL is the file's text.
	SQL string
}

// AppliedMigration is a migration the database records.
type AppliedMigration struct {
	Version     string
	Description string
	// AppliedAt is when it ran (or was recorded, for a baseline).
	AppliedAt time.Time
	// Baseline is true for a migration recorded without being run: the
	// database already had its schema (see Adoption).
	Baseline bool
	// Known is false for a migration this herald does not have: a newer
	// herald applied it.
	Known bool
}

// Adoption is what Migrate does first with a database that a herald made
// before versioned migrations (by ent's automatic migration): it records
// the migration whose schema the database has as applied, without running
// it, after checking that the schema is that one.
type Adoption struct {
	// Release is the herald that made the database ("8a13244").
	Release string
	// Baseline is the version recorded as applied.
	Baseline string
}

// MigrationStatus is where a database stands with this herald's
// migrations.
type MigrationStatus struct {
	// Dialect is dialect.SQLite or dialect.Postgres.
	Dialect string
	// Empty is true for a database herald has not used yet: every
	// migration is pending.
	Empty bool
	// Adoption is set for a database made before versioned migrations.
	Adoption *Adoption
	// Applied are the migrations the database records, oldest first.
	Applied []AppliedMigration
	// Pending are the migrations Migrate would run, in order.
	Pending []Migration
	// Floor is the lowest SchemaVersion a herald must have to use the
	// database (0 for an empty one). See SchemaVersion.
	Floor int
}

// Current returns the version of the newest migration applied ("" for
// none).
func (s *MigrationStatus) Current() string {
	if len(s.Applied) == 0 {
		return ""
	}
	return s.Applied[len(s.Applied)-1].Version
}

// UpToDate reports whether nothing is left for Migrate to do.
func (s *MigrationStatus) UpToDate() bool { return len(s.Pending) == 0 && s.Adoption == nil }

// PendingMigrationsError is the error of Open with MigrateCheck for a
// database that has migrations to apply.
type PendingMigrationsError struct {
	Status *MigrationStatus
}

func (e *PendingMigrationsError) Error() string {
	var what string
	switch n := len(e.Status.Pending); {
	case e.Status.Empty:
		what = "the database has no schema yet"
	case n == 0:
		what = fmt.Sprintf("the database was made by herald %s, before versioned migrations, and must be adopted", e.Status.Adoption.Release)
	default:
		names := make([]string, n)
		for i, m := range e.Status.Pending {
			names[i] = m.Version + "_" + m.Description
		}
		what = fmt.Sprintf("the database schema is behind this herald: %d migration(s) pending (%s)", n, strings.Join(names, ", "))
	}
	return what + ": run `herald migrate up` with the same --db (see the SQL first with `herald migrate up --dry-run`), or start herald without --migrate=false"
}

// SchemaMismatchError is the error of Migrate for a database made before
// versioned migrations whose schema is not the one its herald made.
type SchemaMismatchError struct {
	// Release is the herald the database looks like it was made by.
	Release string
	// Differences are the statements that would make its schema that
	// herald's.
	Differences []string
}

func (e *SchemaMismatchError) Error() string {
	return fmt.Sprintf("the database looks like one herald %s made, but its schema differs from that herald's, so herald will not adopt it; "+
		"these statements would make it match:\n  %s", e.Release, strings.Join(e.Differences, "\n  "))
}

// ForeignDatabaseError is the error of Migrate for a database that holds
// tables herald did not make and no migration history.
type ForeignDatabaseError struct {
	Tables []string
}

func (e *ForeignDatabaseError) Error() string {
	return fmt.Sprintf("the database holds tables herald did not make (%s) and no herald migration history: "+
		"point herald at an empty database or at one herald made", strings.Join(e.Tables, ", "))
}

// legacy describes a database made by ent's automatic migration before
// versioned migrations, recognised by its tables.
type legacy struct {
	release  string
	dialect  string
	baseline string
	// versioned is whether that release recorded herald_schema_versions.
	versioned bool
}

// legacies are the heralds that made databases before versioned
// migrations: 8f9a04e (SQLite only, no schema version recorded) and
// 8a13244 (schema version 1, SQLite or PostgreSQL).
var legacies = []legacy{
	{release: "8a13244", dialect: dialect.SQLite, baseline: "20261128175436", versioned: true},
	{release: "8a13244", dialect: dialect.Postgres, baseline: "20261128175436", versioned: true},
	{release: "8f9a04e", dialect: dialect.SQLite, baseline: "20261125160900"},
}

// Migrations returns this herald's migrations for dialect, oldest first.
func Migrations(dialectName string) ([]Migration, error) {
	dir, err := migrationDir(dialectName)
	if err != nil {
		return nil, err
	}
	files, err := dir.Files()
	if err != nil {
		return nil, err
	}
	ms := make([]Migration, len(files))
	for i, f := range files {
		ms[i] = Migration{Version: f.Version(), Description: f.Desc(), SQL: string(f.Bytes())}
	}
	return ms, nil
}

// migrationDir returns the embedded migration directory of dialect,
// checked against its atlas.sum.
func migrationDir(dialectName string) (*migrate.MemDir, error) {
	var sub string
	switch dialectName {
	case dialect.SQLite:
		sub = "migrations/sqlite"
	case dialect.Postgres:
		sub = "migrations/postgres"
	default:
		return nil, fmt.Errorf("no migrations for dialect %q", dialectName)
	}
	entries, err := fs.ReadDir(migrationFiles, sub)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	dir := &migrate.MemDir{}
	for _, e := range entries {
		b, err := migrationFiles.ReadFile(path.Join(sub, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		if err := dir.WriteFile(e.Name(), b); err != nil {
			return nil, err
		}
	}
	if err := migrate.Validate(dir); err != nil {
		return nil, fmt.Errorf("the %s migrations do not match their atlas.sum: %w", dialectName, err)
	}
	return dir, nil
}

// migrator reads and applies the migrations of one database.
type migrator struct {
	dialect string
	// db is the database; with SQLite a pool of one connection, since
	// foreign keys are turned off around each migration on the
	// connection that runs it.
	db  *sql.DB
	dir *migrate.MemDir
	log *slog.Logger
}

func newMigrator(dialectName string, db *sql.DB, log *slog.Logger) (*migrator, error) {
	dir, err := migrationDir(dialectName)
	if err != nil {
		return nil, err
	}
	return &migrator{dialect: dialectName, db: db, dir: dir, log: log}, nil
}

// driver returns Atlas's driver for conn.
func (m *migrator) driver(conn schema.ExecQuerier) (migrate.Driver, error) {
	if m.dialect == dialect.Postgres {
		return postgres.Open(conn)
	}
	return sqlite.Open(conn)
}

// tables returns the names of the tables in the database's schema.
func (m *migrator) tables(ctx context.Context) ([]string, error) {
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
	if m.dialect == dialect.Postgres {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
	}
	rows, err := m.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// floor reads the lowest SchemaVersion the database allows.
func (m *migrator) floor(ctx context.Context, tables []string) (int, error) {
	if !slices.Contains(tables, versionsTable) {
		return 0, nil
	}
	var v int
	if err := m.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+versionsTable).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// status reads where the database stands. It writes nothing.
func (m *migrator) status(ctx context.Context) (*MigrationStatus, error) {
	files, err := m.dir.Files()
	if err != nil {
		return nil, err
	}
	tables, err := m.tables(ctx)
	if err != nil {
		return nil, err
	}
	st := &MigrationStatus{Dialect: m.dialect}
	if st.Floor, err = m.floor(ctx, tables); err != nil {
		return nil, err
	}
	var revs []*migrate.Revision
	if slices.Contains(tables, revisionsTable) {
		if revs, err = (&revisions{dialect: m.dialect, conn: m.db}).ReadRevisions(ctx); err != nil {
			return nil, err
		}
	}
	done := make(map[string]bool)
	for _, r := range revs {
		known := slices.ContainsFunc(files, func(f migrate.File) bool { return f.Version() == r.Version })
		if r.Type == migrate.RevisionTypeBaseline || r.Applied == r.Total {
			done[r.Version] = true
		}
		st.Applied = append(st.Applied, AppliedMigration{
			Version: r.Version, Description: r.Description, AppliedAt: r.ExecutedAt,
			Baseline: r.Type == migrate.RevisionTypeBaseline, Known: known,
		})
	}
	after := ""
	if len(revs) == 0 {
		others := slices.DeleteFunc(slices.Clone(tables), func(n string) bool { return n == revisionsTable })
		if len(others) == 0 {
			st.Empty = true
		} else {
			l, err := m.recognise(others, st.Floor)
			if err != nil {
				return nil, err
			}
			st.Adoption = &Adoption{Release: l.release, Baseline: l.baseline}
			after = l.baseline
		}
	} else if revs[0].Type == migrate.RevisionTypeBaseline {
		after = revs[0].Version
	}
	for _, f := range files {
		if f.Version() <= after || done[f.Version()] {
			continue
		}
		st.Pending = append(st.Pending, Migration{Version: f.Version(), Description: f.Desc(), SQL: string(f.Bytes())})
	}
	return st, nil
}

// recognise tells which herald made a database that has tables but no
// migration history.
func (m *migrator) recognise(tables []string, floor int) (legacy, error) {
	versioned := slices.Contains(tables, versionsTable)
	for _, l := range legacies {
		if l.dialect != m.dialect || l.versioned != versioned {
			continue
		}
		if versioned && floor != 1 {
			continue
		}
		if !versioned && !(slices.Contains(tables, "apps") && slices.Contains(tables, "events")) {
			continue
		}
		return l, nil
	}
	return legacy{}, &ForeignDatabaseError{Tables: tables}
}

// up applies the pending migrations. The caller holds the lock that keeps
// other processes from migrating at the same time.
func (m *migrator) up(ctx context.Context) error {
	st, err := m.status(ctx)
	if err != nil {
		return err
	}
	if st.Floor > SchemaVersion {
		return &SchemaTooNewError{Stored: st.Floor, Known: SchemaVersion}
	}
	if st.UpToDate() {
		return nil
	}
	from := st.Current()
	var opts []migrate.ExecutorOption
	switch {
	case st.Adoption != nil:
		if err := m.checkAdoption(ctx, st.Adoption); err != nil {
			return err
		}
		opts = append(opts, migrate.WithBaselineVersion(st.Adoption.Baseline))
		from = st.Adoption.Baseline
	case len(st.Applied) == 0:
		// Empty: our own check above stands for Atlas's, which would
		// count the revisions table (in PostgreSQL's public schema) as
		// a sign of a database in use.
		opts = append(opts, migrate.WithAllowDirty(true))
	}
	rrw := &revisions{dialect: m.dialect, conn: m.db}
	if err := rrw.create(ctx); err != nil {
		return err
	}
	drv, err := m.driver(m.db)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	ex, err := migrate.NewExecutor(drv, m.dir, rrw, opts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	pending, err := ex.Pending(ctx) // records the baseline of an adopted database
	if errors.Is(err, migrate.ErrNoPendingFiles) {
		pending = nil
	} else if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if st.Adoption != nil {
		m.log.Info("adopted a database made before versioned migrations", "release", st.Adoption.Release, "baseline", st.Adoption.Baseline)
	}
	for _, f := range pending {
		start := time.Now()
		if err := m.apply(ctx, f); err != nil {
			return fmt.Errorf("migration %s: %w", f.Name(), err)
		}
		m.log.Info("applied migration", "version", f.Version(), "description", f.Desc(), "took", time.Since(start).Round(time.Millisecond).String())
	}
	to := from
	if len(pending) > 0 {
		to = pending[len(pending)-1].Version()
	}
	m.log.Info("migrated database schema", "from", from, "to", to, "applied", len(pending))
	return nil
}

// lockTimeout bounds how long a PostgreSQL migration waits for a table
// lock: a statement waiting for one holds up every query behind it, so
// it gives up and tries again later instead of stalling deliveries.
const lockTimeout = 3 * time.Second

// apply runs one migration file in a transaction of its own (unless the
// file says `-- atlas:txmode none`, for statements such as CREATE INDEX
// CONCURRENTLY that cannot run in one).
func (m *migrator) apply(ctx context.Context, f migrate.File) error {
	if lf, ok := f.(*migrate.LocalFile); ok && slices.Contains(lf.Directive("txmode"), "none") {
		drv, err := m.driver(m.db)
		if err != nil {
			return err
		}
		return m.execute(ctx, drv, m.db, f)
	}
	if m.dialect == dialect.SQLite {
		// OpenTx turns foreign keys off around the transaction (tables are
		// rebuilt by copying) and checks before committing that the
		// migration broke no reference.
		tx, err := sqlite.OpenTx(ctx, m.db, nil)
		if err != nil {
			return err
		}
		drv, err := sqlite.Open(tx)
		if err == nil {
			err = m.execute(ctx, drv, tx, f)
		}
		if err != nil {
			return errors.Join(err, tx.Rollback())
		}
		return tx.Commit()
	}
	for try := 1; ; try++ {
		err := m.applyPostgres(ctx, f)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" || try == 10 { // lock_not_available
			return err
		}
		m.log.Warn("migration waits for a table lock: trying again", "version", f.Version(), "try", try)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(try) * time.Second):
		}
	}
}

func (m *migrator) applyPostgres(ctx context.Context, f migrate.File) error {
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", lockTimeout.Milliseconds())); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	drv, err := postgres.Open(tx)
	if err == nil {
		err = m.execute(ctx, drv, tx, f)
	}
	if err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// execute runs f through Atlas's executor on conn, recording it there.
func (m *migrator) execute(ctx context.Context, drv migrate.Driver, conn schema.ExecQuerier, f migrate.File) error {
	ex, err := migrate.NewExecutor(drv, m.dir, &revisions{dialect: m.dialect, conn: conn}, migrate.WithOperatorVersion("herald"))
	if err != nil {
		return err
	}
	return ex.Execute(ctx, f)
}

// checkAdoption checks that the database's schema is the one its herald
// made: the schema the migrations up to the baseline make.
func (m *migrator) checkAdoption(ctx context.Context, a *Adoption) error {
	want, err := m.replayed(ctx, a.Baseline)
	if err != nil {
		return fmt.Errorf("adopt the database: %w", err)
	}
	drv, err := m.driver(m.db)
	if err != nil {
		return err
	}
	names := make([]string, len(want.Tables))
	for i, t := range want.Tables {
		names[i] = t.Name
	}
	have, err := drv.InspectSchema(ctx, "", &schema.InspectOptions{Tables: names})
	if err != nil {
		return fmt.Errorf("adopt the database: inspect its schema: %w", err)
	}
	want.Name = have.Name
	changes, err := drv.SchemaDiff(have, want)
	if err != nil {
		return fmt.Errorf("adopt the database: compare its schema: %w", err)
	}
	if len(changes) == 0 {
		return nil
	}
	plan, err := drv.PlanChanges(ctx, "adopt", changes)
	if err != nil {
		return fmt.Errorf("adopt the database: %d differences from herald %s's schema", len(changes), a.Release)
	}
	diffs := make([]string, len(plan.Changes))
	for i, c := range plan.Changes {
		diffs[i] = c.Cmd
	}
	return &SchemaMismatchError{Release: a.Release, Differences: diffs}
}

// replayed returns the schema the migrations up to version make: replayed
// into a database in memory (SQLite), or into a scratch schema of this
// database in a transaction that is rolled back (PostgreSQL).
func (m *migrator) replayed(ctx context.Context, version string) (*schema.Schema, error) {
	files, err := m.dir.Files()
	if err != nil {
		return nil, err
	}
	var upTo []migrate.File
	for _, f := range files {
		if f.Version() <= version {
			upTo = append(upTo, f)
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "herald_replay_" + hex.EncodeToString(b[:])
	run := func(conn schema.ExecQuerier, schemaName string) (*schema.Schema, error) {
		drv, err := m.driver(conn)
		if err != nil {
			return nil, err
		}
		for _, f := range upTo {
			stmts, err := migrate.FileStmts(drv, f)
			if err != nil {
				return nil, err
			}
			for _, s := range stmts {
				if _, err := conn.ExecContext(ctx, s); err != nil {
					return nil, fmt.Errorf("replay %s: %w", f.Name(), err)
				}
			}
		}
		return drv.InspectSchema(ctx, schemaName, nil)
	}
	if m.dialect == dialect.SQLite {
		scratch, err := sql.Open("sqlite3", "file:"+name+"?mode=memory&cache=shared")
		if err != nil {
			return nil, err
		}
		defer scratch.Close()
		scratch.SetMaxOpenConns(1)
		return run(scratch, "main")
	}
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // the scratch schema is never kept
	if _, err := tx.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		return nil, fmt.Errorf("create a scratch schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+name); err != nil {
		return nil, err
	}
	return run(tx, name)
}

// migrateOnOpen does what mode says with the database Open opened; conn
// is the connection migrations run on (SQLite's writer).
func (d *DB) migrateOnOpen(ctx context.Context, mode MigrateMode, conn *sql.DB) error {
	switch mode {
	case MigrateNone:
		return nil
	case MigrateCheck:
		m, err := newMigrator(d.dialect, conn, d.log)
		if err != nil {
			return err
		}
		st, err := m.status(ctx)
		if err != nil {
			return err
		}
		if st.Floor > SchemaVersion {
			return &SchemaTooNewError{Stored: st.Floor, Known: SchemaVersion}
		}
		if !st.UpToDate() {
			return &PendingMigrationsError{Status: st}
		}
		d.logUnknown(st)
		return nil
	default:
		return d.migrate(ctx, conn)
	}
}

// Migrate applies the pending migrations (Open does unless told
// otherwise), under the lock that keeps other herald processes from
// migrating the database at the same time: PostgreSQL's advisory lock
// "migrate"; with SQLite, the lock file Open holds.
func (d *DB) Migrate(ctx context.Context) error {
	return d.migrate(ctx, d.Write)
}

func (d *DB) migrate(ctx context.Context, conn *sql.DB) error {
	if d.dialect == dialect.Postgres {
		unlock, err := d.Mutex("migrate").Lock(ctx)
		if err != nil {
			return fmt.Errorf("lock for migration: %w", err)
		}
		defer unlock()
	}
	m, err := newMigrator(d.dialect, conn, d.log)
	if err != nil {
		return err
	}
	if err := m.up(ctx); err != nil {
		return err
	}
	if st, err := m.status(ctx); err == nil {
		d.logUnknown(st)
	}
	return nil
}

// logUnknown says so when a newer herald migrated the database further
// than this one knows: this one runs on it, since every migration keeps
// the previous release working.
func (d *DB) logUnknown(st *MigrationStatus) {
	for _, a := range st.Applied {
		if !a.Known {
			d.log.Info("the database has a migration this herald does not know: a newer herald applied it", "version", a.Version, "description", a.Description)
		}
	}
}

// MigrationStatus reads where the database stands with this herald's
// migrations.
func (d *DB) MigrationStatus(ctx context.Context) (*MigrationStatus, error) {
	m, err := newMigrator(d.dialect, d.Write, d.log)
	if err != nil {
		return nil, err
	}
	return m.status(ctx)
}

// Status reads where the database cfg names stands with this herald's
// migrations, without opening it as Open does: it takes no lock and
// writes nothing, so it works while herald serves the database. With
// check, it also checks that a database made before versioned migrations
// has the schema its herald made (a SchemaMismatchError if not), as
// Migrate will.
func Status(ctx context.Context, cfg Config, check bool) (*MigrationStatus, error) {
	dsn := cfg.DSN
	if dsn == "" {
		dsn = cfg.Path
	}
	if dsn == "" {
		return nil, errors.New("migration status: no path or URL")
	}
	var (
		conn *sql.DB
		err  error
		name = dialect.SQLite
	)
	if IsPostgres(dsn) {
		name = dialect.Postgres
		conn, err = sql.Open("pgx", dsn)
	} else {
		if _, serr := os.Stat(dsn); errors.Is(serr, fs.ErrNotExist) {
			ms, err := Migrations(dialect.SQLite)
			return &MigrationStatus{Dialect: dialect.SQLite, Empty: true, Pending: ms}, err
		}
		conn, err = sql.Open("sqlite3", "file:"+dsn+"?mode=ro&_busy_timeout=10000")
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", Redact(dsn), err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	m, err := newMigrator(name, conn, logger(cfg))
	if err != nil {
		return nil, err
	}
	st, err := m.status(ctx)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", Redact(dsn), err)
	}
	if check && st.Adoption != nil {
		if err := m.checkAdoption(ctx, st.Adoption); err != nil {
			return st, fmt.Errorf("database %s: %w", Redact(dsn), err)
		}
	}
	return st, nil
}
