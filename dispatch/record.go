package dispatch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// result is what a worker reports about a job.
type result struct {
	job *job
	// resp is the attempt's outcome; nil when the job was released or
	// cancelled.
	resp *response
	// release: the job was not attempted and goes back to the queue.
	release bool
	// cancelled: the job's endpoint is disabled or deleted; the delivery
	// ends FAILED without an attempt.
	cancelled bool
	// done, if set, receives the attempt's recorded ID or an error once
	// the result is committed (synchronous test sends).
	done chan<- recorded
	// counted: the job was claimed by the scheduler and counts toward
	// Engine.outstanding.
	uncounted bool
}

type recorded struct {
	attemptID string
	status    string
	err       error
}

// maxRecordBatch bounds how many results one transaction records.
const maxRecordBatch = 512

// recorder commits results in batches: one transaction per batch, as large
// as the results that queued while the previous batch committed.
type recorder struct {
	e *Engine

	prepareOnce sync.Once
	prepareErr  error
	insAttempt  *sql.Stmt
	updDelivery *sql.Stmt
	// epState reads whether an endpoint may still be retried; updCounters
	// adds a batch's outcomes to its counters.
	epState     *sql.Stmt
	updCounters *sql.Stmt
}

func newRecorder(e *Engine) *recorder { return &recorder{e: e} }

func (r *recorder) run() {
	defer close(r.e.recDone)
	defer r.closeStmts()
	batch := make([]*result, 0, maxRecordBatch)
	linger := time.NewTimer(0)
	<-linger.C
	for first := range r.e.results {
		batch = append(batch[:0], first)
		batch = r.fill(batch)
		// Under load, wait a moment for more results so a commit covers
		// more of them: commits, not rows, are the cost that grows with
		// load. A lone result (light load) is committed at once.
		if len(batch) > 1 && len(batch) < minLingerBatch && int(r.e.outstanding.Load()) > len(batch) {
			linger.Reset(maxLinger)
		wait:
			for len(batch) < minLingerBatch {
				select {
				case x, ok := <-r.e.results:
					if !ok {
						break wait
					}
					batch = append(batch, x)
				case <-linger.C:
					break wait
				}
			}
			if !linger.Stop() {
				select {
				case <-linger.C:
				default:
				}
			}
			batch = r.fill(batch)
		}
		r.flush(batch)
		clear(batch)
	}
}

// Group commit tuning: under load the recorder waits up to maxLinger for
// a batch of minLingerBatch results.
const (
	minLingerBatch = 64
	maxLinger      = time.Millisecond
)

// fill adds the results that are already waiting.
func (r *recorder) fill(batch []*result) []*result {
	for len(batch) < maxRecordBatch {
		select {
		case x, ok := <-r.e.results:
			if !ok {
				return batch
			}
			batch = append(batch, x)
		default:
			return batch
		}
	}
	return batch
}

func (r *recorder) closeStmts() {
	for _, st := range []*sql.Stmt{r.insAttempt, r.updDelivery, r.epState, r.updCounters} {
		if st != nil {
			st.Close()
		}
	}
}

// prepare prepares the recorder's statements once: preparing one costs as
// much as running it, and the recorder runs them in every commit.
func (r *recorder) prepare(ctx context.Context) error {
	r.prepareOnce.Do(func() {
		db := r.e.cfg.DB
		for _, p := range []struct {
			stmt **sql.Stmt
			sql  string
		}{
			{&r.insAttempt, `INSERT INTO attempts
(id, app_id, delivery_id, endpoint_id, attempt_number, trigger, succeeded, request_url, request_headers,
 response_status, response_headers, response_body, response_body_truncated, duration_ms, error_message,
 started_at, completed_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
			{&r.updDelivery, `UPDATE deliveries SET
 status = ?, attempt_count = ?, next_attempt_at = ?, next_trigger = 'SCHEDULED', claimed_by = NULL,
 last_attempt_at = COALESCE(?, last_attempt_at), last_response_status = COALESCE(?, last_response_status),
 last_error = ?, completed_at = ?, updated_at = ?
WHERE id = ? AND next_attempt_at IS NOT NULL`},
			{&r.epState, `SELECT is_active, deleted_at IS NOT NULL FROM endpoints WHERE id = ?`},
			{&r.updCounters, `UPDATE endpoints SET
 success_count = success_count + ?, failure_count = failure_count + ?,
 last_success_at = COALESCE(?, last_success_at), last_failure_at = COALESCE(?, last_failure_at),
 consecutive_failures = CASE WHEN ? THEN ? ELSE consecutive_failures + ? END
WHERE id = ? RETURNING consecutive_failures`},
		} {
			if *p.stmt, r.prepareErr = db.PrepareContext(ctx, p.sql); r.prepareErr != nil {
				return
			}
		}
	})
	return r.prepareErr
}

// flush records a batch, retrying transient failures. If recording fails
// for good, the leases of the batch expire and its deliveries are sent
// again: a lost record costs a duplicate, never a lost delivery.
func (r *recorder) flush(batch []*result) {
	e := r.e
	var (
		releases []string
		toCommit []*result
		counted  int64
	)
	for _, res := range batch {
		if !res.uncounted {
			counted++
		}
		if res.release {
			releases = append(releases, res.job.DeliveryID)
			continue
		}
		toCommit = append(toCommit, res)
	}
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), time.Minute)
	defer cancel()
	if len(releases) > 0 {
		if err := e.cfg.Claimer.Release(ctx, e.worker, releases, e.cfg.Now().UTC()); err != nil {
			e.log.Error("release deliveries", "count", len(releases), "err", err)
		}
	}
	var (
		out *commitOutput
		err error
	)
	if len(toCommit) > 0 {
		for try := 0; ; try++ {
			out, err = r.commit(ctx, toCommit)
			if err == nil || try == 4 || ctx.Err() != nil {
				break
			}
			e.log.Warn("record attempts: retrying", "try", try+1, "err", err)
			time.Sleep(time.Duration(50<<try) * time.Millisecond)
		}
		if err != nil {
			e.log.Error("record attempts; their deliveries will be retried after the lease expires", "count", len(toCommit), "err", err)
		}
	}
	// The batch's deliveries are recorded (or, if recording failed, still
	// due in the store): the engine no longer holds them.
	held := make([]Job, 0, len(batch))
	for _, res := range batch {
		if !res.uncounted {
			held = append(held, res.job.Job)
		}
	}
	e.unhold(held)
	if err == nil {
		for _, d := range out.disabled {
			e.EndpointDisabled(ctx, d.id, "endpoint "+d.reason)
		}
	}
	e.outstanding.Add(-counted)
	e.poke() // capacity freed up
	for i, res := range toCommit {
		if res.done == nil {
			continue
		}
		if err != nil {
			res.done <- recorded{err: err}
		} else {
			res.done <- recorded{attemptID: out.attemptIDs[i], status: out.changes[i].Status}
		}
	}
	if err != nil {
		return
	}
	for _, c := range out.changes {
		if c.DeliveryID != "" {
			e.cfg.Observer.DeliveryChanged(c)
		}
	}
	for _, c := range out.endpoints {
		e.cfg.Observer.EndpointChanged(c)
	}
	for _, m := range out.metas {
		e.afterPublish(m)
	}
}

// commitOutput is what a committed batch changed.
type commitOutput struct {
	attemptIDs []string         // per result ("" if none)
	changes    []DeliveryChange // per result
	endpoints  []EndpointChange
	metas      []*publishOutput   // meta-events published
	disabled   []disabledEndpoint // endpoints disabled by this batch
}

type disabledEndpoint struct{ id, reason string }

// endpointTally accumulates a batch's effect on one endpoint's counters.
type endpointTally struct {
	appID       string
	successes   int
	failures    int
	lastSuccess *time.Time
	lastFailure *time.Time
	reset       bool // a delivery succeeded: consecutive failures restart
	consecutive int  // deliveries that ended FAILED after the last success
	lastError   string
	active      bool
	deleted     bool
	nowFailures int
}

// metaEvent is a webhook.* event to publish after a batch.
type metaEvent struct {
	appID   string
	typ     string
	exclude string
	payload any
}

// commit records a batch in one transaction.
func (r *recorder) commit(ctx context.Context, batch []*result) (*commitOutput, error) {
	e := r.e
	if err := r.prepare(ctx); err != nil {
		return nil, fmt.Errorf("prepare statements: %w", err)
	}
	// Meta-events are inserted with the publishing statements, which must
	// be prepared before the transaction holds the only writer connection.
	if err := e.pubStmts.prepare(ctx, e.cfg.DB); err != nil {
		return nil, err
	}
	now := e.cfg.Now().UTC()
	tx, err := e.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit

	out := &commitOutput{attemptIDs: make([]string, len(batch)), changes: make([]DeliveryChange, len(batch))}

	// The endpoints' current state decides whether failed deliveries may
	// be retried: an endpoint disabled while an attempt was in flight
	// gets no more attempts.
	tallies := make(map[string]*endpointTally)
	var order []string
	for _, res := range batch {
		id := res.job.EndpointID
		if tallies[id] == nil {
			tallies[id] = &endpointTally{appID: res.job.AppID}
			order = append(order, id)
		}
	}
	epState := tx.StmtContext(ctx, r.epState)
	for _, id := range order {
		t := tallies[id]
		if err := epState.QueryRowContext(ctx, id).Scan(&t.active, &t.deleted); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("load state of endpoint %s: %w", id, err)
		}
	}

	ins := tx.StmtContext(ctx, r.insAttempt)
	upd := tx.StmtContext(ctx, r.updDelivery)
	var metas []metaEvent
	for i, res := range batch {
		j := res.job
		t := tallies[j.EndpointID]
		ch := DeliveryChange{
			Kind: AttemptFinished, AppID: j.AppID, DeliveryID: j.DeliveryID, EventID: j.EventID,
			EndpointID: j.EndpointID, EventType: j.EventType, At: now,
		}
		if res.cancelled {
			reason := "endpoint disabled: the delivery was not attempted"
			if t.deleted {
				reason = "endpoint deleted: the delivery was not attempted"
			}
			ch.Kind, ch.Status, ch.Error = Cancelled, "FAILED", reason
			if _, err := upd.ExecContext(ctx, "FAILED", j.AttemptCount, nil, nil, nil, reason, now, now, j.DeliveryID); err != nil {
				return nil, fmt.Errorf("cancel delivery %s: %w", j.DeliveryID, err)
			}
			out.changes[i] = ch
			continue
		}
		resp := res.resp
		a := j.attempt
		d := decide(resp, j.trigger, a.Number, a.Endpoint.Retry, t.active && !t.deleted, e.cfg.Rand())
		status, final := d.status, d.final
		var next *time.Time
		if d.status == "RETRYING" {
			at := now.Add(d.retryIn)
			next = &at
		}
		var lastErr *string
		if resp.Error != "" {
			msg := resp.Error + d.note
			lastErr = &msg
		}
		var completed *time.Time
		if status != "RETRYING" {
			completed = &resp.Completed
		}
		attemptID := ids.NewAt(ids.Attempt, resp.Started)
		reqHeaders, _ := json.Marshal(resp.RequestHeaders)
		respHeaders, _ := json.Marshal(resp.ResponseHeaders)
		var respStatus any
		if resp.Status != 0 {
			respStatus = resp.Status
		}
		var errMsg any
		if resp.Error != "" {
			errMsg = resp.Error
		}
		if _, err := ins.ExecContext(ctx, attemptID, j.AppID, j.DeliveryID, j.EndpointID, a.Number, j.trigger,
			resp.Outcome == Success, resp.RequestURL, reqHeaders, respStatus, respHeaders, resp.ResponseBody,
			resp.Truncated, resp.Duration().Milliseconds(), errMsg, resp.Started.UTC(), resp.Completed.UTC()); err != nil {
			return nil, fmt.Errorf("insert attempt of delivery %s: %w", j.DeliveryID, err)
		}
		var nextArg, lastErrArg any
		if next != nil {
			nextArg = *next
		}
		if lastErr != nil {
			lastErrArg = *lastErr
		}
		var completedArg any
		if completed != nil {
			completedArg = completed.UTC()
		}
		res2, err := upd.ExecContext(ctx, status, a.Number, nextArg, resp.Started.UTC(), respStatus, lastErrArg, completedArg, now, j.DeliveryID)
		if err != nil {
			return nil, fmt.Errorf("update delivery %s: %w", j.DeliveryID, err)
		}
		if n, _ := res2.RowsAffected(); n == 0 {
			// The delivery finished meanwhile (another worker's attempt
			// after a lost lease): the attempt is logged, the state stays.
			e.log.Warn("delivery finished before its attempt was recorded", "delivery_id", j.DeliveryID, "attempt", a.Number)
			final = false
		}

		if resp.Outcome == Success {
			t.successes++
			t.lastSuccess = &resp.Completed
			if j.trigger != "TEST" {
				t.reset, t.consecutive = true, 0
			}
		} else {
			t.failures++
			t.lastFailure = &resp.Completed
			t.lastError = resp.Error
			if final && j.trigger != "TEST" {
				t.consecutive++
			}
		}
		if final && j.trigger == "SCHEDULED" && !strings.HasPrefix(j.EventType, catalog.ReservedPrefix) {
			metas = append(metas, metaEvent{appID: j.AppID, typ: catalog.TypeWebhookFailed, exclude: j.EndpointID, payload: map[string]any{
				"endpointId": j.EndpointID, "deliveryId": j.DeliveryID, "eventId": j.EventID, "eventType": j.EventType,
				"attempts": a.Number, "lastResponseStatus": nullableInt(resp.Status), "lastError": resp.Error,
			}})
		}

		ch.Status, ch.Attempt, ch.AttemptID = status, a.Number, attemptID
		ch.ResponseStatus, ch.Duration, ch.Error, ch.NextAttemptAt = resp.Status, resp.Duration(), resp.Error, next
		out.changes[i] = ch
		out.attemptIDs[i] = attemptID
	}

	var toDisable []string
	updCounters := tx.StmtContext(ctx, r.updCounters)
	for _, id := range order {
		t := tallies[id]
		if t.successes == 0 && t.failures == 0 {
			continue
		}
		var consec int
		err := updCounters.QueryRowContext(ctx,
			t.successes, t.failures, utcOrNil(t.lastSuccess), utcOrNil(t.lastFailure), t.reset, t.consecutive, t.consecutive, id).Scan(&consec)
		if err != nil {
			return nil, fmt.Errorf("update counters of endpoint %s: %w", id, err)
		}
		t.nowFailures = consec
		out.endpoints = append(out.endpoints, EndpointChange{AppID: t.appID, EndpointID: id, Reason: "attempts recorded", At: now})
		if e.cfg.DisableAfter > 0 && consec >= e.cfg.DisableAfter && t.active && !t.deleted && t.consecutive > 0 {
			toDisable = append(toDisable, id)
		}
	}

	if len(toDisable) > 0 || len(metas) > 0 {
		client := ent.NewClient(ent.Driver(entsql.NewDriver(dialect.SQLite, entsql.Conn{ExecQuerier: tx})))
		sctx := tenant.System(ctx)
		for _, id := range toDisable {
			t := tallies[id]
			reason := fmt.Sprintf("disabled after %d consecutive failed deliveries; last error: %s", t.nowFailures, t.lastError)
			ep, err := disableEndpoint(sctx, client, id, reason, now)
			if err != nil {
				return nil, err
			}
			if ep == nil {
				continue
			}
			out.disabled = append(out.disabled, disabledEndpoint{id: id, reason: reason})
			e.subs.invalidate(t.appID) // meta-events below must not fan out to it
			out.endpoints = append(out.endpoints, EndpointChange{AppID: t.appID, EndpointID: id, Reason: "disabled", At: now})
			metas = append(metas, metaEvent{appID: t.appID, typ: catalog.TypeWebhookDisabled, exclude: id, payload: map[string]any{
				"endpointId": id, "url": ep.URL, "reason": reason, "consecutiveFailures": t.nowFailures,
			}})
		}
		for _, m := range metas {
			payload, err := json.Marshal(m.payload)
			if err != nil {
				return nil, fmt.Errorf("encode %s event: %w", m.typ, err)
			}
			pub, err := e.insertEvents(sctx, tx, m.appID, []EventInput{{EventType: m.typ, Payload: payload}}, m.exclude, now)
			if err != nil {
				return nil, fmt.Errorf("publish %s: %w", m.typ, err)
			}
			out.metas = append(out.metas, pub)
		}
	}

	for _, m := range out.metas {
		e.holdJobs(m.jobs) // see commitPublishes
	}
	if err := tx.Commit(); err != nil {
		for _, m := range out.metas {
			e.unhold(jobsOf(m.jobs))
		}
		return nil, fmt.Errorf("commit: %w", err)
	}
	return out, nil
}

func utcOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

func nullableInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// errEngineClosed is returned to synchronous senders after Close.
var errEngineClosed = errors.New("dispatch: engine closed")

// decision is what an attempt's outcome means for its delivery.
type decision struct {
	status  string        // SUCCEEDED, RETRYING or FAILED
	retryIn time.Duration // RETRYING: wait before the next attempt
	// final: the delivery ended FAILED because of its attempts (not a
	// cancellation), which counts toward auto-disable.
	final bool
	note  string // appended to the error message
}

// decide applies the retry rules: 2xx succeeds; a retryable failure is
// retried while attempts remain and the endpoint is active; anything else
// fails the delivery. Test attempts are never retried and never final.
func decide(resp *response, trigger string, number int, policy webhook.RetryPolicy, active bool, r float64) decision {
	switch {
	case resp.Outcome == Success:
		return decision{status: "SUCCEEDED"}
	case trigger == "TEST":
		return decision{status: "FAILED"}
	case resp.Outcome == Retryable && number < policy.MaxAttempts && !active:
		return decision{status: "FAILED", note: " (not retried: the endpoint is disabled)"}
	case resp.Outcome == Retryable && number < policy.MaxAttempts:
		return decision{status: "RETRYING", retryIn: policy.NextDelay(number, resp.RetryAfter, r)}
	case resp.Outcome == Retryable:
		return decision{status: "FAILED", final: true, note: fmt.Sprintf(" (gave up after %d attempts)", number)}
	default:
		return decision{status: "FAILED", final: true, note: " (permanent failure: not retried)"}
	}
}
