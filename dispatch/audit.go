package dispatch

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/audit"
)

// The statement that stores audit records in a driver's transaction: the
// records of the API's mutations that change deliveries (publishing,
// tests, retries, replays) are written with the change, as package audit
// requires.
const insertAudit = `INSERT INTO audit_records (id, app_id, created_at, actor_kind, actor_id, actor_name, action,
 target_type, target_id, changes, remote_addr, request_id) VALUES `

// auditColumns is the number of columns insertAudit sets.
const auditColumns = 12

// insertAuditRow is insertAudit for one row, which the SQLite driver
// prepares once: a publish has one record, and parsing the statement for
// each cost more than storing the row.
const insertAuditRow = insertAudit + `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// auditStatement returns insertAudit for n rows with PostgreSQL's
// placeholders ($1… and a jsonb cast of changes), and its arguments.
// (SQLite stores one row at a time with insertAuditRow.)
func auditStatement(rows []*audit.Row) (string, []any) {
	var b strings.Builder
	b.WriteString(insertAudit)
	args := make([]any, 0, len(rows)*auditColumns)
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range auditColumns {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(i*auditColumns+j+1))
			if j == 9 {
				b.WriteString("::jsonb")
			}
		}
		b.WriteByte(')')
		args = append(args, auditArgs(r)...)
	}
	return b.String(), args
}

// auditArgs returns the values of a record's columns, in insertAudit's
// order.
func auditArgs(r *audit.Row) []any {
	var changes any
	if r.Changes != nil {
		changes = string(r.Changes)
	}
	return []any{r.ID, r.AppID, r.CreatedAt.UTC(), r.ActorKind, r.ActorID, r.ActorName, r.Action,
		r.TargetType, r.TargetID, changes, r.RemoteAddr, r.RequestID}
}

// InsertAudit implements Tx.
func (t *sqliteTx) InsertAudit(ctx context.Context, rows []*audit.Row) error {
	if len(rows) == 0 {
		return nil
	}
	ins := t.stmt(t.d.insAudit)
	for _, r := range rows {
		if _, err := ins.ExecContext(inline(ctx), auditArgs(r)...); err != nil {
			return fmt.Errorf("store audit records: %w", err)
		}
	}
	return nil
}

// InsertAudit implements Tx.
func (t *postgresTx) InsertAudit(ctx context.Context, rows []*audit.Row) error {
	if len(rows) == 0 {
		return nil
	}
	q, args := auditStatement(rows)
	if _, err := t.tx.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("store audit records: %w", err)
	}
	return nil
}
