package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
	"entgo.io/ent/dialect"
)

// revisions is Atlas's revision store (migrate.RevisionReadWriter) in the
// herald_schema_revisions table.
type revisions struct {
	dialect string
	conn    schema.ExecQuerier
}

var _ migrate.RevisionReadWriter = (*revisions)(nil)

// Ident implements migrate.RevisionReadWriter.
func (r *revisions) Ident() *migrate.TableIdent {
	return &migrate.TableIdent{Name: revisionsTable}
}

// create creates the table if it does not exist.
func (r *revisions) create(ctx context.Context) error {
	ts := "datetime"
	if r.dialect == dialect.Postgres {
		ts = "timestamptz"
	}
	_, err := r.conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+revisionsTable+` (
	version varchar(64) NOT NULL PRIMARY KEY,
	description text NOT NULL,
	type integer NOT NULL,
	applied integer NOT NULL,
	total integer NOT NULL,
	executed_at `+ts+` NOT NULL,
	execution_time bigint NOT NULL,
	error text NOT NULL,
	error_stmt text NOT NULL,
	hash text NOT NULL,
	partial_hashes text NOT NULL,
	operator_version text NOT NULL
)`)
	if err != nil {
		return fmt.Errorf("create %s: %w", revisionsTable, err)
	}
	return nil
}

// bind turns ? placeholders into PostgreSQL's $n.
func (r *revisions) bind(q string) string {
	if r.dialect != dialect.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

const revisionColumns = "version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version"

// ReadRevisions implements migrate.RevisionReadWriter.
func (r *revisions) ReadRevisions(ctx context.Context) ([]*migrate.Revision, error) {
	rows, err := r.conn.QueryContext(ctx, "SELECT "+revisionColumns+" FROM "+revisionsTable+" ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", revisionsTable, err)
	}
	defer rows.Close()
	var revs []*migrate.Revision
	for rows.Next() {
		rev, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		revs = append(revs, rev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", revisionsTable, err)
	}
	return revs, nil
}

// ReadRevision implements migrate.RevisionReadWriter.
func (r *revisions) ReadRevision(ctx context.Context, version string) (*migrate.Revision, error) {
	rows, err := r.conn.QueryContext(ctx, r.bind("SELECT "+revisionColumns+" FROM "+revisionsTable+" WHERE version = ?"), version)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", revisionsTable, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", revisionsTable, err)
		}
		return nil, migrate.ErrRevisionNotExist
	}
	return scanRevision(rows)
}

func scanRevision(rows *sql.Rows) (*migrate.Revision, error) {
	var (
		rev     migrate.Revision
		typ     int
		elapsed int64
		partial string
	)
	if err := rows.Scan(&rev.Version, &rev.Description, &typ, &rev.Applied, &rev.Total, &rev.ExecutedAt, &elapsed,
		&rev.Error, &rev.ErrorStmt, &rev.Hash, &partial, &rev.OperatorVersion); err != nil {
		return nil, fmt.Errorf("read %s: %w", revisionsTable, err)
	}
	rev.Type = migrate.RevisionType(typ)
	rev.ExecutionTime = time.Duration(elapsed)
	if partial != "" {
		if err := json.Unmarshal([]byte(partial), &rev.PartialHashes); err != nil {
			return nil, fmt.Errorf("read %s: revision %s: %w", revisionsTable, rev.Version, err)
		}
	}
	return &rev, nil
}

// WriteRevision implements migrate.RevisionReadWriter.
func (r *revisions) WriteRevision(ctx context.Context, rev *migrate.Revision) error {
	partial := ""
	if len(rev.PartialHashes) > 0 {
		b, err := json.Marshal(rev.PartialHashes)
		if err != nil {
			return err
		}
		partial = string(b)
	}
	_, err := r.conn.ExecContext(ctx, r.bind("INSERT INTO "+revisionsTable+" ("+revisionColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"+
		" ON CONFLICT (version) DO UPDATE SET description = excluded.description, type = excluded.type, applied = excluded.applied,"+
		" total = excluded.total, executed_at = excluded.executed_at, execution_time = excluded.execution_time, error = excluded.error,"+
		" error_stmt = excluded.error_stmt, hash = excluded.hash, partial_hashes = excluded.partial_hashes, operator_version = excluded.operator_version"),
		rev.Version, rev.Description, int(rev.Type), rev.Applied, rev.Total, rev.ExecutedAt.UTC(), int64(rev.ExecutionTime),
		rev.Error, rev.ErrorStmt, rev.Hash, partial, rev.OperatorVersion)
	if err != nil {
		return fmt.Errorf("record migration %s: %w", rev.Version, err)
	}
	return nil
}

// DeleteRevision implements migrate.RevisionReadWriter.
func (r *revisions) DeleteRevision(ctx context.Context, version string) error {
	if _, err := r.conn.ExecContext(ctx, r.bind("DELETE FROM "+revisionsTable+" WHERE version = ?"), version); err != nil {
		return fmt.Errorf("delete migration record %s: %w", version, err)
	}
	return nil
}
