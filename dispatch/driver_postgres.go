package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhq/herald/audit"
)

// PostgresDriver is the Driver of a PostgreSQL database shared by several
// Herald replicas. Its leases live in the rows: a claim takes due
// deliveries with FOR UPDATE SKIP LOCKED and writes the claim's token into
// claimed_by and the lease expiry into next_attempt_at, so a delivery
// leased by a replica that dies comes due again when its lease expires.
// Results are fenced: a result is applied only while claimed_by still
// holds the token of the claim that produced it. Batches are set-based
// (unnest of arrays), one round trip per statement whatever their size.
// Create it with NewPostgresDriver.
type PostgresDriver struct {
	pool   *pgxpool.Pool
	claims atomic.Int64 // numbers claims, for their tokens
}

// NewPostgresDriver returns a driver over a pgx pool.
func NewPostgresDriver(pool *pgxpool.Pool) *PostgresDriver {
	return &PostgresDriver{pool: pool}
}

var _ Driver = (*PostgresDriver)(nil)

// Close implements Driver; the pool belongs to the caller.
func (d *PostgresDriver) Close() error { return nil }

// Due implements Driver: one probe of the due index per endpoint, for
// the endpoint's earliest unfinished delivery. (An EXISTS with the
// condition on next_attempt_at was planned on the (endpoint_id,
// created_at) index and read every delivery the endpoint ever had.)
// Leased deliveries are not due: their next_attempt_at is their lease
// expiry.
func (d *PostgresDriver) Due(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := d.pool.Query(ctx, dueProbe, now.UTC())
	if err != nil {
		return nil, fmt.Errorf("find due endpoints: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find due endpoints: %w", err)
	}
	return ids, nil
}

// dueProbe finds the endpoints with deliveries due at $1 by skipping from
// endpoint to endpoint along the due index, which holds only unfinished
// deliveries: it visits the endpoints that have some, never the idle or
// deleted ones, however many there are, and reads one entry of each
// (its earliest due) besides the skip. The same statement serves SQLite
// (with ? for $1).
const dueProbe = `WITH RECURSIVE walk(id) AS (
  SELECT (SELECT endpoint_id FROM deliveries WHERE next_attempt_at IS NOT NULL ORDER BY endpoint_id LIMIT 1)
  UNION ALL
  SELECT (SELECT endpoint_id FROM deliveries WHERE endpoint_id > walk.id AND next_attempt_at IS NOT NULL ORDER BY endpoint_id LIMIT 1)
  FROM walk WHERE walk.id IS NOT NULL)
SELECT walk.id FROM walk WHERE walk.id IS NOT NULL AND (
  SELECT d.next_attempt_at FROM deliveries d WHERE d.endpoint_id = walk.id AND d.next_attempt_at IS NOT NULL
  ORDER BY d.next_attempt_at LIMIT 1) <= $1`

// Claim implements Driver: it locks the oldest due deliveries of the
// endpoint that no other transaction holds, and leases them, in one
// statement. p.After is not needed: leased rows are no longer due.
//
// An ordered endpoint's deliveries are taken only when no older
// unfinished delivery of their ordering key holds them back (the partial
// index delivery_order finds the older ones): first among its oldest due
// (orderedWindow), which is cheap and usually enough, then, if held-back
// deliveries crowd those out, among the heads of every key.
func (d *PostgresDriver) Claim(ctx context.Context, p ClaimParams) ([]Job, error) {
	if !p.Ordered {
		return d.claim(ctx, p, claimOldest, p.Limit)
	}
	jobs, err := d.claim(ctx, p, claimOrdered, p.Limit, orderedWindow(p.Limit))
	if err != nil || len(jobs) == p.Limit {
		return jobs, err
	}
	heads, err := d.claim(ctx, p, claimHeads, p.Limit-len(jobs))
	if err != nil {
		if len(jobs) > 0 {
			// What the first statement leased is sent; the failure
			// comes back at the next claim.
			return jobs, nil
		}
		return nil, err
	}
	jobs = append(jobs, heads...)
	sortJobs(jobs)
	return jobs, nil
}

// planEach runs a statement with a plan made for its arguments and the
// table as it is at each run (an unnamed statement, described once): the
// statements that find deliveries by a set of IDs or a bounded walk of an
// index. Prepared, PostgreSQL may switch them to a generic plan after five
// runs and keep it on the connection until the table is next analysed;
// one made while the table was empty or small reads every delivery, and
// autovacuum analyses the table again only once a tenth of it changed.
// On a fresh database such a plan cut the benchmark's throughput to one
// endpoint by two thirds for as long as it lasted. Planning each run
// costs the server about 0.2 ms a statement (0.24 ms a claim, 0.18 ms a
// batch of results), some 13 µs a delivery in the benchmark.
const planEach = pgx.QueryExecModeCacheDescribe

// The candidates of a claim (the CTE c of PostgresDriver.claim): ids and due times of
// deliveries of endpoint $1 due at $2, at most $3, locked. Subqueries
// that pick rows by ID are ANY(ARRAY(…)), not IN (…): see claim.
const (
	// claimOldest takes the endpoint's oldest due deliveries. Rows are
	// locked after they are sorted, so a claim sorts every due
	// delivery of the endpoint, not only the ones it takes: by due time
	// alone, since the order of deliveries due at once does not matter
	// here (the engine sorts what it claimed by due time and ID). With the
	// ID as well, deliveries of one batch, due at once, were compared by
	// their IDs in the database's collation: 3.5 ms of a 4.9 ms claim of
	// 64 with 1,805 due, against 1.6 ms of 4.0 ms for 3,406 due without.
	claimOldest = `SELECT id, next_attempt_at AS due FROM deliveries
  WHERE endpoint_id = $1 AND next_attempt_at <= $2
  ORDER BY next_attempt_at LIMIT $3
  FOR UPDATE SKIP LOCKED`
	// $7: the window of oldest due deliveries looked through.
	claimOrdered = `SELECT id, next_attempt_at AS due FROM deliveries
  WHERE id = ANY(ARRAY(SELECT id FROM deliveries WHERE endpoint_id = $1 AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $7))
    AND endpoint_id = $1 AND next_attempt_at <= $2
    AND (ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries o
      WHERE o.endpoint_id = deliveries.endpoint_id AND o.ordering_key = deliveries.ordering_key AND o.next_attempt_at IS NOT NULL
        AND (o.created_at, o.id) < (deliveries.created_at, deliveries.id)))
  ORDER BY next_attempt_at, id LIMIT $3
  FOR UPDATE SKIP LOCKED`
	// Each key's oldest unfinished delivery, found by skipping from key
	// to key along delivery_order: the work grows with the number of
	// keys, not with the deliveries they hold back. A head that finished
	// meanwhile fails the recheck of the locked row and is skipped.
	claimHeads = `SELECT id, next_attempt_at AS due FROM deliveries
  WHERE id = ANY(ARRAY(SELECT (SELECT h.id FROM deliveries h
        WHERE h.endpoint_id = $1 AND h.ordering_key = k.key AND h.next_attempt_at IS NOT NULL
        ORDER BY h.created_at, h.id LIMIT 1)
      FROM k WHERE k.key IS NOT NULL))
    AND next_attempt_at <= $2
  ORDER BY next_attempt_at, id LIMIT $3
  FOR UPDATE SKIP LOCKED`
)

// claimKeys is the recursive CTE k of claimHeads: the ordering keys of
// endpoint $1 that have unfinished deliveries.
const claimKeys = `RECURSIVE k(key) AS (
  SELECT (SELECT ordering_key FROM deliveries WHERE endpoint_id = $1 AND ordering_key IS NOT NULL AND next_attempt_at IS NOT NULL
    ORDER BY ordering_key LIMIT 1)
  UNION ALL
  SELECT (SELECT ordering_key FROM deliveries WHERE endpoint_id = $1 AND ordering_key > k.key AND next_attempt_at IS NOT NULL
    ORDER BY ordering_key LIMIT 1) FROM k WHERE k.key IS NOT NULL),
`

// claim leases at most limit of the candidates that pick selects.
func (d *PostgresDriver) claim(ctx context.Context, p ClaimParams, pick string, limit int, more ...any) ([]Job, error) {
	now := p.Now.UTC()
	until := now.Add(p.Lease)
	token := p.Worker + "/" + strconv.FormatInt(d.claims.Add(1), 36)
	with := ""
	if pick == claimHeads {
		with = claimKeys
	}
	// $6: the engine that must own the endpoint for the claim to take
	// anything ("": any), by the database's clock, as Own decides.
	owner := ""
	if p.Owned {
		owner = p.Worker
	}
	args := append([]any{planEach, p.EndpointID, now, limit, token, until, owner}, more...)
	// The leased rows are found through ANY(ARRAY(…)), not a join with
	// c: in a generic plan, which PostgreSQL may switch a prepared
	// statement to after five runs, LIMIT $3 is guessed at a tenth of
	// the table, and a join with that many rows is made by reading
	// every delivery (a claim took 35 ms instead of 1 at 50,000 rows).
	rows, err := d.pool.Query(ctx, `WITH `+with+`c AS (
  `+pick+`),
u AS (UPDATE deliveries d SET claimed_by = $4, next_attempt_at = $5, status = 'SENDING', updated_at = $2
  WHERE d.id = ANY(ARRAY(SELECT id FROM c))
    AND ($6 = '' OR EXISTS (SELECT 1 FROM endpoints o WHERE o.id = $1 AND o.flow_owner = $6 AND o.flow_owner_until > clock_timestamp()))
  RETURNING d.id, d.app_id, d.event_id, d.endpoint_id, d.event_type, d.attempt_count, d.next_trigger)
SELECT u.id, u.app_id, u.event_id, u.endpoint_id, u.event_type, u.attempt_count, u.next_trigger, c.due, e.payload, e.created_at,
  e.deliver_at, COALESCE(e.trace_parent, ''), e.test, COALESCE(e.ordering_key, '')
FROM u JOIN c ON c.id = u.id JOIN events e ON e.id = u.event_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries of endpoint %s: %w", p.EndpointID, err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) {
		j := Job{Lease: Lease{Token: token, Until: until}}
		var payload []byte
		err := r.Scan(&j.DeliveryID, &j.AppID, &j.EventID, &j.EndpointID, &j.EventType, &j.AttemptCount, &j.Trigger,
			&j.Position.Due, &payload, &j.EventCreatedAt, &j.EventDeliverAt, &j.TraceParent, &j.EventTest, &j.OrderingKey)
		j.Payload = payload
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries of endpoint %s: %w", p.EndpointID, err)
	}
	sortJobs(jobs)
	return jobs, nil
}

// sortJobs puts jobs in due order, then by delivery ID: the statements
// return them in no particular order.
func sortJobs(jobs []Job) {
	slices.SortFunc(jobs, func(a, b Job) int {
		if c := a.Position.Due.Compare(b.Position.Due); c != 0 {
			return c
		}
		return strings.Compare(a.DeliveryID, b.DeliveryID)
	})
}

// Own implements Driver with one conditional update of the endpoint's
// flow_owner: taken if free, expired, or already owner's. Ownership is
// timed by the database's clock, whatever the replicas' clocks say: it
// lasts until−now from the update, and the time left comes back as a
// duration, which the engine adds to now (its clock, read before the
// call), so its idea of the end is never later than the database's.
func (d *PostgresDriver) Own(ctx context.Context, endpointID, owner string, until, now time.Time) (bool, time.Time, error) {
	var cur string
	var left float64
	err := d.pool.QueryRow(ctx, `WITH o AS (
  UPDATE endpoints SET flow_owner = $2, flow_owner_until = clock_timestamp() + make_interval(secs => $3)
  WHERE id = $1 AND (flow_owner IS NULL OR flow_owner = $2 OR flow_owner_until < clock_timestamp())
  RETURNING flow_owner, flow_owner_until)
SELECT flow_owner, extract(epoch FROM flow_owner_until - clock_timestamp())::float8 FROM o
UNION ALL SELECT coalesce(flow_owner, ''), coalesce(extract(epoch FROM flow_owner_until - clock_timestamp())::float8, 0)
FROM endpoints WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM o)`,
		endpointID, owner, until.Sub(now).Seconds()).Scan(&cur, &left)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("own endpoint %s: %w", endpointID, err)
	}
	return cur == owner, now.Add(time.Duration(max(left, 0) * float64(time.Second))), nil
}

// RecentAttemptEnds implements Driver.
func (d *PostgresDriver) RecentAttemptEnds(ctx context.Context, endpointID string, since time.Time, n int) ([]time.Time, error) {
	rows, err := d.pool.Query(ctx, `SELECT completed_at FROM attempts WHERE endpoint_id = $1 AND completed_at > $2
ORDER BY completed_at DESC LIMIT $3`, endpointID, since.UTC(), n)
	if err != nil {
		return nil, fmt.Errorf("recent attempts: %w", err)
	}
	ends, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("recent attempts: %w", err)
	}
	slices.Reverse(ends)
	return ends, nil
}

// Release implements Driver: leases still held are ended and their
// deliveries are due at now.
func (d *PostgresDriver) Release(ctx context.Context, leases []Lease, now time.Time) error {
	if len(leases) == 0 {
		return nil
	}
	ids, tokens := make([]string, len(leases)), make([]string, len(leases))
	for i, l := range leases {
		ids[i], tokens[i] = l.DeliveryID, l.Token
	}
	_, err := d.pool.Exec(ctx, `UPDATE deliveries d SET claimed_by = NULL, next_attempt_at = $3, updated_at = $3,
  status = CASE WHEN d.attempt_count = 0 THEN 'PENDING' ELSE 'RETRYING' END
FROM unnest($1::text[], $2::text[]) AS r(id, token)
WHERE d.id = r.id AND d.claimed_by = r.token AND d.next_attempt_at IS NOT NULL`, planEach, ids, tokens, now.UTC())
	if err != nil {
		return fmt.Errorf("release %d deliveries: %w", len(leases), err)
	}
	return nil
}

// Cancel implements Driver in one bounded statement, skipping deliveries
// under a live lease and rows another transaction holds. It takes them in
// due order, which keeps even a generic plan on the due index.
func (d *PostgresDriver) Cancel(ctx context.Context, p CancelParams) ([]DeliveryRef, error) {
	now := p.Now.UTC()
	rows, err := d.pool.Query(ctx, `WITH c AS (
  SELECT id FROM deliveries
  WHERE endpoint_id = $1 AND next_attempt_at IS NOT NULL AND (claimed_by IS NULL OR next_attempt_at <= $2)
  ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
UPDATE deliveries d SET status = 'FAILED', next_attempt_at = NULL, claimed_by = NULL, last_error = $4, completed_at = $2, updated_at = $2
WHERE d.id = ANY(ARRAY(SELECT id FROM c)) -- not a join with c: see claim
RETURNING d.id, d.app_id, d.event_id, d.event_type`, planEach, p.EndpointID, now, p.Limit, sanitizeText(p.Reason))
	if err != nil {
		return nil, fmt.Errorf("cancel deliveries of endpoint %s: %w", p.EndpointID, err)
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryRef, error) {
		ref := DeliveryRef{EndpointID: p.EndpointID, Status: "FAILED"}
		return ref, r.Scan(&ref.ID, &ref.AppID, &ref.EventID, &ref.EventType)
	})
	if err != nil {
		return nil, fmt.Errorf("cancel deliveries of endpoint %s: %w", p.EndpointID, err)
	}
	return refs, nil
}

// Requeue implements Driver: it reads the matching deliveries, then
// updates those not under a live lease in one statement.
func (d *PostgresDriver) Requeue(ctx context.Context, p RequeueParams) (RequeueResult, error) {
	var res RequeueResult
	refs, last, err := d.requeueCandidates(ctx, p)
	if err != nil || len(refs) == 0 {
		return res, err
	}
	if p.EndpointID != "" {
		res.Next = joinPosition(last, refs[len(refs)-1].ID)
		res.More = len(refs) == p.Limit
	}
	ids := make([]string, len(refs))
	byID := make(map[string]DeliveryRef, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
		byID[r.ID] = r
	}
	slices.Sort(ids) // lock rows in one order
	now := p.Now.UTC()
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("requeue deliveries: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	rows, err := tx.Query(ctx, `UPDATE deliveries SET status = CASE WHEN attempt_count = 0 THEN 'PENDING' ELSE 'RETRYING' END,
 next_attempt_at = $1, next_trigger = 'MANUAL_RETRY', completed_at = NULL, claimed_by = NULL, updated_at = $1
WHERE app_id = $2 AND id = ANY($3) AND status = ANY($4) AND NOT (claimed_by IS NOT NULL AND next_attempt_at > $1)
RETURNING id, status`, planEach, now, p.AppID, ids, p.Statuses)
	if err != nil {
		return res, fmt.Errorf("requeue deliveries: %w", err)
	}
	type idStatus struct{ id, status string }
	done, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idStatus, error) {
		var x idStatus
		return x, r.Scan(&x.id, &x.status)
	})
	if err != nil {
		return res, fmt.Errorf("requeue deliveries: %w", err)
	}
	if p.Audit != nil && len(done) > 0 {
		if _, err := tx.Exec(ctx, insertAuditArrays, auditArrays([]*audit.Row{p.Audit})...); err != nil {
			return res, fmt.Errorf("requeue deliveries: store the audit record: %w", err)
		}
		res.Audited = true
	}
	if err := tx.Commit(ctx); err != nil {
		res.Audited = false
		return res, fmt.Errorf("requeue deliveries: %w", err)
	}
	for _, x := range done {
		ref := byID[x.id]
		ref.Status = x.status
		res.Requeued = append(res.Requeued, ref)
	}
	// What matched but was not requeued is being sent (or changed state
	// meanwhile, which a caller cannot tell from being sent).
	res.Leased = len(refs) - len(done)
	return res, nil
}

// requeueCandidates reads the deliveries a Requeue may change, in
// (created_at, id) order, and returns the creation time of the last.
func (d *PostgresDriver) requeueCandidates(ctx context.Context, p RequeueParams) ([]DeliveryRef, time.Time, error) {
	var (
		rows pgx.Rows
		err  error
	)
	const cols = `SELECT id, app_id, event_id, endpoint_id, event_type, created_at FROM deliveries`
	if len(p.DeliveryIDs) > 0 {
		rows, err = d.pool.Query(ctx, cols+` WHERE app_id = $1 AND id = ANY($2) AND status = ANY($3) ORDER BY created_at, id`,
			planEach, p.AppID, p.DeliveryIDs, p.Statuses)
	} else {
		after, afterID, perr := splitPosition(p.After)
		if perr != nil {
			return nil, time.Time{}, perr
		}
		if after.Before(p.Since) {
			after, afterID = p.Since, ""
		}
		rows, err = d.pool.Query(ctx, cols+` WHERE app_id = $1 AND endpoint_id = $2 AND created_at >= $3 AND (created_at > $3 OR id > $4)
 AND status = ANY($5) ORDER BY created_at, id LIMIT $6`, planEach, p.AppID, p.EndpointID, after.UTC(), afterID, p.Statuses, max(p.Limit, 1))
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("find deliveries to requeue: %w", err)
	}
	var last time.Time
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryRef, error) {
		var ref DeliveryRef
		return ref, r.Scan(&ref.ID, &ref.AppID, &ref.EventID, &ref.EndpointID, &ref.EventType, &last)
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("find deliveries to requeue: %w", err)
	}
	return refs, last, nil
}

// Begin implements Driver.
func (d *PostgresDriver) Begin(ctx context.Context) (Tx, error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &postgresTx{tx: tx}, nil
}

// postgresTx is a transaction of the PostgreSQL driver.
type postgresTx struct {
	tx pgx.Tx
}

// exec runs a statement of one argument in the transaction.
func (t *postgresTx) exec(ctx context.Context, q, arg string) error {
	_, err := t.tx.Exec(ctx, q, arg)
	return err
}

func (t *postgresTx) EndpointsVersion(ctx context.Context, appID string) (int64, error) {
	return pgEndpointsVersion(ctx, t.tx, appID)
}

func (t *postgresTx) Subscribers(ctx context.Context, appID string) ([]Subscriber, int64, error) {
	return pgSubscribers(ctx, t.tx, appID)
}

// Subscribers implements Driver.
func (d *PostgresDriver) Subscribers(ctx context.Context, appID string) ([]Subscriber, int64, error) {
	return pgSubscribers(ctx, d.pool, appID)
}

// pgQuerier is what reads need of a pool or a transaction.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgEndpointsVersion(ctx context.Context, q pgQuerier, appID string) (int64, error) {
	var v int64
	if err := q.QueryRow(ctx, `SELECT endpoints_version FROM apps WHERE id = $1`, appID).Scan(&v); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("read the version of the app's endpoints: %w", err)
	}
	return v, nil
}

func pgSubscribers(ctx context.Context, q pgQuerier, appID string) ([]Subscriber, int64, error) {
	// The version first: a change committed between the two reads makes
	// the list newer than its version, which only costs a reload.
	version, err := pgEndpointsVersion(ctx, q, appID)
	if err != nil {
		return nil, 0, err
	}
	rows, err := q.Query(ctx, `SELECT id, event_types, ordering, filter::text, rate_limit IS NOT NULL AND rate_limit <> 'null'::jsonb
FROM endpoints WHERE app_id = $1 AND is_active AND deleted_at IS NULL ORDER BY id`, appID)
	if err != nil {
		return nil, 0, fmt.Errorf("load subscribed endpoints: %w", err)
	}
	subs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscriber, error) {
		var s Subscriber
		var types []byte
		var filter *string
		var limited bool
		if err := r.Scan(&s.EndpointID, &types, &s.Ordering, &filter, &limited); err != nil {
			return s, err
		}
		if filter != nil && *filter != "null" {
			s.Filter = []byte(*filter)
		}
		s.Controlled = limited || (s.Ordering != "" && s.Ordering != "NONE")
		if err := json.Unmarshal(types, &s.Patterns); err != nil {
			return s, fmt.Errorf("event types of endpoint %s: %w", s.EndpointID, err)
		}
		return s, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("load subscribed endpoints: %w", err)
	}
	return subs, version, nil
}

func (t *postgresTx) InsertEvents(ctx context.Context, evs []*EventRow) ([]*EventRow, error) {
	n := len(evs)
	ids, types, payloads, keys, apps := make([]string, n), make([]string, n), make([]string, n), make([]*string, n), make([]string, n)
	okeys, deliverAts, traces := make([]*string, n), make([]*time.Time, n), make([]*string, n)
	counts, times := make([]int32, n), make([]time.Time, n)
	for i, ev := range evs {
		ids[i], types[i], payloads[i], apps[i] = ev.ID, ev.EventType, string(ev.Payload), ev.AppID
		if ev.IdempotencyKey != "" {
			k := ev.IdempotencyKey
			keys[i] = &k
		}
		if ev.OrderingKey != "" {
			k := ev.OrderingKey
			okeys[i] = &k
		}
		if ev.TraceParent != "" {
			tp := ev.TraceParent
			traces[i] = &tp
		}
		deliverAts[i] = utcPtr(ev.DeliverAt)
		counts[i], times[i] = int32(ev.DeliveryCount), ev.CreatedAt.UTC()
	}
	// Payloads are json, not jsonb: stored and delivered byte for byte.
	rows, err := t.tx.Query(ctx, `INSERT INTO events (id, event_type, payload, idempotency_key, ordering_key, deliver_at, delivery_count, created_at, app_id, trace_parent)
SELECT id, typ, payload::json, key, okey, dat, n, at, app, tp
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[], $7::text[], $8::text[], $9::timestamptz[], $10::text[]) WITH ORDINALITY
  AS r(id, typ, payload, key, n, at, app, okey, dat, tp, ord)
ORDER BY ord
ON CONFLICT (app_id, idempotency_key) DO NOTHING
RETURNING id`, ids, types, payloads, keys, counts, times, apps, okeys, deliverAts, traces)
	if err != nil {
		return nil, fmt.Errorf("store events: %w", err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store events: %w", err)
	}
	existing := make([]*EventRow, n)
	if len(inserted) == n {
		return existing, markRare(ctx, t.exec, postgresParam, evs, existing, nil)
	}
	stored := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		stored[id] = true
	}
	var lookApps, lookKeys []string
	for _, ev := range evs {
		if !stored[ev.ID] {
			if ev.IdempotencyKey == "" {
				return nil, fmt.Errorf("store event %s: not stored and no idempotency key explains it", ev.ID)
			}
			lookApps, lookKeys = append(lookApps, ev.AppID), append(lookKeys, ev.IdempotencyKey)
		}
	}
	rows, err = t.tx.Query(ctx, `SELECT e.id, e.app_id, e.event_type, e.payload::text, e.idempotency_key, e.delivery_count, e.created_at
FROM events e JOIN unnest($1::text[], $2::text[]) AS k(app, key) ON e.app_id = k.app AND e.idempotency_key = k.key`, lookApps, lookKeys)
	if err != nil {
		return nil, fmt.Errorf("read events of idempotency keys: %w", err)
	}
	olds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*EventRow, error) {
		ev := &EventRow{}
		var payload string
		err := r.Scan(&ev.ID, &ev.AppID, &ev.EventType, &payload, &ev.IdempotencyKey, &ev.DeliveryCount, &ev.CreatedAt)
		ev.Payload = []byte(payload)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("read events of idempotency keys: %w", err)
	}
	byKey := make(map[[2]string]*EventRow, len(olds))
	for _, o := range olds {
		byKey[[2]string{o.AppID, o.IdempotencyKey}] = o
	}
	for i, ev := range evs {
		if !stored[ev.ID] {
			if existing[i] = byKey[[2]string{ev.AppID, ev.IdempotencyKey}]; existing[i] == nil {
				return nil, fmt.Errorf("read event of idempotency key %q: not found", ev.IdempotencyKey)
			}
		}
	}
	return existing, markRare(ctx, t.exec, postgresParam, evs, existing, nil)
}

func (t *postgresTx) InsertDeliveries(ctx context.Context, rows []DeliveryRow, lease *Lease) error {
	rows, failed := splitFailed(rows)
	if n := len(failed); n > 0 {
		ids, types, errs, apps, eps, evs, times := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
		for i, r := range failed {
			ids[i], types[i], errs[i], apps[i], eps[i], evs[i], times[i] = r.ID, r.EventType, sanitizeText(r.Failed), r.AppID, r.EndpointID, r.EventID, r.CreatedAt.UTC()
		}
		if _, err := t.tx.Exec(ctx, `INSERT INTO deliveries (id, created_at, updated_at, event_type, status, attempt_count, next_trigger, last_error, completed_at, app_id, endpoint_id, event_id)
SELECT id, at, at, typ, 'FAILED', 0, 'SCHEDULED', err, at, app, ep, ev
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS r(id, at, typ, err, app, ep, ev)`,
			ids, times, types, errs, apps, eps, evs); err != nil {
			return fmt.Errorf("store failed deliveries: %w", err)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	ids, types, apps, eps, evs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	times, dues, keys := make([]time.Time, n), make([]time.Time, n), make([]*string, n)
	for i, r := range rows {
		ids[i], types[i], apps[i], eps[i], evs[i], times[i] = r.ID, r.EventType, r.AppID, r.EndpointID, r.EventID, r.CreatedAt.UTC()
		dues[i], keys[i] = r.due().UTC(), r.OrderingKey
	}
	var claimedBy *string
	var until *time.Time
	if lease != nil {
		claimedBy = &lease.Token
		u := lease.Until.UTC()
		until = &u
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO deliveries (id, created_at, updated_at, event_type, status, attempt_count, next_attempt_at, next_trigger, claimed_by, ordering_key, app_id, endpoint_id, event_id)
SELECT id, at, at, typ, 'PENDING', 0, COALESCE($7::timestamptz, due), 'SCHEDULED', $8::text, okey, app, ep, ev
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $9::timestamptz[], $10::text[]) AS r(id, at, typ, app, ep, ev, due, okey)`,
		ids, times, types, apps, eps, evs, until, claimedBy, dues, keys)
	if err != nil {
		return fmt.Errorf("store deliveries: %w", err)
	}
	return markRare(ctx, t.exec, postgresParam, nil, nil, rows)
}

func (t *postgresTx) EndpointStates(ctx context.Context, ids []string) (map[string]EndpointState, error) {
	rows, err := t.tx.Query(ctx, `SELECT id, is_active, deleted_at IS NOT NULL FROM endpoints WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("load state of endpoints: %w", err)
	}
	out := make(map[string]EndpointState, len(ids))
	var id string
	var st EndpointState
	_, err = pgx.ForEachRow(rows, []any{&id, &st.Active, &st.Deleted}, func() error {
		out[id] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load state of endpoints: %w", err)
	}
	return out, nil
}

func (t *postgresTx) Finish(ctx context.Context, cs []Completion) ([]bool, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	if err := t.insertAttempts(ctx, cs); err != nil {
		return nil, err
	}
	n := len(cs)
	ids, tokens, statuses, errs := make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	counts, codes := make([]int32, n), make([]*int32, n)
	nexts, lasts, dones, upds := make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]time.Time, n)
	for i, c := range cs {
		u := c.Update
		ids[i], tokens[i], statuses[i], counts[i] = c.Lease.DeliveryID, c.Lease.Token, u.Status, int32(u.AttemptCount)
		nexts[i], lasts[i], dones[i], upds[i] = utcPtr(u.NextAttemptAt), utcPtr(u.LastAttemptAt), utcPtr(u.CompletedAt), u.UpdatedAt.UTC()
		if u.LastResponseStatus != 0 {
			code := int32(u.LastResponseStatus)
			codes[i] = &code
		}
		if u.LastError != "" {
			e := sanitizeText(u.LastError)
			errs[i] = &e
		}
	}
	rows, err := t.tx.Query(ctx, `UPDATE deliveries d SET status = u.status, attempt_count = u.n, next_attempt_at = u.next,
  next_trigger = 'SCHEDULED', claimed_by = NULL,
  last_attempt_at = COALESCE(u.last_at, d.last_attempt_at), last_response_status = COALESCE(u.code, d.last_response_status),
  last_error = u.err, completed_at = u.done, updated_at = u.upd
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::timestamptz[], $7::int[], $8::text[], $9::timestamptz[], $10::timestamptz[])
  AS u(id, token, status, n, next, last_at, code, err, done, upd)
WHERE d.id = u.id AND d.claimed_by = u.token AND d.next_attempt_at IS NOT NULL
RETURNING d.id`, planEach, ids, tokens, statuses, counts, nexts, lasts, codes, errs, dones, upds)
	if err != nil {
		return nil, fmt.Errorf("update %d deliveries: %w", n, err)
	}
	updated, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("update %d deliveries: %w", n, err)
	}
	done := make(map[string]bool, len(updated))
	for _, id := range updated {
		done[id] = true
	}
	applied := make([]bool, n)
	for i, id := range ids {
		applied[i] = done[id]
	}
	return applied, nil
}

// insertAttempts stores the attempts of completions in one statement.
func (t *postgresTx) insertAttempts(ctx context.Context, cs []Completion) error {
	var (
		ids, apps, dels, eps, triggers, urls, bodies []string
		reqH, respH                                  []string
		nums                                         []int32
		codes                                        []*int32
		oks, truncs                                  []bool
		durs                                         []int64
		errs                                         []*string
		starts, ends                                 []time.Time
	)
	for _, c := range cs {
		a := c.Attempt
		if a == nil {
			continue
		}
		ids, apps, dels, eps = append(ids, a.ID), append(apps, a.AppID), append(dels, a.DeliveryID), append(eps, a.EndpointID)
		triggers, urls, bodies = append(triggers, a.Trigger), append(urls, sanitizeText(a.RequestURL)), append(bodies, sanitizeText(a.ResponseBody))
		reqH, respH = append(reqH, sanitizeJSON(a.RequestHeaders)), append(respH, sanitizeJSON(a.ResponseHeaders))
		nums, oks, truncs, durs = append(nums, int32(a.Number)), append(oks, a.Succeeded), append(truncs, a.Truncated), append(durs, a.DurationMs)
		var code *int32
		if a.ResponseStatus != 0 {
			c := int32(a.ResponseStatus)
			code = &c
		}
		codes = append(codes, code)
		var e *string
		if a.Error != "" {
			s := sanitizeText(a.Error)
			e = &s
		}
		errs = append(errs, e)
		starts, ends = append(starts, a.StartedAt.UTC()), append(ends, a.CompletedAt.UTC())
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO attempts (id, app_id, delivery_id, endpoint_id, attempt_number, trigger, succeeded, request_url,
  request_headers, response_status, response_headers, response_body, response_body_truncated, duration_ms, error_message, started_at, completed_at)
SELECT id, app, del, ep, num, trg, ok, url, reqh::jsonb, code, resph::jsonb, body, trunc, dur, err, st, en
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::bool[], $8::text[], $9::text[], $10::int[],
  $11::text[], $12::text[], $13::bool[], $14::bigint[], $15::text[], $16::timestamptz[], $17::timestamptz[])
  AS a(id, app, del, ep, num, trg, ok, url, reqh, code, resph, body, trunc, dur, err, st, en)`,
		ids, apps, dels, eps, nums, triggers, oks, urls, reqH, codes, respH, bodies, truncs, durs, errs, starts, ends)
	if err != nil {
		return fmt.Errorf("insert %d attempts: %w", len(ids), err)
	}
	return nil
}

func (t *postgresTx) AddCounters(ctx context.Context, c CounterDelta) (int, error) {
	var consec int
	err := t.tx.QueryRow(ctx, `UPDATE endpoints SET
 success_count = success_count + $1, failure_count = failure_count + $2,
 last_success_at = COALESCE($3, last_success_at), last_failure_at = COALESCE($4, last_failure_at),
 consecutive_failures = CASE WHEN $5::bool THEN $6::int ELSE consecutive_failures + $6::int END
WHERE id = $7 RETURNING consecutive_failures`,
		c.Successes, c.Failures, utcPtr(c.LastSuccess), utcPtr(c.LastFailure), c.Reset, c.Consecutive, c.EndpointID).Scan(&consec)
	if err != nil {
		return 0, fmt.Errorf("update counters of endpoint %s: %w", c.EndpointID, err)
	}
	return consec, nil
}

func (t *postgresTx) DisableEndpoint(ctx context.Context, id, reason string, now time.Time) (*DisabledEndpoint, error) {
	ep := &DisabledEndpoint{ID: id}
	err := t.tx.QueryRow(ctx, `WITH d AS (
  UPDATE endpoints SET is_active = false, disabled_reason = $1, disabled_at = $2, updated_at = $2
  WHERE id = $3 AND is_active RETURNING app_id, url),
v AS (UPDATE apps SET endpoints_version = endpoints_version + 1 WHERE id IN (SELECT app_id FROM d))
SELECT app_id, url FROM d`, sanitizeText(reason), now.UTC(), id).Scan(&ep.AppID, &ep.URL)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("disable endpoint %s: %w", id, err)
	}
	return ep, nil
}

func (t *postgresTx) PauseEndpoint(ctx context.Context, id string, until time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE endpoints SET paused_until = $2 WHERE id = $1 AND (paused_until IS NULL OR paused_until < $2)`, id, until.UTC())
	if err != nil {
		return fmt.Errorf("pause endpoint %s: %w", id, err)
	}
	return nil
}

func (t *postgresTx) Savepoint(ctx context.Context, name string) error {
	if _, err := t.tx.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	return nil
}

func (t *postgresTx) RollbackTo(ctx context.Context, name string) error {
	if _, err := t.tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name); err != nil {
		return fmt.Errorf("roll back to savepoint: %w", err)
	}
	return nil
}

func (t *postgresTx) ReleaseSavepoint(ctx context.Context, name string) error {
	if _, err := t.tx.Exec(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

func (t *postgresTx) Commit() error {
	if err := t.tx.Commit(context.Background()); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (t *postgresTx) Rollback() error {
	err := t.tx.Rollback(context.Background())
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return err
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// sanitizeText makes s storable in a PostgreSQL text column, which
// refuses NUL characters (responses can hold them): each becomes U+FFFD.
func sanitizeText(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// sanitizeJSON does the same for JSON text bound for jsonb, which refuses
// the \u0000 escape.
func sanitizeJSON(b []byte) string {
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return string(b)
	}
	return string(bytes.ReplaceAll(b, []byte(`\u0000`), []byte(`\ufffd`)))
}
