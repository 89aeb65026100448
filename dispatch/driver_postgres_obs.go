package dispatch

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backlog implements Driver with one read of the due index: leased
// deliveries are not due (their next_attempt_at is their lease expiry)
// until their lease expires.
func (d *PostgresDriver) Backlog(ctx context.Context, now time.Time) (Backlog, error) {
	var b Backlog
	var oldest *time.Time
	err := d.pool.QueryRow(ctx, `SELECT count(*), min(next_attempt_at) FROM deliveries
WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1`, now.UTC()).Scan(&b.Due, &oldest)
	if err != nil {
		return Backlog{}, fmt.Errorf("count due deliveries: %w", err)
	}
	if oldest != nil {
		b.Oldest = oldest.UTC()
	}
	return b, nil
}

// upsertStatsPostgres is upsertStatsSQL with PostgreSQL's $n markers.
var upsertStatsPostgres = func() string {
	var b strings.Builder
	n := 0
	for _, c := range upsertStatsSQL {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}()

// AddStats implements Tx: one upsert per row, sent in one round trip.
// Concurrent transactions of several replicas add up (ON CONFLICT …
// DO UPDATE adds to the row it finds).
func (t *postgresTx) AddStats(ctx context.Context, rows []StatsRow) error {
	if len(rows) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for i := range rows {
		b.Queue(upsertStatsPostgres, statsArgs(&rows[i], make([]any, 0, 4+len(statsColumns)))...)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("add delivery statistics: %w", err)
	}
	return nil
}
