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
}

// Claimer leases due deliveries to workers. A delivery is due when it is
// PENDING or RETRYING and its next_attempt_at has passed, or SENDING with an
// expired lease. An implementation must lease a delivery to at most one
// worker at a time, and records the lease by setting status SENDING,
// claimed_by to the worker and next_attempt_at to the lease expiry.
//
// The SQLite implementation relies on SQLite's single writer; a PostgreSQL
// one would select with FOR UPDATE SKIP LOCKED.
type Claimer interface {
	// Claim leases up to limit due deliveries to worker, oldest due first,
	// skipping deliveries of the endpoints in skip.
	Claim(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int, skip []string) ([]Job, error)
	// Release returns leased deliveries that were not attempted, due at
	// now.
	Release(ctx context.Context, worker string, ids []string, now time.Time) error
}

// Recoverer is implemented by Claimers that can tell, at startup, that every
// existing lease belongs to a process that is gone (because only one
// process may use the store at a time), and release those leases at once
// instead of waiting for them to expire.
type Recoverer interface {
	// RecoverAbandoned makes every leased delivery due at now and returns
	// how many there were.
	RecoverAbandoned(ctx context.Context, now time.Time) (int, error)
}

// SQLClaimer is a Claimer for SQLite. Its claim is a single
// UPDATE … RETURNING, atomic under SQLite's one-writer rule. It assumes it
// is the only process using the database (package db enforces that with a
// lock file), so it implements Recoverer.
type SQLClaimer struct {
	// DB is the writer connection.
	DB *sql.DB
}

// Claim implements Claimer.
func (c SQLClaimer) Claim(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int, skip []string) ([]Job, error) {
	var q strings.Builder
	q.WriteString(`UPDATE deliveries SET status = 'SENDING', claimed_by = ?, next_attempt_at = ?, updated_at = ?
WHERE id IN (SELECT id FROM deliveries
  WHERE status IN ('PENDING', 'SENDING', 'RETRYING') AND next_attempt_at <= ?`)
	until := now.Add(lease)
	args := make([]any, 0, 5+len(skip))
	args = append(args, worker, until, now, now)
	if len(skip) > 0 {
		q.WriteString(` AND endpoint_id NOT IN (`)
		for i, id := range skip {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('?')
			args = append(args, id)
		}
		q.WriteByte(')')
	}
	q.WriteString(` ORDER BY next_attempt_at LIMIT ?)
RETURNING id, app_id, event_id, endpoint_id, event_type, attempt_count, next_trigger`)
	args = append(args, limit)
	rows, err := c.DB.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	defer rows.Close()
	var jobs []Job
	for rows.Next() {
		j := Job{LeaseUntil: until}
		if err := rows.Scan(&j.DeliveryID, &j.AppID, &j.EventID, &j.EndpointID, &j.EventType, &j.AttemptCount, &j.Trigger); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return jobs, nil
}

// Release implements Claimer.
func (c SQLClaimer) Release(ctx context.Context, worker string, ids []string, now time.Time) error {
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, 0, n+3)
		args = append(args, now, now, worker)
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		q := `UPDATE deliveries SET status = CASE WHEN attempt_count = 0 THEN 'PENDING' ELSE 'RETRYING' END,
  claimed_by = NULL, next_attempt_at = ?, updated_at = ?
WHERE status = 'SENDING' AND claimed_by = ? AND id IN (` + placeholders(n) + `)`
		if _, err := c.DB.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("release deliveries: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

// RecoverAbandoned implements Recoverer.
func (c SQLClaimer) RecoverAbandoned(ctx context.Context, now time.Time) (int, error) {
	res, err := c.DB.ExecContext(ctx, `UPDATE deliveries SET status = CASE WHEN attempt_count = 0 THEN 'PENDING' ELSE 'RETRYING' END,
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
