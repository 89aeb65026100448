// Package retention deletes what Herald no longer has to keep: events older
// than the retention period whose deliveries have all finished (SUCCEEDED
// or FAILED), together with those deliveries and their attempts,
// endpoints deleted longer ago than the period once nothing refers to them,
// the delivery statistics' roll-ups older than the period (the
// per-minute ones after stats.MinuteHistory already), and the audit log's
// records older than the period, like attempts.
//
// An event with a delivery still queued, retrying or being sent is never
// deleted, however old: nothing accepted is lost to retention. Deleted rows
// free pages that SQLite reuses, so a database under steady load stops
// growing once it holds one retention period of history.
//
// The SQL is plain and portable (SQLite and PostgreSQL), and every batch is
// one short transaction on the writer connection, so pruning never holds up
// deliveries for long. With several replicas on one PostgreSQL database, a
// Locker (an advisory lock) lets one of them prune at a time; the others
// skip the round.
package retention

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald/stats"
)

// Dialects of Config.Dialect (ent's names).
const (
	SQLite   = "sqlite3"
	Postgres = "postgres"
)

// Locker keeps several pruners of one database from pruning at once.
// *db.Mutex implements it.
type Locker interface {
	// TryLock takes the lock if nobody holds it and returns the function
	// that releases it; ok is false, with a nil error, when somebody does.
	TryLock(ctx context.Context) (unlock func(), ok bool, err error)
}

// Config configures a Pruner.
type Config struct {
	// DB is the writer connection.
	DB *sql.DB
	// Dialect is the database's SQL dialect: SQLite (default) or Postgres.
	Dialect string
	// Lock, if set, is taken for every round of the background pruner; a
	// round is skipped when another pruner holds it. Set it when several
	// replicas share the database.
	Lock Locker
	// Period is how long history is kept. It must be positive.
	Period time.Duration
	// Interval is how often the pruner runs (default Period/10, between
	// 100ms and 10m).
	Interval time.Duration
	// BatchSize is how many events one transaction deletes at most
	// (default 200).
	BatchSize int
	// Logger receives the pruner's logs (default slog.Default()).
	Logger *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Counts says how many rows one pruning deleted.
type Counts struct {
	Events, Deliveries, Attempts, Endpoints int64
	// Stats counts the statistics roll-up rows deleted.
	Stats int64
	// PortalSessions counts the expired portal sessions deleted.
	PortalSessions int64
	// AuditRecords counts the audit log's records deleted.
	AuditRecords int64
}

func (c *Counts) add(o Counts) {
	c.PortalSessions += o.PortalSessions
	c.AuditRecords += o.AuditRecords
	c.Events += o.Events
	c.Deliveries += o.Deliveries
	c.Attempts += o.Attempts
	c.Endpoints += o.Endpoints
	c.Stats += o.Stats
}

// Pruner deletes expired history in the background. Create it with New,
// run it with Start and stop it with Close.
type Pruner struct {
	cfg     Config
	log     *slog.Logger
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	stopped chan struct{}
	start   sync.Once
	close   sync.Once
}

// New returns a Pruner.
func New(cfg Config) (*Pruner, error) {
	if cfg.DB == nil {
		return nil, errors.New("retention: Config.DB is required")
	}
	if cfg.Period <= 0 {
		return nil, fmt.Errorf("retention: period must be positive, got %s", cfg.Period)
	}
	switch cfg.Dialect {
	case "":
		cfg.Dialect = SQLite
	case SQLite, Postgres:
	default:
		return nil, fmt.Errorf("retention: unknown dialect %q", cfg.Dialect)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = min(max(cfg.Period/10, 100*time.Millisecond), 10*time.Minute)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pruner{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "retention"),
		ctx:     ctx,
		cancel:  cancel,
		stopped: make(chan struct{}),
	}, nil
}

// Start prunes once every interval until Close.
func (p *Pruner) Start() {
	p.start.Do(func() {
		go p.run()
	})
}

// Close stops the pruner, interrupting a pruning in progress (its current
// batch is rolled back; the next start prunes it), and waits for it.
func (p *Pruner) Close() {
	p.close.Do(func() {
		p.cancel()
		p.start.Do(func() { close(p.stopped) }) // never started
		<-p.stopped
	})
}

func (p *Pruner) run() {
	defer close(p.stopped)
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	ctx := p.ctx
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _, _ = p.Round(ctx)
	}
}

// Round prunes once as the background pruner does: under Config.Lock if
// set, history older than Config.Period. ran is false when another pruner
// held the lock, and nothing was deleted. Errors are also logged.
func (p *Pruner) Round(ctx context.Context) (n Counts, ran bool, err error) {
	if p.cfg.Lock != nil {
		unlock, ok, err := p.cfg.Lock.TryLock(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("prune history: take the lock", "err", err)
			}
			return n, false, fmt.Errorf("retention: lock: %w", err)
		}
		if !ok {
			p.log.Debug("another replica is pruning history: skipping this round")
			return n, false, nil
		}
		defer unlock()
	}
	before := p.cfg.Now().UTC().Add(-p.cfg.Period)
	n, err = p.Prune(ctx, before)
	switch {
	case err != nil && ctx.Err() == nil:
		p.log.Error("prune history", "before", before, "err", err)
	case n.Events > 0 || n.Endpoints > 0 || n.Stats > 0 || n.PortalSessions > 0 || n.AuditRecords > 0:
		p.log.Info("pruned history", "before", before, "events", n.Events,
			"deliveries", n.Deliveries, "attempts", n.Attempts, "endpoints", n.Endpoints, "stats_rows", n.Stats,
			"portal_sessions", n.PortalSessions, "audit_records", n.AuditRecords)
	}
	return n, true, err
}

// Prune deletes, in every app, the events created before the given time
// whose deliveries have all finished, with their deliveries and attempts,
// and the endpoints deleted before it that no delivery refers to any more.
// It works in batches of one transaction each and returns what it deleted,
// also when it stops early with an error.
func (p *Pruner) Prune(ctx context.Context, before time.Time) (Counts, error) {
	before = before.UTC()
	var total Counts
	apps, err := p.apps(ctx)
	if err != nil {
		return total, err
	}
	for _, app := range apps {
		var cur cursor
		for {
			n, next, more, err := p.pruneEvents(ctx, app, before, cur)
			total.add(n)
			if err != nil {
				return total, fmt.Errorf("prune events of app %s: %w", app, err)
			}
			if !more {
				break
			}
			cur = next
		}
		n, err := p.pruneEndpoints(ctx, app, before)
		total.Endpoints += n
		if err != nil {
			return total, fmt.Errorf("prune endpoints of app %s: %w", app, err)
		}
		n, err = p.deleteInBatches(ctx, `DELETE FROM audit_records WHERE id IN (
SELECT id FROM audit_records WHERE app_id = ? AND created_at < ? LIMIT ?)`, app, before)
		total.AuditRecords += n
		if err != nil {
			return total, fmt.Errorf("prune the audit log of app %s: %w", app, err)
		}
	}
	minuteBefore := before
	if t := p.cfg.Now().UTC().Add(-stats.MinuteHistory); t.After(minuteBefore) {
		minuteBefore = t
	}
	for _, r := range []struct {
		resolution int
		before     time.Time
	}{{60, minuteBefore}, {3600, before}} {
		n, err := p.pruneStats(ctx, r.resolution, r.before)
		total.Stats += n
		if err != nil {
			return total, fmt.Errorf("prune delivery statistics: %w", err)
		}
	}
	n, err := p.pruneSessions(ctx, before)
	total.PortalSessions += n
	if err != nil {
		return total, fmt.Errorf("prune portal sessions: %w", err)
	}
	return total, nil
}

// pruneSessions deletes the portal sessions that expired before a time (a
// revoked one expires too, at most 7 days after it was created), in
// batches of one statement each, through the index on kind and expiry.
// Every visit to a portal creates one, so they would otherwise pile up.
func (p *Pruner) pruneSessions(ctx context.Context, before time.Time) (int64, error) {
	return p.deleteInBatches(ctx, `DELETE FROM api_keys WHERE id IN (
SELECT id FROM api_keys WHERE kind = 'PORTAL_SESSION' AND expires_at < ? LIMIT ?)`, before)
}

// pruneStats deletes the roll-ups of one resolution whose bucket starts
// before a time, in batches of one statement each (through the index on
// resolution and bucket).
func (p *Pruner) pruneStats(ctx context.Context, resolution int, before time.Time) (int64, error) {
	return p.deleteInBatches(ctx, `DELETE FROM delivery_stats WHERE id IN (
SELECT id FROM delivery_stats WHERE resolution = ? AND bucket < ? LIMIT ?)`, resolution, before.Unix())
}

// deleteInBatches runs a DELETE of at most statsBatch rows, whose last
// parameter is that limit, until one deletes fewer, and returns how many
// rows went.
func (p *Pruner) deleteInBatches(ctx context.Context, query string, args ...any) (int64, error) {
	query = p.bind(query)
	args = append(args, statsBatch)
	var total int64
	for {
		res, err := p.cfg.DB.ExecContext(ctx, query, args...)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < statsBatch {
			return total, nil
		}
	}
}

// statsBatch is how many roll-up rows or sessions one statement deletes.
const statsBatch = 2000

func (p *Pruner) apps(ctx context.Context) ([]string, error) {
	rows, err := p.cfg.DB.QueryContext(ctx, "SELECT id FROM apps")
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return ids, nil
}

// cursor is where the next batch of an app's events starts: after this
// creation time and ID. Events kept because a delivery is unfinished are
// not read again.
type cursor struct {
	created time.Time
	id      string
}

// pruneEvents deletes one batch of an app's expired events, starting after
// cur, in one transaction. more says whether the app may have further
// expired events.
func (p *Pruner) pruneEvents(ctx context.Context, app string, before time.Time, cur cursor) (n Counts, next cursor, more bool, err error) {
	tx, err := p.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return n, cur, false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit

	rows, err := tx.QueryContext(ctx, p.bind(`SELECT id, created_at FROM events
WHERE app_id = ? AND created_at < ? AND (created_at > ? OR (created_at = ? AND id > ?))
ORDER BY created_at, id LIMIT ?`), app, before, cur.created, cur.created, cur.id, p.cfg.BatchSize)
	if err != nil {
		return n, cur, false, fmt.Errorf("find expired events: %w", err)
	}
	var expired []any
	next = cur
	for rows.Next() {
		if err := rows.Scan(&next.id, &next.created); err != nil {
			rows.Close()
			return n, cur, false, fmt.Errorf("find expired events: %w", err)
		}
		expired = append(expired, next.id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return n, cur, false, fmt.Errorf("find expired events: %w", err)
	}
	if len(expired) == 0 {
		return n, cur, false, nil
	}
	more = len(expired) == p.cfg.BatchSize

	// Keep the events that still have a delivery to make.
	rows, err = tx.QueryContext(ctx, p.bind(`SELECT DISTINCT event_id FROM deliveries
WHERE event_id IN (`+placeholders(len(expired))+`) AND status NOT IN ('SUCCEEDED', 'FAILED')`), expired...)
	if err != nil {
		return n, cur, false, fmt.Errorf("find unfinished deliveries: %w", err)
	}
	keep := make(map[string]bool)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return n, cur, false, fmt.Errorf("find unfinished deliveries: %w", err)
		}
		keep[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return n, cur, false, fmt.Errorf("find unfinished deliveries: %w", err)
	}
	ids := expired[:0:0]
	for _, id := range expired {
		if !keep[id.(string)] {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return n, next, more, nil
	}

	in := placeholders(len(ids))
	steps := []struct {
		count *int64
		query string
	}{
		{&n.Attempts, `DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id IN (` + in + `))`},
		{&n.Deliveries, `DELETE FROM deliveries WHERE event_id IN (` + in + `)`},
		{&n.Events, `DELETE FROM events WHERE id IN (` + in + `)`},
	}
	for _, s := range steps {
		res, err := tx.ExecContext(ctx, p.bind(s.query), ids...)
		if err != nil {
			return Counts{}, cur, false, fmt.Errorf("delete expired history: %w", err)
		}
		if *s.count, err = res.RowsAffected(); err != nil {
			return Counts{}, cur, false, fmt.Errorf("delete expired history: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Counts{}, cur, false, fmt.Errorf("commit: %w", err)
	}
	return n, next, more, nil
}

// deleteExpiredEndpoints deletes an app's endpoints deleted before a time
// that no delivery refers to any more. For each one, SQLite's foreign key
// checks look for deliveries and attempts that still refer to it, through
// the indexes on their endpoint_id.
const deleteExpiredEndpoints = `DELETE FROM endpoints
WHERE app_id = ? AND deleted_at IS NOT NULL AND deleted_at < ?
AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.endpoint_id = endpoints.id)`

// pruneEndpoints deletes an app's endpoints deleted before the given time
// that no delivery refers to any more (attempts always belong to a
// delivery of the same endpoint), and with them their secrets.
func (p *Pruner) pruneEndpoints(ctx context.Context, app string, before time.Time) (int64, error) {
	res, err := p.cfg.DB.ExecContext(ctx, p.bind(deleteExpiredEndpoints), app, before)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// bind rewrites the ? parameter markers of query for the dialect: $1, $2, …
// on PostgreSQL. The queries here have no ? inside literals.
func (p *Pruner) bind(query string) string {
	if p.cfg.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + len(query)/2)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// placeholders returns n comma-separated parameter markers.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
