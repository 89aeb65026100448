package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhq/herald/audit"
)

// The statement that stores audit records in a driver's transaction: the
// records of the API's mutations that change deliveries (publishing,
// tests, retries, replays) are written with the change, as package audit
// requires.
const insertAudit = `INSERT INTO audit_records (id, app_id, created_at, actor_kind, actor_id, actor_name, action,
 target_type, target_id, changes, remote_addr, request_id) `

// insertAuditRow is insertAudit for one row, which the SQLite driver
// prepares once: a publish has one record, and parsing the statement for
// each cost more than storing the row.
const insertAuditRow = insertAudit + `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertAuditArrays is insertAudit for PostgreSQL: the records come as one
// array per column, so the statement is the same whatever their number.
// (It was a VALUES list of the group's size: a group commit of n publishes
// made a statement of its own for each n, each parsed and planned anew.)
const insertAuditArrays = insertAudit + `SELECT id, app, at, kind, actor, name, act, ttype, target, changes::jsonb, addr, req
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
  $10::text[], $11::text[], $12::text[]) AS a(id, app, at, kind, actor, name, act, ttype, target, changes, addr, req)`

// auditArrays returns the arguments of insertAuditArrays for rows.
func auditArrays(rows []*audit.Row) []any {
	n := len(rows)
	ids, apps, kinds, actors, names, actions := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ttypes, targets, addrs, reqs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats, changes := make([]time.Time, n), make([]*string, n)
	for i, r := range rows {
		ids[i], apps[i], ats[i], kinds[i], actors[i], names[i], actions[i] = r.ID, r.AppID, r.CreatedAt.UTC(), r.ActorKind, r.ActorID, r.ActorName, r.Action
		ttypes[i], targets[i], addrs[i], reqs[i] = r.TargetType, r.TargetID, r.RemoteAddr, r.RequestID
		if r.Changes != nil {
			c := string(r.Changes)
			changes[i] = &c
		}
	}
	return []any{ids, apps, ats, kinds, actors, names, actions, ttypes, targets, changes, addrs, reqs}
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
	if _, err := t.tx.Exec(ctx, insertAuditArrays, auditArrays(rows)...); err != nil {
		return fmt.Errorf("store audit records: %w", err)
	}
	return nil
}
