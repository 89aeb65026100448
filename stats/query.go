package stats

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/fault"
)

// Limits of a query.
const (
	// MinuteHistory is how long the per-minute roll-ups are kept; a
	// bucket shorter than an hour needs them, so its window may be at
	// most this long.
	MinuteHistory = 48 * time.Hour
	// MaxWindow is the longest window (history is also bounded by
	// retention).
	MaxWindow = 366 * 24 * time.Hour
	// MaxBuckets is the most buckets one query returns.
	MaxBuckets = 1500
)

// Dialects of Store.Dialect (ent's names).
const (
	SQLite   = "sqlite3"
	Postgres = "postgres"
)

// Store reads the roll-ups.
type Store struct {
	// DB is where reads go (SQLite's read pool).
	DB *sql.DB
	// Dialect is SQLite (default) or Postgres.
	Dialect string
}

// Query selects statistics: of one endpoint, or of an app (EndpointID
// ""), over the Window that ends at Now, in buckets of Bucket.
type Query struct {
	AppID      string
	EndpointID string
	Window     time.Duration
	Bucket     time.Duration
	Now        time.Time
}

// Check validates a window and a bucket size, naming the offending
// argument (windowField, bucketField) in BAD_USER_INPUT faults.
func Check(window, bucket time.Duration, windowField, bucketField string) error {
	switch {
	case bucket < time.Minute || bucket%time.Minute != 0:
		return fault.Invalid(bucketField, "must be a whole number of minutes, at least 1m, got %s", bucket)
	case bucket > time.Hour && bucket%time.Hour != 0:
		return fault.Invalid(bucketField, "must be a whole number of hours when longer than 1h, got %s", bucket)
	case window <= 0:
		return fault.Invalid(windowField, "must be positive, got %s", window)
	case window > MaxWindow:
		return fault.Invalid(windowField, "must be at most %s, got %s", MaxWindow, window)
	case window < bucket:
		return fault.Invalid(windowField, "must be at least one bucket (%s), got %s", bucket, window)
	case bucket < time.Hour && window > MinuteHistory:
		return fault.Invalid(bucketField, "per-minute statistics are kept for %s: use a bucket of 1h or more for a window of %s", MinuteHistory, window)
	case (window+bucket-1)/bucket > MaxBuckets:
		return fault.Invalid(bucketField, "%s over %s makes %d buckets; the limit is %d: use a larger bucket", bucket, window, (window+bucket-1)/bucket, MaxBuckets)
	}
	return nil
}

// Counts are the attempts and finished deliveries of a bucket or window.
type Counts struct {
	AttemptsSucceeded   int64
	AttemptsRetryable   int64
	AttemptsPermanent   int64
	DeliveriesSucceeded int64
	DeliveriesFailed    int64
	// DurationMs is the attempts' total duration in milliseconds.
	DurationMs int64
	// Latency is the attempts' duration histogram (see LatencyBin).
	Latency [LatencyBins]int64
}

// Attempts returns the number of attempts.
func (c *Counts) Attempts() int64 {
	return c.AttemptsSucceeded + c.AttemptsRetryable + c.AttemptsPermanent
}

// Deliveries returns the number of finished deliveries.
func (c *Counts) Deliveries() int64 { return c.DeliveriesSucceeded + c.DeliveriesFailed }

// AttemptSuccessRate returns the share of attempts that succeeded, and
// false if there were none.
func (c *Counts) AttemptSuccessRate() (float64, bool) {
	n := c.Attempts()
	if n == 0 {
		return 0, false
	}
	return float64(c.AttemptsSucceeded) / float64(n), true
}

// DeliverySuccessRate returns the share of finished deliveries that
// succeeded, and false if none finished.
func (c *Counts) DeliverySuccessRate() (float64, bool) {
	n := c.Deliveries()
	if n == 0 {
		return 0, false
	}
	return float64(c.DeliveriesSucceeded) / float64(n), true
}

// Percentile returns the q-quantile of the attempts' durations (0 without
// attempts).
func (c *Counts) Percentile(q float64) time.Duration { return Percentile(&c.Latency, q) }

// Mean returns the attempts' mean duration (0 without attempts).
func (c *Counts) Mean() time.Duration {
	n := c.Attempts()
	if n == 0 {
		return 0
	}
	return time.Duration(float64(c.DurationMs) / float64(n) * float64(time.Millisecond))
}

func (c *Counts) add(o *Counts) {
	c.AttemptsSucceeded += o.AttemptsSucceeded
	c.AttemptsRetryable += o.AttemptsRetryable
	c.AttemptsPermanent += o.AttemptsPermanent
	c.DeliveriesSucceeded += o.DeliveriesSucceeded
	c.DeliveriesFailed += o.DeliveriesFailed
	c.DurationMs += o.DurationMs
	for i, n := range o.Latency {
		c.Latency[i] += n
	}
}

// Bucket is one point of the time series.
type Bucket struct {
	Start time.Time
	Counts
}

// Result is the answer to a Query.
type Result struct {
	// From is the start of the first bucket, To the end of the last one
	// (the current bucket, still filling, is the last).
	From, To time.Time
	Bucket   time.Duration
	Total    Counts
	Buckets  []Bucket
}

// Read answers a query from the roll-ups: the minute roll-ups for buckets
// shorter than an hour, the hour roll-ups otherwise. Buckets are aligned
// to multiples of their size since the Unix epoch (UTC), and the last
// one holds Now.
func (s *Store) Read(ctx context.Context, q Query) (*Result, error) {
	if err := Check(q.Window, q.Bucket, "window", "bucket"); err != nil {
		return nil, err
	}
	bucketSec := int64(q.Bucket / time.Second)
	res := int64(60)
	if q.Bucket >= time.Hour {
		res = 3600
	}
	n := int64((q.Window + q.Bucket - 1) / q.Bucket)
	to := (q.Now.Unix()/bucketSec + 1) * bucketSec
	from := to - n*bucketSec
	r := &Result{From: time.Unix(from, 0).UTC(), To: time.Unix(to, 0).UTC(), Bucket: q.Bucket, Buckets: make([]Bucket, n)}
	for i := range r.Buckets {
		r.Buckets[i].Start = time.Unix(from+int64(i)*bucketSec, 0).UTC()
	}
	rows, err := s.DB.QueryContext(ctx, s.bind(selectStats), q.AppID, q.EndpointID, res, from, to)
	if err != nil {
		return nil, fmt.Errorf("read delivery statistics: %w", err)
	}
	defer rows.Close()
	var c Counts
	dest := make([]any, 0, 7+LatencyBins)
	var at int64
	dest = append(dest, &at, &c.AttemptsSucceeded, &c.AttemptsRetryable, &c.AttemptsPermanent,
		&c.DeliveriesSucceeded, &c.DeliveriesFailed, &c.DurationMs)
	for i := range c.Latency {
		dest = append(dest, &c.Latency[i])
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read delivery statistics: %w", err)
		}
		i := (at - from) / bucketSec
		if i < 0 || i >= n {
			continue
		}
		r.Buckets[i].add(&c)
		r.Total.add(&c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read delivery statistics: %w", err)
	}
	return r, nil
}

// selectStats reads the roll-ups of one app or endpoint at one resolution
// through the unique index (app_id, endpoint_id, resolution, bucket).
var selectStats = func() string {
	cols := []string{"bucket", "attempts_succeeded", "attempts_retryable", "attempts_permanent",
		"deliveries_succeeded", "deliveries_failed", "duration_ms"}
	for i := range LatencyBins {
		cols = append(cols, fmt.Sprintf("latency_%02d", i))
	}
	return "SELECT " + strings.Join(cols, ", ") + ` FROM delivery_stats
WHERE app_id = ? AND endpoint_id = ? AND resolution = ? AND bucket >= ? AND bucket < ?`
}()

// bind rewrites ? markers as $1, $2, … for PostgreSQL.
func (s *Store) bind(q string) string {
	if s.Dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
