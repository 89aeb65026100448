package dispatch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald/stats"
)

// Backlog implements Driver. One read of the due index, grouped by
// endpoint, counts the due deliveries; held ones (the leases are in
// memory) are subtracted, and for an endpoint with held deliveries a
// short indexed read past them finds its oldest unheld one.
func (d *SQLiteDriver) Backlog(ctx context.Context, now time.Time) (Backlog, error) {
	now = now.UTC()
	rows, err := d.r.QueryContext(ctx, `SELECT endpoint_id, COUNT(*), MIN(next_attempt_at) FROM deliveries
WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ? GROUP BY endpoint_id`, now)
	if err != nil {
		return Backlog{}, fmt.Errorf("count due deliveries: %w", err)
	}
	type due struct {
		endpoint string
		n        int
		oldest   time.Time
	}
	var all []due
	for rows.Next() {
		var x due
		var oldest sqliteTime
		if err := rows.Scan(&x.endpoint, &x.n, &oldest); err != nil {
			rows.Close()
			return Backlog{}, fmt.Errorf("count due deliveries: %w", err)
		}
		x.oldest = oldest.Time
		all = append(all, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Backlog{}, fmt.Errorf("count due deliveries: %w", err)
	}
	var b Backlog
	for _, x := range all {
		held := d.leases.heldCount(x.endpoint)
		if held >= x.n {
			continue
		}
		if held > 0 {
			if x.oldest, err = d.oldestUnheld(ctx, x.endpoint, now, held); err != nil {
				return Backlog{}, err
			}
			if x.oldest.IsZero() {
				continue
			}
		}
		b.Due += x.n - held
		if b.Oldest.IsZero() || x.oldest.Before(b.Oldest) {
			b.Oldest = x.oldest
		}
	}
	return b, nil
}

// oldestUnheld returns the due time of an endpoint's oldest due delivery
// that is not held, reading at most held+1 entries of the due index.
func (d *SQLiteDriver) oldestUnheld(ctx context.Context, endpointID string, now time.Time, held int) (time.Time, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id, next_attempt_at FROM deliveries
WHERE endpoint_id = ? AND next_attempt_at IS NOT NULL AND next_attempt_at <= ? ORDER BY next_attempt_at, rowid LIMIT ?`,
		endpointID, now, held+1)
	if err != nil {
		return time.Time{}, fmt.Errorf("find oldest due delivery of endpoint %s: %w", endpointID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return time.Time{}, fmt.Errorf("find oldest due delivery of endpoint %s: %w", endpointID, err)
		}
		if !d.leases.holds(endpointID, id) {
			return at, nil
		}
	}
	return time.Time{}, rows.Err()
}

// sqliteTime scans a time that SQLite returns from an aggregate (MIN),
// which loses the column's declared type: the driver then hands back the
// stored text.
type sqliteTime struct{ time.Time }

// sqliteTimeFormats are the layouts go-sqlite3 writes times in.
var sqliteTimeFormats = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05",
}

func (t *sqliteTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		t.Time = time.Time{}
		return nil
	case time.Time:
		t.Time = v
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("scan time: unexpected %T", v)
}

func (t *sqliteTime) parse(s string) error {
	s = strings.TrimSuffix(s, "Z")
	for _, f := range sqliteTimeFormats {
		if x, err := time.ParseInLocation(f, s, time.UTC); err == nil {
			t.Time = x.UTC()
			return nil
		}
	}
	return fmt.Errorf("scan time: unrecognised %q", s)
}

// statsColumns are the counted columns of delivery_stats, in StatsRow
// order: the counts, the duration sum and the histogram bins.
var statsColumns = func() []string {
	cols := []string{"attempts_succeeded", "attempts_retryable", "attempts_permanent",
		"deliveries_succeeded", "deliveries_failed", "duration_ms"}
	for i := range stats.LatencyBins {
		cols = append(cols, fmt.Sprintf("latency_%02d", i))
	}
	return cols
}()

// upsertStatsSQL adds one row to its bucket, creating the bucket if
// missing. It is portable: SQLite and PostgreSQL share the ON CONFLICT
// syntax (PostgreSQL wants $n markers, see retention's bind).
var upsertStatsSQL = func() string {
	var b strings.Builder
	b.WriteString("INSERT INTO delivery_stats (app_id, endpoint_id, resolution, bucket, ")
	b.WriteString(strings.Join(statsColumns, ", "))
	b.WriteString(") VALUES (?, ?, ?, ?")
	b.WriteString(strings.Repeat(", ?", len(statsColumns)))
	b.WriteString(") ON CONFLICT (app_id, endpoint_id, resolution, bucket) DO UPDATE SET ")
	for i, c := range statsColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = delivery_stats.%s + excluded.%s", c, c, c)
	}
	return b.String()
}()

// statsArgs returns the arguments of upsertStatsSQL for a row.
func statsArgs(r *StatsRow, args []any) []any {
	args = append(args[:0], r.AppID, r.EndpointID, int(r.Resolution/time.Second), r.Bucket.Unix(),
		r.AttemptsSucceeded, r.AttemptsRetryable, r.AttemptsPermanent, r.DeliveriesSucceeded, r.DeliveriesFailed, r.DurationMs)
	for _, n := range r.Latency {
		args = append(args, n)
	}
	return args
}

func (t *sqliteTx) AddStats(ctx context.Context, rows []StatsRow) error {
	if len(rows) == 0 {
		return nil
	}
	st := t.stmt(t.d.upsertStats)
	args := make([]any, 0, 4+len(statsColumns))
	for i := range rows {
		args = statsArgs(&rows[i], args)
		if _, err := st.ExecContext(inline(ctx), args...); err != nil {
			return fmt.Errorf("add delivery statistics of endpoint %q: %w", rows[i].EndpointID, err)
		}
	}
	return nil
}
