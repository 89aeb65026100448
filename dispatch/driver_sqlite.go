package dispatch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SQLiteDriver is the Driver of Herald's SQLite store (package db): one
// writer connection and a pool of readers over one database file that a
// single process owns. Its leases live in memory (see leaseLedger): a
// claim is a read of the due index and writes nothing. Statements on the
// hot path are prepared once. Create it with NewSQLiteDriver.
type SQLiteDriver struct {
	w, r   *sql.DB
	leases *leaseLedger

	wonce onceErr
	ronce onceErr
	// Writer statements, prepared before any transaction takes the only
	// writer connection.
	insEvent, eventByKey, insDelivery *sql.Stmt
	insFailed                         *sql.Stmt
	subscribers, endpointsVersion     *sql.Stmt
	bumpEndpoints                     *sql.Stmt
	insAttempt, finish                *sql.Stmt
	epState, addCounters, disable     *sql.Stmt
	upsertStats                       *sql.Stmt
	pause                             *sql.Stmt
	insAudit                          *sql.Stmt // one audit record
	// Reader statements.
	due, claim, claimOrdered, claimHeads *sql.Stmt
}

// NewSQLiteDriver returns a driver over the writer connection and, if not
// nil, a read pool that claims and other reads use.
func NewSQLiteDriver(writer, reader *sql.DB) *SQLiteDriver {
	if reader == nil {
		reader = writer
	}
	return &SQLiteDriver{w: writer, r: reader, leases: newLeaseLedger()}
}

var _ Driver = (*SQLiteDriver)(nil)

// leasesInMemory marks SQLiteDriver as a memoryLeaser.
func (d *SQLiteDriver) leasesInMemory() {}

// DueProbeSQLite is the statement of SQLiteDriver.Due (see dueProbe),
// exported for the tests of its plan.
var DueProbeSQLite = strings.Replace(dueProbe, "$1", "?", 1)

// Statements that read an app's subscribers.
const (
	sqliteSubscribers = `SELECT id, event_types, ordering, filter, rate_limit IS NOT NULL AND rate_limit <> 'null'
FROM endpoints WHERE app_id = ? AND is_active AND deleted_at IS NULL`
	sqliteEndpointsVersion = `SELECT endpoints_version FROM apps WHERE id = ?`
)

type preparedStmt struct {
	stmt **sql.Stmt
	sql  string
}

func prepareAll(ctx context.Context, db *sql.DB, stmts []preparedStmt) error {
	for _, p := range stmts {
		s, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", firstLine(p.sql), err)
		}
		*p.stmt = s
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func (d *SQLiteDriver) prepareWriter(ctx context.Context) error {
	return d.wonce.do(func() error {
		return prepareAll(ctx, d.w, []preparedStmt{
			{&d.insEvent, `INSERT INTO events (id, event_type, payload, idempotency_key, ordering_key, deliver_at, delivery_count, created_at, app_id, trace_parent)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, idempotency_key) DO NOTHING`},
			{&d.eventByKey, `SELECT id, event_type, payload, delivery_count, created_at FROM events WHERE app_id = ? AND idempotency_key = ?`},
			{&d.insDelivery, `INSERT INTO deliveries (id, created_at, updated_at, event_type, status, attempt_count, next_attempt_at, next_trigger, ordering_key, app_id, endpoint_id, event_id)
VALUES (?, ?, ?, ?, 'PENDING', 0, ?, 'SCHEDULED', ?, ?, ?, ?)`},
			{&d.insFailed, `INSERT INTO deliveries (id, created_at, updated_at, event_type, status, attempt_count, next_trigger, last_error, completed_at, app_id, endpoint_id, event_id)
VALUES (?, ?, ?, ?, 'FAILED', 0, 'SCHEDULED', ?, ?, ?, ?, ?)`},
			{&d.subscribers, sqliteSubscribers},
			{&d.insAudit, insertAuditRow},
			{&d.insAttempt, `INSERT INTO attempts
(id, app_id, delivery_id, endpoint_id, attempt_number, trigger, succeeded, request_url, request_headers,
 response_status, response_headers, response_body, response_body_truncated, duration_ms, error_message,
 started_at, completed_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
			{&d.finish, `UPDATE deliveries SET
 status = ?, attempt_count = ?, next_attempt_at = ?, next_trigger = 'SCHEDULED', claimed_by = NULL,
 last_attempt_at = COALESCE(?, last_attempt_at), last_response_status = COALESCE(?, last_response_status),
 last_error = ?, completed_at = ?, updated_at = ?
WHERE id = ? AND next_attempt_at IS NOT NULL`},
			{&d.epState, `SELECT is_active, deleted_at IS NOT NULL FROM endpoints WHERE id = ?`},
			{&d.addCounters, `UPDATE endpoints SET
 success_count = success_count + ?, failure_count = failure_count + ?,
 last_success_at = COALESCE(?, last_success_at), last_failure_at = COALESCE(?, last_failure_at),
 consecutive_failures = CASE WHEN ? THEN ? ELSE consecutive_failures + ? END
WHERE id = ? RETURNING consecutive_failures`},
			{&d.disable, `UPDATE endpoints SET is_active = false, disabled_reason = ?, disabled_at = ?, updated_at = ?
WHERE id = ? AND is_active RETURNING app_id, url`},
			{&d.bumpEndpoints, `UPDATE apps SET endpoints_version = endpoints_version + 1 WHERE id = ?`},
			{&d.endpointsVersion, sqliteEndpointsVersion},
			{&d.upsertStats, upsertStatsSQL},
			{&d.pause, `UPDATE endpoints SET paused_until = ? WHERE id = ? AND (paused_until IS NULL OR paused_until < ?)`},
		})
	})
}

func (d *SQLiteDriver) prepareReader(ctx context.Context) error {
	return d.ronce.do(func() error {
		return prepareAll(ctx, d.r, []preparedStmt{
			{&d.due, DueProbeSQLite},
			// The due index is (endpoint_id, next_attempt_at) and, like
			// every SQLite index, ends with the rowid: ordering by both and
			// starting after the cursor reads no index entry twice, even
			// among the deliveries of one batch, which are all due at the
			// same instant.
			// The deliveries the engine holds (?6, a JSON array) are
			// skipped before their events are read: they are among the
			// oldest due, and reading each one's payload to drop it cost
			// claims more than the rest of their work.
			{&d.claim, `SELECT d.rowid, d.id, d.app_id, d.event_id, d.endpoint_id, d.event_type, d.attempt_count, d.next_trigger, d.next_attempt_at, e.payload, e.created_at, e.deliver_at, COALESCE(e.trace_parent, ''), e.test, COALESCE(e.ordering_key, '')
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE d.endpoint_id = ?1 AND d.next_attempt_at <= ?2 AND d.next_attempt_at >= ?3 AND (d.next_attempt_at > ?4 OR d.rowid > ?5)
  AND d.id NOT IN (SELECT value FROM json_each(?6))
ORDER BY d.next_attempt_at, d.rowid LIMIT ?7`},
			// An ordered endpoint's due deliveries, among its oldest due
			// (the window, ?3), that no older unfinished delivery of
			// their ordering key holds back (the partial index
			// delivery_order finds the older ones: the row value lets
			// the planner search it by created_at too, and the explicit
			// IS NOT NULL lets it use the index at all). The window
			// bounds the work when held-back deliveries crowd the front.
			{&d.claimOrdered, `SELECT d.rowid, d.id, d.app_id, d.event_id, d.endpoint_id, d.event_type, d.attempt_count, d.next_trigger, d.next_attempt_at, e.payload, e.created_at, e.deliver_at, COALESCE(e.trace_parent, ''), e.test, COALESCE(e.ordering_key, '')
FROM (SELECT rowid AS rid FROM deliveries WHERE endpoint_id = ?1 AND next_attempt_at <= ?2 ORDER BY next_attempt_at, rowid LIMIT ?3) w
JOIN deliveries d ON d.rowid = w.rid JOIN events e ON e.id = d.event_id
WHERE d.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries p
    WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key AND p.ordering_key IS NOT NULL AND p.next_attempt_at IS NOT NULL
      AND (p.created_at, p.id) < (d.created_at, d.id))
ORDER BY d.next_attempt_at, d.rowid LIMIT ?4`},
			// The due heads of an ordered endpoint's keys: each key's
			// oldest unfinished delivery, found by skipping from key to
			// key along delivery_order, so the work grows with the
			// number of keys, not with the deliveries they hold back.
			{&d.claimHeads, `WITH RECURSIVE k(key) AS (
  SELECT (SELECT ordering_key FROM deliveries WHERE endpoint_id = ?1 AND ordering_key IS NOT NULL AND next_attempt_at IS NOT NULL
    ORDER BY ordering_key LIMIT 1)
  UNION ALL
  SELECT (SELECT ordering_key FROM deliveries WHERE endpoint_id = ?1 AND ordering_key > k.key AND ordering_key IS NOT NULL AND next_attempt_at IS NOT NULL
    ORDER BY ordering_key LIMIT 1) FROM k WHERE k.key IS NOT NULL)
SELECT d.rowid, d.id, d.app_id, d.event_id, d.endpoint_id, d.event_type, d.attempt_count, d.next_trigger, d.next_attempt_at, e.payload, e.created_at, e.deliver_at, COALESCE(e.trace_parent, ''), e.test, COALESCE(e.ordering_key, '')
FROM k JOIN deliveries d ON d.rowid = (SELECT h.rowid FROM deliveries h
    WHERE h.endpoint_id = ?1 AND h.ordering_key = k.key AND h.ordering_key IS NOT NULL AND h.next_attempt_at IS NOT NULL
    ORDER BY h.created_at, h.id LIMIT 1)
  JOIN events e ON e.id = d.event_id
WHERE k.key IS NOT NULL AND d.next_attempt_at <= ?2
ORDER BY d.next_attempt_at, d.rowid LIMIT ?3`},
		})
	})
}

// Close implements Driver.
func (d *SQLiteDriver) Close() error {
	for _, s := range []*sql.Stmt{d.insEvent, d.eventByKey, d.insDelivery, d.insFailed, d.subscribers, d.insAttempt, d.finish,
		d.epState, d.addCounters, d.disable, d.upsertStats, d.pause, d.due, d.claim, d.claimOrdered, d.claimHeads, d.endpointsVersion, d.bumpEndpoints, d.insAudit} {
		if s != nil {
			s.Close()
		}
	}
	return nil
}

// Due implements Driver. It probes the due index once per endpoint.
func (d *SQLiteDriver) Due(ctx context.Context, now time.Time) ([]string, error) {
	if err := d.prepareReader(ctx); err != nil {
		return nil, err
	}
	rows, err := d.due.QueryContext(ctx, now.UTC())
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

// Claim implements Driver with one prepared, indexed read starting at
// p.After. It reads past held deliveries (among the oldest due) and drops
// them, then holds what it returns in memory.
func (d *SQLiteDriver) Claim(ctx context.Context, p ClaimParams) ([]Job, error) {
	if err := d.prepareReader(ctx); err != nil {
		return nil, err
	}
	read := d.leases.beginClaim()
	jobs, err := d.readDue(ctx, p)
	return d.leases.endClaim(read, jobs), err
}

func (d *SQLiteDriver) readDue(ctx context.Context, p ClaimParams) ([]Job, error) {
	now := p.Now.UTC()
	from := p.After.Due.UTC()
	var (
		rows *sql.Rows
		err  error
	)
	if !p.Ordered {
		// The query skips what the engine holds now; scanClaim drops
		// what it took since.
		rows, err = d.claim.QueryContext(ctx, p.EndpointID, now, from, from, p.After.Seq, d.leases.heldJSON(p.EndpointID), p.Limit)
		return d.scanClaim(p, rows, err, nil)
	}
	// Read past what the engine holds already: it is among the oldest due.
	held := d.leases.heldCount(p.EndpointID)
	// Ordered: first the oldest due, which is cheap and usually enough;
	// if held-back deliveries crowd them out, the heads of every key.
	rows, err = d.claimOrdered.QueryContext(ctx, p.EndpointID, now, orderedWindow(p.Limit+held), p.Limit+held)
	jobs, err := d.scanClaim(p, rows, err, nil)
	if err != nil || len(jobs) == p.Limit {
		return jobs, err
	}
	rows, err = d.claimHeads.QueryContext(ctx, p.EndpointID, now, p.Limit+held+len(jobs))
	if jobs, err = d.scanClaim(p, rows, err, jobs); err != nil {
		return nil, err
	}
	slices.SortFunc(jobs, func(a, b Job) int { return a.Position.compare(b.Position) })
	return jobs, nil
}

// scanClaim appends to jobs the claimed rows that the engine does not
// hold already and jobs does not have, up to p.Limit in all.
func (d *SQLiteDriver) scanClaim(p ClaimParams, rows *sql.Rows, err error, jobs []Job) ([]Job, error) {
	if err != nil {
		return nil, fmt.Errorf("claim deliveries of endpoint %s: %w", p.EndpointID, err)
	}
	defer rows.Close()
	until := p.Now.UTC().Add(p.Lease)
	have := len(jobs)
	for len(jobs) < p.Limit && rows.Next() {
		j := Job{Lease: Lease{Token: p.Worker, Until: until}}
		if err := rows.Scan(&j.Position.Seq, &j.DeliveryID, &j.AppID, &j.EventID, &j.EndpointID, &j.EventType, &j.AttemptCount, &j.Trigger,
			&j.Position.Due, &j.Payload, &j.EventCreatedAt, &j.EventDeliverAt, &j.TraceParent, &j.EventTest, &j.OrderingKey); err != nil {
			return nil, fmt.Errorf("claim deliveries of endpoint %s: %w", p.EndpointID, err)
		}
		if d.leases.holds(j.EndpointID, j.DeliveryID) || slices.ContainsFunc(jobs[:have], func(o Job) bool { return o.DeliveryID == j.DeliveryID }) {
			continue
		}
		jobs = append(jobs, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries of endpoint %s: %w", p.EndpointID, err)
	}
	return jobs, nil
}

// Own implements Driver: the process that owns the database is the only
// engine, so it owns every endpoint, and nothing is written.
func (d *SQLiteDriver) Own(_ context.Context, _, _ string, until, _ time.Time) (bool, time.Time, error) {
	return true, until, nil
}

// RecentAttemptEnds implements Driver.
func (d *SQLiteDriver) RecentAttemptEnds(ctx context.Context, endpointID string, since time.Time, n int) ([]time.Time, error) {
	return scanEnds(d.r.QueryContext(ctx, `SELECT completed_at FROM attempts WHERE endpoint_id = ? AND completed_at > ?
ORDER BY completed_at DESC LIMIT ?`, endpointID, since.UTC(), n))
}

// scanEnds reads a column of times, newest first, and returns them
// oldest first.
func scanEnds(rows *sql.Rows, err error) ([]time.Time, error) {
	if err != nil {
		return nil, fmt.Errorf("recent attempts: %w", err)
	}
	defer rows.Close()
	var ends []time.Time
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("recent attempts: %w", err)
		}
		ends = append(ends, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent attempts: %w", err)
	}
	slices.Reverse(ends)
	return ends, nil
}

// Release implements Driver: leases are in memory, so a released delivery
// is due again as it stands in the database.
func (d *SQLiteDriver) Release(_ context.Context, leases []Lease, _ time.Time) error {
	d.leases.release(leases)
	return nil
}

// Cancel implements Driver in one bounded statement on the writer.
func (d *SQLiteDriver) Cancel(ctx context.Context, p CancelParams) ([]DeliveryRef, error) {
	held := d.leases.beginCancel(p.EndpointID)
	var out []DeliveryRef
	defer func() { d.leases.endCancel(p.EndpointID, out) }()
	now := p.Now.UTC()
	args := []any{p.Reason, now, now, p.EndpointID}
	q := `UPDATE deliveries SET status = 'FAILED', next_attempt_at = NULL, claimed_by = NULL, last_error = ?, completed_at = ?, updated_at = ?
WHERE id IN (SELECT id FROM deliveries WHERE endpoint_id = ? AND next_attempt_at IS NOT NULL`
	if len(held) > 0 {
		q += ` AND id NOT IN (` + placeholders(len(held)) + `)`
		for _, id := range held {
			args = append(args, id)
		}
	}
	q += ` LIMIT ?) RETURNING id, app_id, event_id, event_type`
	args = append(args, p.Limit)
	rows, err := d.w.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cancel deliveries of endpoint %s: %w", p.EndpointID, err)
	}
	defer rows.Close()
	for rows.Next() {
		r := DeliveryRef{EndpointID: p.EndpointID, Status: "FAILED"}
		if err := rows.Scan(&r.ID, &r.AppID, &r.EventID, &r.EventType); err != nil {
			return nil, fmt.Errorf("cancel deliveries of endpoint %s: %w", p.EndpointID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cancel deliveries of endpoint %s: %w", p.EndpointID, err)
	}
	return out, nil
}

// Requeue implements Driver: it reads the matching deliveries, leaves out
// the held ones, and updates the rest in one statement.
func (d *SQLiteDriver) Requeue(ctx context.Context, p RequeueParams) (RequeueResult, error) {
	var res RequeueResult
	refs, last, err := d.requeueCandidates(ctx, p)
	if err != nil || len(refs) == 0 {
		return res, err
	}
	if p.EndpointID != "" {
		res.Next = joinPosition(last, refs[len(refs)-1].ID)
		res.More = len(refs) == p.Limit
	}
	free, leased := d.leases.beginRequeue(refs)
	defer d.leases.endRequeue(free)
	res.Leased = leased
	if len(free) == 0 {
		return res, nil
	}
	now := p.Now.UTC()
	args := []any{now, now, p.AppID}
	for _, r := range free {
		args = append(args, r.ID)
	}
	for _, s := range p.Statuses {
		args = append(args, s)
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("requeue deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit
	rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET status = CASE WHEN attempt_count = 0 THEN 'PENDING' ELSE 'RETRYING' END,
 next_attempt_at = ?, next_trigger = 'MANUAL_RETRY', completed_at = NULL, claimed_by = NULL, updated_at = ?
WHERE app_id = ? AND id IN (`+placeholders(len(free))+`) AND status IN (`+placeholders(len(p.Statuses))+`)
RETURNING id, status`, args...)
	if err != nil {
		return res, fmt.Errorf("requeue deliveries: %w", err)
	}
	byID := make(map[string]*DeliveryRef, len(free))
	for i := range free {
		byID[free[i].ID] = &free[i]
	}
	var requeued []DeliveryRef
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			rows.Close()
			return res, fmt.Errorf("requeue deliveries: %w", err)
		}
		if r := byID[id]; r != nil {
			r.Status = status
			requeued = append(requeued, *r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("requeue deliveries: %w", err)
	}
	if p.Audit != nil && len(requeued) > 0 {
		if _, err := tx.ExecContext(ctx, insertAuditRow, auditArgs(p.Audit)...); err != nil {
			return res, fmt.Errorf("requeue deliveries: store the audit record: %w", err)
		}
		res.Audited = true
	}
	if err := tx.Commit(); err != nil {
		res.Audited = false
		return res, fmt.Errorf("requeue deliveries: %w", err)
	}
	res.Requeued = requeued
	return res, nil
}

// requeueCandidates reads the deliveries a Requeue may change, in
// (created_at, id) order, and returns the creation time of the last.
func (d *SQLiteDriver) requeueCandidates(ctx context.Context, p RequeueParams) ([]DeliveryRef, time.Time, error) {
	args := []any{p.AppID}
	q := `SELECT id, app_id, event_id, endpoint_id, event_type, created_at FROM deliveries WHERE app_id = ?`
	if len(p.DeliveryIDs) > 0 {
		q += ` AND id IN (` + placeholders(len(p.DeliveryIDs)) + `)`
		for _, id := range p.DeliveryIDs {
			args = append(args, id)
		}
	} else {
		after, afterID, err := splitPosition(p.After)
		if err != nil {
			return nil, time.Time{}, err
		}
		if after.Before(p.Since) {
			after, afterID = p.Since, ""
		}
		q += ` AND endpoint_id = ? AND created_at >= ? AND (created_at > ? OR id > ?)`
		args = append(args, p.EndpointID, after.UTC(), after.UTC(), afterID)
	}
	q += ` AND status IN (` + placeholders(len(p.Statuses)) + `) ORDER BY created_at, id`
	for _, s := range p.Statuses {
		args = append(args, s)
	}
	if p.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, p.Limit)
	}
	rows, err := d.w.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("find deliveries to requeue: %w", err)
	}
	defer rows.Close()
	var refs []DeliveryRef
	var last time.Time
	for rows.Next() {
		var r DeliveryRef
		if err := rows.Scan(&r.ID, &r.AppID, &r.EventID, &r.EndpointID, &r.EventType, &last); err != nil {
			return nil, time.Time{}, fmt.Errorf("find deliveries to requeue: %w", err)
		}
		refs = append(refs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("find deliveries to requeue: %w", err)
	}
	return refs, last, nil
}

// joinPosition and splitPosition encode a (creation time, ID) position of
// a page of deliveries as an opaque string.
func joinPosition(t time.Time, id string) string {
	return t.UTC().Format(time.RFC3339Nano) + " " + id
}

func splitPosition(pos string) (time.Time, string, error) {
	if pos == "" {
		return time.Time{}, "", nil
	}
	ts, id, ok := strings.Cut(pos, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil {
		return time.Time{}, "", fmt.Errorf("dispatch: bad page position %q", pos)
	}
	return t, id, nil
}

// Begin implements Driver. It prepares the writer's statements first: a
// transaction holds the only writer connection.
func (d *SQLiteDriver) Begin(ctx context.Context) (Tx, error) {
	if err := d.prepareWriter(ctx); err != nil {
		return nil, err
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &sqliteTx{d: d, tx: tx, ctx: ctx}, nil
}

// sqliteTx is a transaction of the SQLite driver. It also tracks the
// leases it changes, which take effect in the ledger only when it commits.
type sqliteTx struct {
	d   *SQLiteDriver
	tx  *sql.Tx
	ctx context.Context

	stmts map[*sql.Stmt]*sql.Stmt
	// held are hand-off rows held since the transaction began; ended are
	// leases that end when it commits.
	held  []DeliveryRow
	ended []Lease
	marks []txMark
	done  bool
}

type txMark struct {
	name         string
	held, ending int
}

func (t *sqliteTx) stmt(s *sql.Stmt) *sql.Stmt {
	if ts, ok := t.stmts[s]; ok {
		return ts
	}
	if t.stmts == nil {
		t.stmts = make(map[*sql.Stmt]*sql.Stmt, 8)
	}
	ts := t.tx.StmtContext(t.ctx, s)
	t.stmts[s] = ts
	return ts
}

func (t *sqliteTx) EndpointsVersion(ctx context.Context, appID string) (int64, error) {
	var v int64
	if err := t.stmt(t.d.endpointsVersion).QueryRowContext(ctx, appID).Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read the version of the app's endpoints: %w", err)
	}
	return v, nil
}

func (t *sqliteTx) Subscribers(ctx context.Context, appID string) ([]Subscriber, int64, error) {
	version, err := t.EndpointsVersion(ctx, appID)
	if err != nil {
		return nil, 0, err
	}
	rows, err := t.stmt(t.d.subscribers).QueryContext(ctx, appID)
	if err != nil {
		return nil, 0, fmt.Errorf("load subscribed endpoints: %w", err)
	}
	subs, err := scanSubscribers(rows)
	return subs, version, err
}

// Subscribers implements Driver with one read transaction of the read
// pool: the version and the list are of the same snapshot.
func (d *SQLiteDriver) Subscribers(ctx context.Context, appID string) ([]Subscriber, int64, error) {
	tx, err := d.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("load subscribed endpoints: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	var version int64
	if err := tx.QueryRowContext(ctx, sqliteEndpointsVersion, appID).Scan(&version); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("read the version of the app's endpoints: %w", err)
	}
	rows, err := tx.QueryContext(ctx, sqliteSubscribers, appID)
	if err != nil {
		return nil, 0, fmt.Errorf("load subscribed endpoints: %w", err)
	}
	subs, err := scanSubscribers(rows)
	return subs, version, err
}

// scanSubscribers reads the rows of sqliteSubscribers, and closes them.
func scanSubscribers(rows *sql.Rows) ([]Subscriber, error) {
	defer rows.Close()
	var subs []Subscriber
	for rows.Next() {
		var s Subscriber
		var types, filter []byte
		var limited bool
		if err := rows.Scan(&s.EndpointID, &types, &s.Ordering, &filter, &limited); err != nil {
			return nil, fmt.Errorf("load subscribed endpoints: %w", err)
		}
		if len(filter) > 0 && string(filter) != "null" {
			s.Filter = filter
		}
		s.Controlled = limited || (s.Ordering != "" && s.Ordering != "NONE")
		if err := json.Unmarshal(types, &s.Patterns); err != nil {
			return nil, fmt.Errorf("event types of endpoint %s: %w", s.EndpointID, err)
		}
		subs = append(subs, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load subscribed endpoints: %w", err)
	}
	return subs, nil
}

func (t *sqliteTx) InsertEvents(ctx context.Context, evs []*EventRow) ([]*EventRow, error) {
	existing := make([]*EventRow, len(evs))
	ins := t.stmt(t.d.insEvent)
	for i, ev := range evs {
		var key any
		if ev.IdempotencyKey != "" {
			key = ev.IdempotencyKey
		}
		res, err := ins.ExecContext(inline(ctx), ev.ID, ev.EventType, ev.Payload, key, stringOrNil(ev.OrderingKey), timeOrNil(ev.DeliverAt),
			ev.DeliveryCount, ev.CreatedAt.UTC(), ev.AppID, stringOrNil(ev.TraceParent))
		if err != nil {
			return nil, fmt.Errorf("store event: %w", err)
		}
		if key == nil {
			continue
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			if err != nil {
				return nil, fmt.Errorf("store event: %w", err)
			}
			continue
		}
		old := &EventRow{AppID: ev.AppID, IdempotencyKey: ev.IdempotencyKey}
		err = t.stmt(t.d.eventByKey).QueryRowContext(ctx, ev.AppID, ev.IdempotencyKey).
			Scan(&old.ID, &old.EventType, &old.Payload, &old.DeliveryCount, &old.CreatedAt)
		if err != nil {
			return nil, fmt.Errorf("read event of idempotency key: %w", err)
		}
		existing[i] = old
	}
	return existing, markRare(ctx, t.exec, sqliteParam, evs, existing, nil)
}

// exec runs a statement of one argument in the transaction.
func (t *sqliteTx) exec(ctx context.Context, q, arg string) error {
	_, err := t.tx.ExecContext(inline(ctx), q, arg)
	return err
}

func (t *sqliteTx) InsertDeliveries(ctx context.Context, rows []DeliveryRow, lease *Lease) error {
	rows, failed := splitFailed(rows)
	if len(failed) > 0 {
		ins := t.stmt(t.d.insFailed)
		for _, r := range failed {
			at := r.CreatedAt.UTC()
			if _, err := ins.ExecContext(inline(ctx), r.ID, at, at, r.EventType, r.Failed, at, r.AppID, r.EndpointID, r.EventID); err != nil {
				return fmt.Errorf("store failed delivery: %w", err)
			}
		}
	}
	if lease != nil {
		// Held before they are visible, so no claim can take them too.
		t.d.leases.hold(rows)
		t.held = append(t.held, rows...)
	}
	ins := t.stmt(t.d.insDelivery)
	for _, r := range rows {
		at := r.CreatedAt.UTC()
		var key any
		if r.OrderingKey != nil {
			key = *r.OrderingKey
		}
		if _, err := ins.ExecContext(inline(ctx), r.ID, at, at, r.EventType, r.due().UTC(), key, r.AppID, r.EndpointID, r.EventID); err != nil {
			return fmt.Errorf("store delivery: %w", err)
		}
	}
	return markRare(ctx, t.exec, sqliteParam, nil, nil, rows)
}

func (t *sqliteTx) EndpointStates(ctx context.Context, ids []string) (map[string]EndpointState, error) {
	out := make(map[string]EndpointState, len(ids))
	st := t.stmt(t.d.epState)
	for _, id := range ids {
		var s EndpointState
		err := st.QueryRowContext(ctx, id).Scan(&s.Active, &s.Deleted)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load state of endpoint %s: %w", id, err)
		}
		out[id] = s
	}
	return out, nil
}

func (t *sqliteTx) Finish(ctx context.Context, cs []Completion) ([]bool, error) {
	applied := make([]bool, len(cs))
	for i, c := range cs {
		if c.Attempt != nil {
			if err := insertAttempt(ctx, t.stmt(t.d.insAttempt), c.Attempt); err != nil {
				return nil, err
			}
		}
		t.ended = append(t.ended, c.Lease)
		if !t.d.leases.holds(c.Lease.EndpointID, c.Lease.DeliveryID) {
			continue // released meanwhile: the result is stale
		}
		u := c.Update
		res, err := t.stmt(t.d.finish).ExecContext(inline(ctx), u.Status, u.AttemptCount, timeOrNil(u.NextAttemptAt), timeOrNil(u.LastAttemptAt),
			intOrNil(u.LastResponseStatus), stringOrNil(u.LastError), timeOrNil(u.CompletedAt), u.UpdatedAt.UTC(), c.Lease.DeliveryID)
		if err != nil {
			return nil, fmt.Errorf("update delivery %s: %w", c.Lease.DeliveryID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("update delivery %s: %w", c.Lease.DeliveryID, err)
		}
		applied[i] = n == 1
	}
	return applied, nil
}

// insertAttempt runs a prepared attempt insert.
func insertAttempt(ctx context.Context, ins *sql.Stmt, a *AttemptRow) error {
	_, err := ins.ExecContext(inline(ctx), a.ID, a.AppID, a.DeliveryID, a.EndpointID, a.Number, a.Trigger,
		a.Succeeded, a.RequestURL, a.RequestHeaders, intOrNil(a.ResponseStatus), a.ResponseHeaders, a.ResponseBody,
		a.Truncated, a.DurationMs, stringOrNil(a.Error), a.StartedAt.UTC(), a.CompletedAt.UTC())
	if err != nil {
		return fmt.Errorf("insert attempt of delivery %s: %w", a.DeliveryID, err)
	}
	return nil
}

func (t *sqliteTx) AddCounters(ctx context.Context, c CounterDelta) (int, error) {
	var consec int
	err := t.stmt(t.d.addCounters).QueryRowContext(ctx, c.Successes, c.Failures, timeOrNil(c.LastSuccess), timeOrNil(c.LastFailure),
		c.Reset, c.Consecutive, c.Consecutive, c.EndpointID).Scan(&consec)
	if err != nil {
		return 0, fmt.Errorf("update counters of endpoint %s: %w", c.EndpointID, err)
	}
	return consec, nil
}

func (t *sqliteTx) DisableEndpoint(ctx context.Context, id, reason string, now time.Time) (*DisabledEndpoint, error) {
	ep := &DisabledEndpoint{ID: id}
	err := t.stmt(t.d.disable).QueryRowContext(ctx, reason, now.UTC(), now.UTC(), id).Scan(&ep.AppID, &ep.URL)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("disable endpoint %s: %w", id, err)
	}
	if _, err := t.stmt(t.d.bumpEndpoints).ExecContext(inline(ctx), ep.AppID); err != nil {
		return nil, fmt.Errorf("disable endpoint %s: %w", id, err)
	}
	return ep, nil
}

func (t *sqliteTx) PauseEndpoint(ctx context.Context, id string, until time.Time) error {
	u := until.UTC()
	if _, err := t.stmt(t.d.pause).ExecContext(inline(ctx), u, id, u); err != nil {
		return fmt.Errorf("pause endpoint %s: %w", id, err)
	}
	return nil
}

func (t *sqliteTx) Savepoint(ctx context.Context, name string) error {
	if _, err := t.tx.ExecContext(inline(ctx), "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	t.marks = append(t.marks, txMark{name: name, held: len(t.held), ending: len(t.ended)})
	return nil
}

func (t *sqliteTx) RollbackTo(ctx context.Context, name string) error {
	if _, err := t.tx.ExecContext(inline(ctx), "ROLLBACK TO "+name); err != nil {
		return fmt.Errorf("roll back to savepoint: %w", err)
	}
	for i := len(t.marks) - 1; i >= 0; i-- {
		if m := t.marks[i]; m.name == name {
			t.d.leases.releaseRows(t.held[m.held:])
			t.held, t.ended = t.held[:m.held], t.ended[:m.ending]
			break
		}
	}
	return nil
}

func (t *sqliteTx) ReleaseSavepoint(ctx context.Context, name string) error {
	if _, err := t.tx.ExecContext(inline(ctx), "RELEASE "+name); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	for i := len(t.marks) - 1; i >= 0; i-- {
		if t.marks[i].name == name {
			t.marks = t.marks[:i]
			break
		}
	}
	return nil
}

func (t *sqliteTx) Commit() error {
	if err := t.tx.Commit(); err != nil {
		t.abandon()
		return fmt.Errorf("commit: %w", err)
	}
	t.done = true
	t.d.leases.release(t.ended)
	return nil
}

func (t *sqliteTx) Rollback() error {
	if t.done {
		return nil
	}
	t.abandon()
	err := t.tx.Rollback()
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// abandon undoes the transaction's lease changes: hand-offs are no longer
// held, and leases it would have ended are still held.
func (t *sqliteTx) abandon() {
	if !t.done {
		t.done = true
		t.d.leases.releaseRows(t.held)
	}
}

func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

func intOrNil(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

func stringOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// placeholders returns "?,?,…" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

// inline returns ctx without its cancellation, for statements on SQLite.
// go-sqlite3 runs every statement whose context can be cancelled on a
// goroutine of its own, to interrupt it on cancellation: a goroutine, a
// channel and two switches per insert or update, which the engine's
// writes cannot afford. None of them needs it: they are short, the
// writer is this process's alone, and a lock wait is bounded by the busy
// timeout.
func inline(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// InsertParts implements partTx.
func (t *sqliteTx) InsertParts(ctx context.Context, parts []StoredPart) error {
	for _, p := range parts {
		if _, err := t.tx.ExecContext(inline(ctx), `INSERT INTO fanouts (id, app_id, deliveries, created_at) VALUES (?, ?, ?, ?)`,
			p.ID, p.AppID, p.Deliveries, p.CreatedAt.UTC()); err != nil {
			return fmt.Errorf("store fan-out part: %w", err)
		}
	}
	return nil
}

// DeletePart implements partTx.
func (t *sqliteTx) DeletePart(ctx context.Context, id string) error {
	if _, err := t.tx.ExecContext(inline(ctx), `DELETE FROM fanouts WHERE id = ?`, id); err != nil {
		return fmt.Errorf("remove fan-out part: %w", err)
	}
	return nil
}

// Parts implements partStore.
func (d *SQLiteDriver) Parts(ctx context.Context) ([]StoredPart, error) {
	rows, err := d.w.QueryContext(ctx, `SELECT id, app_id, deliveries, created_at FROM fanouts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read fan-out parts: %w", err)
	}
	defer rows.Close()
	var out []StoredPart
	for rows.Next() {
		var p StoredPart
		if err := rows.Scan(&p.ID, &p.AppID, &p.Deliveries, &p.CreatedAt); err != nil {
			return nil, fmt.Errorf("read fan-out parts: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read fan-out parts: %w", err)
	}
	return out, nil
}
