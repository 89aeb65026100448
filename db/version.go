package db

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"entgo.io/ent/dialect"
)

// SchemaVersion is the version of the database schema this binary knows.
// Bump it with every change to ent/schema that changes the database (a
// test of this package fails until you do), so that an older herald
// refuses a database that a newer one migrated instead of misusing it.
const SchemaVersion = 2

// SchemaTooNewError is the error of Open for a database whose schema a
// newer herald migrated.
type SchemaTooNewError struct {
	// Stored is the schema version recorded in the database.
	Stored int
	// Known is the version this binary knows (SchemaVersion).
	Known int
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("the database schema is version %d, newer than the version %d this herald knows: "+
		"a newer herald migrated it; upgrade herald to a release that knows schema version %d", e.Stored, e.Known, e.Stored)
}

// migrateMu serialises migrations within a process: ent's generated
// migrate.Tables is package state that Schema.Create mutates, so two
// databases opened at once (tests do) must not migrate concurrently.
var migrateMu sync.Mutex

// versionsTable records every schema version applied to the database.
const versionsTable = "herald_schema_versions"

// migrate checks the stored schema version, brings the schema up to date
// and records SchemaVersion. The caller holds whatever keeps other
// processes from migrating at the same time.
func (d *DB) migrate(ctx context.Context, conn *sql.DB) error {
	ts, insert := "TIMESTAMP", "INSERT INTO "+versionsTable+" (version, applied_at) VALUES (?, ?)"
	if d.dialect == dialect.Postgres {
		ts, insert = "timestamptz", "INSERT INTO "+versionsTable+" (version, applied_at) VALUES ($1, $2)"
	}
	if _, err := conn.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+versionsTable+
		" (version integer PRIMARY KEY, applied_at "+ts+" NOT NULL)"); err != nil {
		return fmt.Errorf("create %s: %w", versionsTable, err)
	}
	var stored int
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+versionsTable).Scan(&stored); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if stored > SchemaVersion {
		return &SchemaTooNewError{Stored: stored, Known: SchemaVersion}
	}
	if err := d.Client.Schema.Create(ctx); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	if stored == SchemaVersion {
		return nil
	}
	if _, err := conn.ExecContext(ctx, insert, SchemaVersion, time.Now().UTC()); err != nil {
		return fmt.Errorf("record schema version %d: %w", SchemaVersion, err)
	}
	d.log.Info("migrated database schema", "from_version", stored, "to_version", SchemaVersion)
	return nil
}
