package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/heraldhq/herald/destination"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// result is what a worker (or a test send) reports about a job.
type result struct {
	job *job
	// resp is the attempt's outcome; nil when the job was released or
	// cancelled.
	resp *destination.Result
	// release: the job was not attempted and goes back to the queue.
	release bool
	// cancelled: the job's endpoint is disabled or deleted; the delivery
	// ends FAILED without an attempt.
	cancelled bool
	// done, if set, receives the outcome once the result is committed
	// (synchronous test sends).
	done chan<- recorded
	// fails counts commits of this result that failed on their own, which
	// makes it a suspected poison result; lastErr is why.
	fails   int
	lastErr error
}

type recorded struct {
	attemptID string
	status    string
	err       error
}

// Errors a test send can end with.
var errInterrupted = fmt.Errorf("dispatch: the attempt was interrupted by shutdown before the endpoint answered")

// Recording limits and tuning.
const (
	// maxRecordBatch bounds how many results one transaction records.
	maxRecordBatch = 512
	// Under load the recorder waits up to maxLinger for a batch of
	// minLingerBatch results: commits, not rows, are the cost that grows
	// with load.
	minLingerBatch = 64
	maxLinger      = time.Millisecond
	// At a steady rate results come one at a time, and each would be a
	// commit of its own: a lone result waits up to steadyLinger for others
	// to share its commit. Nothing waits on a result meanwhile: its
	// request has ended, its endpoint's share of the window is free (see
	// window), and results someone does wait on (a synchronous test send,
	// an ordering key's next event) never linger. It lingers only while
	// the window has minSteadyRoom free, so that held results never keep
	// the engine from taking work. 10 ms rather than 3: 5.8 results a
	// commit instead of 2.0 at 500/s, Herald's CPU per delivery 0.92× at
	// 500/s and 0.98× at 1,000/s, publish → arrival unchanged; the live
	// feed hears of a success about 0.3 ms later at the median, and a
	// crash may send again what finished in the last 10 ms.
	steadyLinger  = 10 * time.Millisecond
	minSteadyRoom = 64
	// After a failed commit the recorder tries again after a backoff that
	// doubles from minRecordBackoff up to maxRecordBackoff.
	minRecordBackoff = 50 * time.Millisecond
	maxRecordBackoff = 5 * time.Second
	// A result that fails on its own degradeAfter times is stored without
	// its response body and headers, in case they are what the database
	// refuses.
	degradeAfter = 3
)

// recorderConfig is what the recorder needs of the engine's configuration.
type recorderConfig struct {
	DisableAfter int
	Now          func() time.Time
	Rand         func() float64
	// Outstanding reports how many results may still arrive soon, to
	// decide whether lingering for a fuller batch is worth it.
	Outstanding func() int
	// Free reports how many more deliveries the window would take now
	// (nil: none).
	Free func() int
	// Linger is how long a lone result may wait for others to share its
	// commit (0: it does not wait).
	Linger time.Duration
}

// recorder commits results in batches: one transaction per batch, as large
// as the results that queued while the previous batch committed. It owns
// the results until they are committed: a batch that fails to commit is
// kept and tried again with capped backoff, never dropped, and while the
// store refuses writes the recorder reports that it cannot commit, so the
// scheduler stops taking deliveries. On a retry each result gets its own
// savepoint, so that a result the store refuses (a poison result) does
// not hold the others back.
type recorder struct {
	cfg    recorderConfig
	driver Driver
	log    *slog.Logger
	in     chan *result
	// committed is told what each committed batch changed; released is
	// told about jobs given back without a record.
	committed func(*commitOutput)
	released  func([]*job)
	// tel receives the commits' metrics and spans.
	tel *telemetry

	healthy atomic.Bool
	done    chan struct{}
	// drainBy bounds how long Close waits for failed results to commit.
	drainBy atomic.Pointer[time.Time]
}

func newRecorder(cfg recorderConfig, d Driver, log *slog.Logger, size int) *recorder {
	r := &recorder{cfg: cfg, driver: d, log: log, in: make(chan *result, size), done: make(chan struct{}),
		tel: newTelemetry(nopMetrics{}, nil)}
	r.healthy.Store(true)
	return r
}

// canCommit reports whether the last commit succeeded.
func (r *recorder) canCommit() bool { return r.healthy.Load() }

// run records until in is closed and everything received is committed (or
// the drain deadline passes).
func (r *recorder) run() {
	defer close(r.done)
	var (
		pending []*result
		backoff time.Duration
		closed  bool
		linger  = time.NewTimer(0)
	)
	<-linger.C
	for {
		var batch []*result
		switch {
		case len(pending) > 0:
			if closed && r.pastDrain() {
				r.abandon(pending)
				return
			}
			batch, closed = r.await(pending, backoff, closed)
		case closed:
			return
		default:
			first, ok := <-r.in
			if !ok {
				return
			}
			batch = r.fill(append(make([]*result, 0, 64), first))
			if d := r.lingerFor(batch); d > 0 {
				batch, closed = r.linger(batch, linger, d)
			}
		}
		pending = r.flush(batch, backoff > 0)
		if len(pending) > 0 {
			backoff = min(max(2*backoff, minRecordBackoff), maxRecordBackoff)
		} else {
			backoff = 0
		}
	}
}

// await waits out a backoff before retrying pending results, taking the
// results that arrive meanwhile.
func (r *recorder) await(pending []*result, backoff time.Duration, closed bool) ([]*result, bool) {
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		if closed {
			<-t.C
			return pending, true
		}
		select {
		case x, ok := <-r.in:
			if !ok {
				closed = true
				continue
			}
			pending = append(pending, x)
		case <-t.C:
			return pending, false
		}
	}
}

func (r *recorder) linger(batch []*result, t *time.Timer, d time.Duration) ([]*result, bool) {
	closed := false
	t.Reset(d)
wait:
	for len(batch) < minLingerBatch {
		select {
		case x, ok := <-r.in:
			if !ok {
				closed = true
				break wait
			}
			batch = append(batch, x)
			if x.awaited() {
				break wait
			}
		case <-t.C:
			break wait
		}
	}
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	if closed {
		return batch, true
	}
	return r.fill(batch), false
}

// lingerFor returns how long a batch waits for more results before it
// commits: up to maxLinger under load, while more results are on their
// way; up to the configured linger at a steady rate; not at all for a
// full batch or one that holds a result someone waits on.
func (r *recorder) lingerFor(batch []*result) time.Duration {
	switch {
	case len(batch) >= minLingerBatch || slices.ContainsFunc(batch, (*result).awaited):
		return 0
	case len(batch) > 1 && r.cfg.Outstanding() > len(batch):
		return maxLinger
	case r.cfg.Linger > 0 && r.cfg.Free != nil && r.cfg.Free() >= minSteadyRoom:
		return r.cfg.Linger
	}
	return 0
}

// awaited reports whether something waits for the result's commit: a
// synchronous test send, or the next event of its ordering key, which an
// ordered endpoint sends only once this one is recorded.
func (r *result) awaited() bool {
	return r.done != nil || r.job.OrderingKey != ""
}

// fill adds the results that are already waiting.
func (r *recorder) fill(batch []*result) []*result {
	for len(batch) < maxRecordBatch {
		select {
		case x, ok := <-r.in:
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

// pastDrain reports whether Close's deadline for failed results has
// passed (no deadline: at once).
func (r *recorder) pastDrain() bool {
	t := r.drainBy.Load()
	return t == nil || time.Now().After(*t)
}

// abandon gives up on results at shutdown when the store still refuses
// them: their deliveries are due again (SQLite leases are in memory; row
// leases expire), so a lost record costs a duplicate, never a delivery.
func (r *recorder) abandon(pending []*result) {
	r.log.Error("shutting down with attempts the database refused to record; their deliveries will be sent again", "count", len(pending))
	jobs := make([]*job, 0, len(pending))
	for _, res := range pending {
		if res.done != nil {
			res.done <- recorded{err: errEngineClosed}
		}
		jobs = append(jobs, res.job)
	}
	r.released(jobs)
}

// flush records a batch and returns the results that could not be
// committed, to be tried again.
func (r *recorder) flush(batch []*result, isolate bool) []*result {
	var releases []*job
	toCommit := batch[:0:0]
	for _, res := range batch {
		if res.release || (res.resp != nil && res.resp.Outcome == destination.Interrupted) {
			releases = append(releases, res.job)
			if res.done != nil {
				res.done <- recorded{err: errInterrupted}
			}
			continue
		}
		toCommit = append(toCommit, res)
	}
	if len(releases) > 0 {
		r.released(releases)
	}
	if len(toCommit) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), time.Minute)
	defer cancel()
	ctx, span := r.tel.startRecord(ctx, toCommit)
	start := time.Now()
	out, failed, err := r.commit(ctx, toCommit, isolate)
	r.tel.endRecord(span, len(toCommit), len(failed), time.Since(start), err)
	if err != nil {
		r.healthy.Store(false)
		r.log.Error("record attempts; keeping them to try again", "count", len(toCommit), "err", err)
		return toCommit
	}
	r.healthy.Store(len(failed) < len(toCommit))
	for _, res := range failed {
		res.fails++
		r.log.Error("record attempt; keeping it to try again", "delivery_id", res.job.DeliveryID, "failures", res.fails, "err", res.errOf())
	}
	r.committed(out)
	return failed
}

// commitOutput is what a committed batch changed.
type commitOutput struct {
	results   []*result
	outcomes  []recorded       // per result
	changes   []DeliveryChange // per result
	endpoints []EndpointChange
	disabled  []disabledEndpoint
	failures  []failedDelivery // deliveries that failed for good
	paused    []EndpointChange // endpoints that asked for a pause
}

type disabledEndpoint struct {
	DisabledEndpoint
	reason      string
	consecutive int
}

// failedDelivery is a delivery that ended FAILED after its attempts, for
// webhook.failed.
type failedDelivery struct {
	AppID, EndpointID, URL, DeliveryID, EventID, EventType string
	Attempts, LastResponseStatus                           int
	LastError                                              string
	At                                                     time.Time
}

// endpointTally accumulates a batch's effect on one endpoint's counters.
type endpointTally struct {
	CounterDelta
	appID     string
	lastError string
	state     EndpointState
	// gone is the error of a 410 Gone answer ("" if none); pauseUntil is
	// when a pause the endpoint asked for ends (zero: none).
	gone       string
	pauseUntil time.Time
}

// commit records a batch in one transaction. With isolate, each result
// has its own savepoint and the results the store refuses are returned in
// failed instead of failing the batch.
func (r *recorder) commit(ctx context.Context, batch []*result, isolate bool) (*commitOutput, []*result, error) {
	now := r.cfg.Now().UTC()
	tx, err := r.driver.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit

	tallies := make(map[string]*endpointTally)
	var order []string
	for _, res := range batch {
		id := res.job.EndpointID
		if tallies[id] == nil {
			tallies[id] = &endpointTally{appID: res.job.AppID, CounterDelta: CounterDelta{EndpointID: id}}
			order = append(order, id)
		}
	}
	// Endpoint rows are locked (counters) in one order, so that replicas
	// recording at once cannot deadlock.
	slices.Sort(order)
	// The endpoints' current state decides whether failed deliveries may
	// be retried: an endpoint disabled while an attempt was in flight
	// gets no more attempts.
	states, err := tx.EndpointStates(ctx, order)
	if err != nil {
		return nil, nil, err
	}
	for id, t := range tallies {
		t.state = states[id]
	}

	// Decide what each result means, then record them: all at once, or
	// one by one under savepoints when isolating.
	comps := make([]Completion, len(batch))
	decided := make([]outcomeOf, len(batch))
	for i, res := range batch {
		comps[i], decided[i] = r.complete(res, tallies[res.job.EndpointID].state, now)
	}
	applied := make([]bool, len(batch))
	ok := make([]bool, len(batch))
	var failed []*result
	if !isolate {
		a, err := tx.Finish(ctx, comps)
		if err != nil {
			return nil, nil, err
		}
		copy(applied, a)
		for i := range ok {
			ok[i] = true
		}
	} else {
		for i, res := range batch {
			if err := tx.Savepoint(ctx, "result"); err != nil {
				return nil, nil, err
			}
			a, err := tx.Finish(ctx, comps[i:i+1])
			if err != nil {
				res.lastErr = err
				if rerr := tx.RollbackTo(ctx, "result"); rerr != nil {
					return nil, nil, rerr
				}
				failed = append(failed, res)
			} else {
				applied[i], ok[i] = a[0], true
			}
			if err := tx.ReleaseSavepoint(ctx, "result"); err != nil {
				return nil, nil, err
			}
		}
	}

	out := &commitOutput{
		results:  make([]*result, 0, len(batch)),
		outcomes: make([]recorded, 0, len(batch)),
		changes:  make([]DeliveryChange, 0, len(batch)),
	}
	for i, res := range batch {
		if !ok[i] {
			continue
		}
		d := decided[i]
		if !applied[i] && d.failed != nil {
			// Another attempt of the delivery was recorded after this
			// one's lease was lost, or it was cancelled meanwhile: the
			// attempt is logged, the delivery's state stays.
			d.failed = nil
		}
		out.results = append(out.results, res)
		out.outcomes = append(out.outcomes, d.rec)
		out.changes = append(out.changes, d.change)
		if d.failed != nil {
			out.failures = append(out.failures, *d.failed)
		}
		t := tallies[res.job.EndpointID]
		t.count(res, applied[i] && d.final)
		if d.gone && applied[i] {
			t.gone = res.resp.Error
		}
		if until := now.Add(d.pause); d.pause > 0 && until.After(t.pauseUntil) {
			t.pauseUntil = until
		}
	}

	for _, id := range order {
		t := tallies[id]
		if t.Successes == 0 && t.Failures == 0 {
			continue
		}
		consec, err := tx.AddCounters(ctx, t.CounterDelta)
		if err != nil {
			return nil, nil, err
		}
		out.endpoints = append(out.endpoints, EndpointChange{AppID: t.appID, EndpointID: id, Reason: "attempts recorded", At: now})
		if !t.pauseUntil.IsZero() {
			if err := tx.PauseEndpoint(ctx, id, t.pauseUntil); err != nil {
				return nil, nil, err
			}
			out.paused = append(out.paused, EndpointChange{AppID: t.appID, EndpointID: id, Reason: "paused", At: now})
		}
		gone := t.gone != "" && t.state.Active && !t.state.Deleted
		if gone || (r.cfg.DisableAfter > 0 && consec >= r.cfg.DisableAfter && t.state.Active && !t.state.Deleted && t.Consecutive > 0) {
			reason := fmt.Sprintf("disabled after %d consecutive failed deliveries; last error: %s", consec, t.lastError)
			if gone {
				reason = "disabled at once: the endpoint answered 410 Gone, which says it will never accept deliveries again"
			}
			ep, err := tx.DisableEndpoint(ctx, id, reason, now)
			if err != nil {
				return nil, nil, err
			}
			if ep != nil {
				out.disabled = append(out.disabled, disabledEndpoint{DisabledEndpoint: *ep, reason: reason, consecutive: consec})
				out.endpoints = append(out.endpoints, EndpointChange{AppID: t.appID, EndpointID: id, Reason: "disabled", At: now})
			}
		}
	}
	// The statistics roll-ups change with the attempts they count.
	if err := tx.AddStats(ctx, statsRows(out)); err != nil {
		return nil, nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, err
	}
	return out, failed, nil
}

// count adds a recorded result to the endpoint's tally.
func (t *endpointTally) count(res *result, final bool) {
	resp := res.resp
	if resp == nil {
		return // cancelled: no attempt
	}
	at := resp.Completed
	if resp.Outcome == destination.Deferred || resp.Outcome == destination.Skipped {
		return // not the endpoint's answer: its health stays as it was
	}
	if resp.Outcome == destination.Delivered {
		t.Successes++
		t.LastSuccess = &at
		if res.job.trigger != "TEST" {
			t.Reset, t.Consecutive = true, 0
		}
		return
	}
	t.Failures++
	t.LastFailure = &at
	t.lastError = resp.Error
	if final && res.job.trigger != "TEST" {
		t.Consecutive++
	}
}

// errOf returns why the result's last isolated commit failed.
func (res *result) errOf() error { return res.lastErr }

// outcomeOf is what recording a result will report.
type outcomeOf struct {
	rec    recorded
	change DeliveryChange
	// final: the delivery fails for good after its attempts (counts
	// toward auto-disable); failed describes it for webhook.failed.
	final  bool
	failed *failedDelivery
	// gone: the endpoint answered 410 Gone, which disables it at once;
	// pause: it asked to be left alone that long (Retry-After).
	gone  bool
	pause time.Duration
}

// complete decides what a result means for its delivery: the completion
// to record and what to report once it is.
func (r *recorder) complete(res *result, st EndpointState, now time.Time) (Completion, outcomeOf) {
	j := res.job
	ch := DeliveryChange{
		Kind: AttemptFinished, AppID: j.AppID, DeliveryID: j.DeliveryID, EventID: j.EventID,
		EndpointID: j.EndpointID, EventType: j.EventType, At: now,
	}
	if res.cancelled {
		reason := "endpoint disabled: the delivery was not attempted"
		if st.Deleted {
			reason = "endpoint deleted: the delivery was not attempted"
		}
		ch.Kind, ch.Status, ch.Error = Cancelled, "FAILED", reason
		return Completion{Lease: j.Lease, Update: DeliveryUpdate{Status: "FAILED", AttemptCount: j.AttemptCount, LastError: reason,
			CompletedAt: &now, UpdatedAt: now}}, outcomeOf{rec: recorded{status: "FAILED"}, change: ch}
	}
	resp, a := res.resp, j.attempt
	d := decide(resp, j.trigger, a.Number, a.Endpoint.Retry, st.Active && !st.Deleted, r.cfg.Rand())
	u := DeliveryUpdate{Status: d.status, AttemptCount: a.Number, LastResponseStatus: resp.Status, UpdatedAt: now}
	if resp.Outcome == destination.Deferred {
		u.AttemptCount = a.Number - 1 // no attempt used
	}
	started, completed := resp.Started.UTC(), resp.Completed.UTC()
	u.LastAttemptAt = &started
	if d.status == "RETRYING" {
		next := now.Add(d.retryIn)
		u.NextAttemptAt = &next
	} else {
		u.CompletedAt = &completed
	}
	if resp.Error != "" {
		u.LastError = resp.Error + d.note
	}
	row := attemptRow(j, resp, res.fails >= degradeAfter, res.lastErr)
	ch.Status, ch.Attempt, ch.AttemptID = d.status, a.Number, row.ID
	ch.ResponseStatus, ch.Duration, ch.Error, ch.NextAttemptAt = resp.Status, resp.Duration(), resp.Error, u.NextAttemptAt
	o := outcomeOf{rec: recorded{attemptID: row.ID, status: d.status}, change: ch, final: d.final,
		gone: resp.Gone && j.trigger != "TEST", pause: pauseFor(resp, a.Endpoint)}
	if d.final && j.trigger == "SCHEDULED" && !webhook.Reserved(j.EventType) {
		o.failed = &failedDelivery{AppID: j.AppID, EndpointID: j.EndpointID, URL: a.Endpoint.URL, DeliveryID: j.DeliveryID, EventID: j.EventID,
			EventType: j.EventType, Attempts: a.Number, LastResponseStatus: resp.Status, LastError: resp.Error, At: now}
	}
	return Completion{Lease: j.Lease, Attempt: row, Update: u}, o
}

// attemptRow returns the stored form of an attempt. degraded drops the
// response body and headers, with a note of why (the store refused them).
func attemptRow(j *job, resp *destination.Result, degraded bool, why error) *AttemptRow {
	reqHeaders, _ := json.Marshal(resp.RequestHeaders)
	respHeaders, _ := json.Marshal(resp.ResponseHeaders)
	row := &AttemptRow{
		ID: ids.NewAt(ids.Attempt, resp.Started), AppID: j.AppID, DeliveryID: j.DeliveryID, EndpointID: j.EndpointID,
		Number: j.attempt.Number, Trigger: j.trigger, Succeeded: resp.Outcome == destination.Delivered || resp.Outcome == destination.Skipped, RequestURL: resp.RequestURL,
		RequestHeaders: reqHeaders, ResponseStatus: resp.Status, ResponseHeaders: respHeaders, ResponseBody: resp.ResponseBody,
		Truncated: resp.Truncated, DurationMs: resp.Duration().Milliseconds(), Error: resp.Error,
		StartedAt: resp.Started.UTC(), CompletedAt: resp.Completed.UTC(),
	}
	if degraded {
		row.ResponseHeaders, row.ResponseBody, row.Truncated = []byte("[]"), "", true
		note := "response not stored: the database refused it"
		if why != nil {
			note += " (" + strings.ReplaceAll(why.Error(), "\n", " ") + ")"
		}
		if row.Error == "" {
			row.Error = note
		} else {
			row.Error += "; " + note
		}
	}
	return row
}

// decision is what an attempt's outcome means for its delivery.
type decision struct {
	status  string        // SUCCEEDED, RETRYING or FAILED
	retryIn time.Duration // RETRYING: wait before the next attempt
	// final: the delivery ended FAILED because of its attempts (not a
	// cancellation), which counts toward auto-disable.
	final bool
	note  string // appended to the error message
}

// decide applies the retry rules: a delivered attempt succeeds; a
// retryable or throttled failure is retried while attempts remain and the
// endpoint is active; a deferred one is retried without using an attempt;
// anything else fails the delivery. Test attempts are never retried and
// never final.
func decide(resp *destination.Result, trigger string, number int, policy webhook.RetryPolicy, active bool, r float64) decision {
	retries := resp.Outcome.Retries()
	switch {
	case resp.Outcome == destination.Delivered, resp.Outcome == destination.Skipped:
		return decision{status: "SUCCEEDED"}
	case trigger == "TEST":
		return decision{status: "FAILED"}
	case resp.Outcome == destination.Deferred && !active:
		return decision{status: "FAILED", note: " (not retried: the endpoint is disabled)"}
	case resp.Outcome == destination.Deferred:
		// No attempt used: the same attempt is due again.
		return decision{status: "RETRYING", retryIn: policy.NextDelay(max(1, number-1), resp.RetryAfter, r)}
	case retries && number < policy.MaxAttempts && !active:
		return decision{status: "FAILED", note: " (not retried: the endpoint is disabled)"}
	case retries && number < policy.MaxAttempts:
		return decision{status: "RETRYING", retryIn: policy.NextDelay(number, resp.RetryAfter, r)}
	case retries:
		return decision{status: "FAILED", final: true, note: fmt.Sprintf(" (gave up after %d attempts)", number)}
	default:
		return decision{status: "FAILED", final: true, note: " (permanent failure: not retried)"}
	}
}
