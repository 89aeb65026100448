package dispatch

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Job is a delivery leased to a worker.
type Job struct {
	DeliveryID   string
	AppID        string
	EventID      string
	EndpointID   string
	EventType    string
	AttemptCount int
	// Trigger is why the next attempt happens: SCHEDULED or MANUAL_RETRY.
	Trigger    string
	LeaseUntil time.Time
	// Position is where the delivery stands in its endpoint's due order;
	// a claim that starts after it does not read it again.
	Position Cursor
	// Payload and EventCreatedAt are the event's, so the job can be sent
	// without reading the event again.
	Payload        []byte
	EventCreatedAt time.Time
}

// Cursor is a position in one endpoint's due order: by due time
// (next_attempt_at), then by Seq, an order the Claimer chooses among
// deliveries due at the same instant (every delivery of one published batch
// is). The zero Cursor is before every delivery.
type Cursor struct {
	Due time.Time
	Seq int64
}

// Claimer leases due deliveries to workers. A delivery is due when its
// next_attempt_at has passed (next_attempt_at is set exactly while a
// delivery is unfinished). An implementation must lease a delivery to at
// most one worker at a time.
//
// Claims are per endpoint, so that the engine can share its capacity
// fairly among endpoints and never scans the backlog of an endpoint it is
// not claiming for. A claimer for a store shared by several processes
// (PostgreSQL) records the lease in the row, selecting with FOR UPDATE SKIP
// LOCKED and pushing next_attempt_at to the lease expiry, so that a dead
// process's deliveries come due again. The SQLite claimer keeps leases in
// memory instead (see SQLClaimer).
type Claimer interface {
	// Due returns the endpoints that have deliveries due at now.
	Due(ctx context.Context, now time.Time) ([]string, error)
	// Claim leases up to limit due deliveries of one endpoint to worker,
	// oldest due first, skipping the deliveries in held, which the worker
	// already holds. after is a hint: the deliveries up to it were claimed
	// by earlier calls (the worker holds them), so the store may start
	// reading past it.
	Claim(ctx context.Context, worker, endpointID string, now time.Time, lease time.Duration, limit int, held []string, after Cursor) ([]Job, error)
	// Release returns leased deliveries that were not attempted, due at
	// now.
	Release(ctx context.Context, worker string, ids []string, now time.Time) error
}

// Recoverer is implemented by Claimers that can tell, at startup, that every
// delivery marked SENDING in the store belongs to a process that is gone
// (because only one process may use the store at a time), and release them
// at once instead of waiting for their leases to expire.
type Recoverer interface {
	// RecoverAbandoned makes every leased delivery due at now and returns
	// how many there were.
	RecoverAbandoned(ctx context.Context, now time.Time) (int, error)
}

// SQLClaimer is the Claimer of the SQLite store. SQLite allows one Herald
// process per database (package db enforces it with a lock file), so the
// engine of that process is the only claimer: a claim is a read of the due
// index, skipping what the engine already holds, and the lease lives in
// the engine's memory. Claiming costs no write; after a crash, every
// unfinished delivery is simply due again. Use NewSQLClaimer.
type SQLClaimer struct {
	db   *sql.DB // the writer
	read *sql.DB // the read pool claims are read from

	once  onceErr
	due   *sql.Stmt
	claim *sql.Stmt
}

// NewSQLClaimer returns a claimer over the writer connection and, if not
// nil, a read pool to read claims from.
func NewSQLClaimer(writer, read *sql.DB) *SQLClaimer {
	if read == nil {
		read = writer
	}
	return &SQLClaimer{db: writer, read: read}
}

func (c *SQLClaimer) prepare(ctx context.Context) error {
	return c.once.do(func() error {
		var err error
		c.due, err = c.read.PrepareContext(ctx, `SELECT e.id FROM endpoints e WHERE EXISTS (
  SELECT 1 FROM deliveries d WHERE d.endpoint_id = e.id AND d.next_attempt_at <= ?)`)
		if err != nil {
			return fmt.Errorf("prepare due query: %w", err)
		}
		// The due index is (endpoint_id, next_attempt_at) and, like every
		// SQLite index, ends with the rowid: ordering by both and starting
		// after the cursor reads no index entry twice, even among the
		// deliveries of one batch, which are all due at the same instant.
		c.claim, err = c.read.PrepareContext(ctx, `SELECT d.rowid, d.id, d.app_id, d.event_id, d.endpoint_id, d.event_type, d.attempt_count, d.next_trigger, d.next_attempt_at, e.payload, e.created_at
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE d.endpoint_id = ? AND d.next_attempt_at <= ? AND d.next_attempt_at >= ? AND (d.next_attempt_at > ? OR d.rowid > ?)
ORDER BY d.next_attempt_at, d.rowid LIMIT ?`)
		if err != nil {
			return fmt.Errorf("prepare claim query: %w", err)
		}
		return nil
	})
}

// Due implements Claimer. It probes the due index once per endpoint.
func (c *SQLClaimer) Due(ctx context.Context, now time.Time) ([]string, error) {
	if err := c.prepare(ctx); err != nil {
		return nil, err
	}
	rows, err := c.due.QueryContext(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("find due endpoints: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find due endpoints: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find due endpoints: %w", err)
	}
	return ids, nil
}

// Claim implements Claimer with one prepared, indexed read, starting at
// after. It reads past held deliveries (which are among the oldest due)
// and drops them.
func (c *SQLClaimer) Claim(ctx context.Context, worker, endpointID string, now time.Time, lease time.Duration, limit int, held []string, after Cursor) ([]Job, error) {
	if err := c.prepare(ctx); err != nil {
		return nil, err
	}
	skip := make(map[string]struct{}, len(held))
	for _, id := range held {
		skip[id] = struct{}{}
	}
	from := after.Due.UTC()
	rows, err := c.claim.QueryContext(ctx, endpointID, now, from, from, after.Seq, limit+len(held))
	if err != nil {
		return nil, fmt.Errorf("claim deliveries of endpoint %s: %w", endpointID, err)
	}
	defer rows.Close()
	until := now.Add(lease)
	jobs := make([]Job, 0, limit)
	for rows.Next() && len(jobs) < limit {
		j := Job{LeaseUntil: until}
		if err := rows.Scan(&j.Position.Seq, &j.DeliveryID, &j.AppID, &j.EventID, &j.EndpointID, &j.EventType, &j.AttemptCount, &j.Trigger,
			&j.Position.Due, &j.Payload, &j.EventCreatedAt); err != nil {
			return nil, fmt.Errorf("claim deliveries of endpoint %s: %w", endpointID, err)
		}
		if _, ok := skip[j.DeliveryID]; ok {
			continue
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries of endpoint %s: %w", endpointID, err)
	}
	return jobs, nil
}

// Close releases the prepared statements.
func (c *SQLClaimer) Close() {
	for _, s := range []*sql.Stmt{c.due, c.claim} {
		if s != nil {
			s.Close()
		}
	}
}

// Release implements Claimer. Leases are in memory, so there is nothing to
// write: a released delivery is still due.
func (c *SQLClaimer) Release(context.Context, string, []string, time.Time) error { return nil }

// RecoverAbandoned implements Recoverer for deliveries marked SENDING by
// synchronous test sends of a process that died.
func (c *SQLClaimer) RecoverAbandoned(ctx context.Context, now time.Time) (int, error) {
	res, err := c.db.ExecContext(ctx, `UPDATE deliveries SET status = CASE WHEN attempt_count = 0 THEN 'PENDING' ELSE 'RETRYING' END,
  claimed_by = NULL, next_attempt_at = ?, updated_at = ?
WHERE status = 'SENDING'`, now, now)
	if err != nil {
		return 0, fmt.Errorf("recover abandoned deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// placeholders returns "?,?,…" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}
