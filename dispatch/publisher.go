package dispatch

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"time"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/fair"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/filter"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// EventInput is an event to publish.
type EventInput struct {
	EventType string
	Payload   json.RawMessage
	// IdempotencyKey, if set, makes publishing again with the same key
	// return the original event and create nothing. Reusing a key for a
	// different type or payload is a CONFLICT.
	IdempotencyKey string
	// OrderingKey, if set, orders the event after the earlier ones of the
	// same key at endpoints whose ordering is KEY.
	OrderingKey string
	// DeliverAt, if set and in the future (at most MaxDeliverAhead), is
	// when the event's deliveries are sent; they are created at once.
	DeliverAt *time.Time
}

// Event is a stored event, as Publish returns it.
type Event struct {
	ID             string
	AppID          string
	EventType      string
	Payload        json.RawMessage
	IdempotencyKey *string
	OrderingKey    *string
	DeliverAt      *time.Time
	// DeliveryCount is how many deliveries the event fanned out to.
	DeliveryCount int
	CreatedAt     time.Time
	// Existing reports that the idempotency key was used before, so this is
	// the original event and nothing was created.
	Existing bool
}

// Publishing limits.
const (
	// MaxPublishBatch is the most events one Publish call takes.
	MaxPublishBatch = 100
	// DefaultMaxPayload is the default size limit of one payload.
	DefaultMaxPayload = 256 << 10
	// maxGroupEvents bounds how many events one group commit stores.
	maxGroupEvents = 2000
	// MaxPublishDeliveries is the most deliveries one Publish call may
	// create (its events times the endpoints each goes to): it bounds how
	// long one call's transaction holds the database's writer.
	MaxPublishDeliveries = 10000
)

// Errors of publishing and sending.
var (
	// ErrNotStarted is returned by operations that need a running engine.
	ErrNotStarted = errors.New("dispatch: engine not started")
	// errEngineClosed is returned once the engine is shutting down.
	errEngineClosed = errors.New("dispatch: engine closed")
)

// Publish stores an event of the viewer's app and one PENDING delivery per
// active endpoint subscribed to its type, in one transaction, and returns
// once they are committed. If its idempotency key was used before, Publish
// returns the original event and creates nothing. Faults name fields
// "input.<field>".
func (e *Engine) Publish(ctx context.Context, in EventInput) (*Event, error) {
	evs, err := e.publish(ctx, []EventInput{in}, func(int) string { return "input" })
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}

// PublishBatch publishes up to MaxPublishBatch events in one transaction,
// as Publish does each, and returns them in input order. Faults name fields
// "input[i].<field>".
func (e *Engine) PublishBatch(ctx context.Context, inputs []EventInput) ([]*Event, error) {
	return e.publish(ctx, inputs, func(i int) string { return fmt.Sprintf("input[%d]", i) })
}

// publishReq is one caller's publish waiting for the group commit.
type publishReq struct {
	ctx    context.Context
	appID  string
	inputs []EventInput
	prefix func(int) string
	// exclude is an endpoint the events must not go to (meta-events are
	// never sent to the endpoint they are about).
	exclude string
	// traceParent is the publish span's, stored with each event.
	traceParent string
	// audit is the record of the API mutation that publishes (nil: none,
	// as for Herald's own events), stored with the events; auditFields
	// describe the publish, the events' IDs added once they have them.
	audit       *audit.Row
	auditFields map[string]any
	reply       chan publishReply

	// snap is the app's subscriber list the events were matched against
	// before the transaction, on the caller's goroutine (prepare), and
	// matched[i] the endpoints inputs[i] goes to: the group commit only
	// finishes the matches of filters on the event's ID or timestamp,
	// which cost a few steps each. If the app's endpoints changed since,
	// the commit answers stale and the caller matches again.
	snap    subsSnapshot
	matched [][]prematch
}

// prematch is an endpoint an event goes to, as far as its type and
// payload tell.
type prematch struct {
	k int // index in the snapshot's subscribers
	// p finishes the filter's match once the event has an ID and a
	// timestamp.
	p filter.Prepared
	// tooExpensive reports that the endpoint's filter ran out of budget
	// on the event: its delivery is created FAILED, saying so.
	tooExpensive bool
}

type publishReply struct {
	events []*Event
	err    error
	// stale: the app's endpoints changed after the events were matched;
	// match them again and resubmit.
	stale bool
}

// maxStaleRounds bounds how many times a publish is matched again because
// its app's endpoints kept changing before it could be stored.
const maxStaleRounds = 20

func (e *Engine) publish(ctx context.Context, inputs []EventInput, prefix func(int) string) ([]*Event, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, tenant.ErrNoViewer
	}
	if len(inputs) == 0 {
		return nil, fault.Invalid("input", "publish at least one event")
	}
	if len(inputs) > MaxPublishBatch {
		return nil, fault.Invalid("input", "at most %d events per call, got %d: split the batch", MaxPublishBatch, len(inputs))
	}
	field := func(i int, name string) string { return prefix(i) + "." + name }
	for i, in := range inputs {
		if len(in.Payload) > e.cfg.MaxPayload {
			return nil, fault.Invalid(field(i, "payload"), "is %s; the limit is %s: send a reference to large data instead of the data", byteSize(len(in.Payload)), byteSize(e.cfg.MaxPayload))
		}
		if len(in.IdempotencyKey) > 255 {
			return nil, fault.Invalid(field(i, "idempotencyKey"), "must be at most 255 characters")
		}
		if len(in.OrderingKey) > webhook.MaxOrderingKeyLen {
			return nil, fault.Invalid(field(i, "orderingKey"), "must be at most %d characters", webhook.MaxOrderingKeyLen)
		}
		if in.DeliverAt != nil {
			if ahead := in.DeliverAt.Sub(e.cfg.Now()); ahead > webhook.MaxDeliverAhead {
				return nil, fault.Invalid(field(i, "deliverAt"), "is %s ahead; schedule at most %s ahead", ahead.Round(time.Hour), webhook.MaxDeliverAhead)
			}
		}
		if err := e.cfg.Catalog.CheckPublish(ctx, v.AppID, in.EventType, in.Payload); err != nil {
			return nil, fault.Prefix(prefix(i), err)
		}
	}
	ctx, span := e.tel.startPublish(ctx, v.AppID, len(inputs))
	req := &publishReq{ctx: ctx, appID: v.AppID, inputs: inputs, prefix: prefix, reply: make(chan publishReply, 1)}
	if span != nil {
		req.traceParent = traceParent(span.SpanContext())
	}
	req.auditFields = publishFields(inputs)
	req.audit = audit.Take(ctx, audit.Change{TargetType: "Event"}, e.cfg.Now())
	r := e.commit(ctx, req)
	if r.err != nil {
		audit.Untake(ctx, req.audit)
	}
	endPublish(span, r.events, r.err)
	return r.events, r.err
}

// commit matches a publish's events against its app's endpoints, hands it
// to the group commit and waits for the answer, matching again while the
// app's endpoints change under it.
func (e *Engine) commit(ctx context.Context, req *publishReq) publishReply {
	for round := 0; ; round++ {
		if err := e.prepare(ctx, req); err != nil {
			return publishReply{err: err}
		}
		if err := e.submitPublish(ctx, req); err != nil {
			return publishReply{err: err}
		}
		// Waiting for the commit of a small publish is not work on the
		// cores: the caller's turn (package fair) is given back meanwhile,
		// for the app's other publishes to join the commit. Storing a
		// fan-out of more than a part (see partRows) is work done for the
		// caller, in several transactions: it keeps its turn, so that its
		// app's other operations do not take another core meanwhile.
		resume := func() {}
		if req.rows()-len(req.inputs) <= partRows {
			resume = fair.Pause(ctx)
		}
		select {
		case r := <-req.reply:
			resume()
			if !r.stale {
				return r
			}
			if round == maxStaleRounds {
				return publishReply{err: fmt.Errorf("publish: the app's endpoints changed %d times while the events were being stored; publish again", round+1)}
			}
		case <-ctx.Done():
			resume()
			// The group commit may still store the events; a retry with
			// the same idempotency key finds them.
			return publishReply{err: ctx.Err()}
		}
	}
}

// matchSlice is how long prepare matches filters, or decodes a payload
// for them, before it lets other goroutines run: Go preempts a goroutine
// after 10 ms, and an app's heaviest filters take hundreds of ms a
// publish, while another app's publish, ready to be answered, waited for
// the core. Decoding a 120 KB payload for filters ran 12-20 ms at a
// stretch next to TestNoisyNeighbour's load (Go's execution tracer).
const matchSlice = 500 * time.Microsecond

// prepare matches a publish's events against its app's current
// subscribers: event types, and payload filters as far as they look at the
// payload, each within its budget. It runs on the caller's goroutine,
// before the transaction, so that what one app's filters cost is paid by
// its own publishes, never by a transaction other apps wait for.
func (e *Engine) prepare(ctx context.Context, req *publishReq) (err error) {
	snap, err := e.snapshotSubs(ctx, req.appID)
	if err != nil {
		return fmt.Errorf("publish: load endpoints: %w", err)
	}
	req.snap = snap
	req.matched = make([][]prematch, len(req.inputs))
	defer func() {
		if n := req.rows() - len(req.inputs); n > MaxPublishDeliveries && err == nil {
			err = fault.Invalid("input", "these %d events would create %d deliveries (each event once per endpoint it goes to); one call creates at most %d: publish them in smaller batches", len(req.inputs), n, MaxPublishDeliveries)
		}
	}()
	ran := time.Now()
	yield := func() {
		if time.Since(ran) > matchSlice {
			runtime.Gosched()
			ran = time.Now()
		}
	}
	for i, in := range req.inputs {
		var env *filter.Envelope // decoded once, if some filter asks
		budget := filter.MaxEventSteps
		for k, s := range snap.subs {
			if s.EndpointID == req.exclude || !webhook.MatchAny(s.Patterns, in.EventType) || s.broken {
				continue
			}
			m := prematch{k: k}
			if s.match != nil {
				yield()
				if env == nil {
					env = &filter.Envelope{Type: in.EventType, Payload: in.Payload, Budget: &budget, Yield: yield}
				}
				p, err := s.match.Prepare(env)
				switch {
				case errors.Is(err, filter.ErrTooExpensive):
					m.tooExpensive = true
				case err != nil:
					return fmt.Errorf("publish: match endpoint %s: %w", s.EndpointID, err)
				default:
					m.p = p
				}
			}
			req.matched[i] = append(req.matched[i], m)
		}
	}
	return nil
}

// snapshotSubs returns an app's subscribers with what tells whether they
// are still current: from the cache, else read outside any transaction
// and cached.
func (e *Engine) snapshotSubs(ctx context.Context, appID string) (subsSnapshot, error) {
	snap, load := e.subs.snapshot(appID)
	if load == nil {
		return snap, nil
	}
	subs, version, err := e.cfg.Driver.Subscribers(tenant.System(ctx), appID)
	if err != nil {
		return subsSnapshot{}, err
	}
	compileFilters(e.log, subs, load.prev)
	load.subs, load.version = subs, version
	e.subs.store(load)
	return load.snapshot(), nil
}

func (e *Engine) submitPublish(ctx context.Context, req *publishReq) error {
	e.pubMu.RLock()
	defer e.pubMu.RUnlock()
	if !e.started.Load() {
		return ErrNotStarted
	}
	if e.pubClosed {
		return errEngineClosed
	}
	select {
	case e.publishes <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runPublisher commits publishes in groups: every request that arrives
// while a transaction commits joins the next one, so concurrent callers
// share commits. A group runs without savepoints; when a request in it is
// refused or fails, the group is rolled back and its requests run again
// each under its own savepoint, so one failing does not fail the others.
//
// A group holds at most maxGroupEvents events and maxGroupRows rows
// (events and deliveries), smallest requests first: one app's publish that
// fans out to a thousand endpoints commits in a transaction of its own
// (on SQLite, of its first partRows deliveries, the rest in parts between
// groups), and another app's small publish, arriving meanwhile, never
// waits for more than one such transaction.
func (e *Engine) runPublisher() {
	defer close(e.pubDone)
	var large chan *publishReq // the large publishes' lane, if any
	if e.shared {
		large = make(chan *publishReq, maxGroupRequests)
		laneDone := make(chan struct{})
		go func() {
			defer close(laneDone)
			for r := range large {
				e.commitPublishes([]*publishReq{r})
			}
		}()
		defer func() {
			close(large)
			<-laneDone
		}()
	}
	var pending, batch []*publishReq
	var last time.Time // when the last group's commit ended
	var q parts        // fan-outs being stored in parts
	open := true
	for open || len(pending) > 0 || len(q.queue) > 0 {
		if open && !q.ready(pending) {
			r, ok := e.nextPublish(&q)
			if !ok {
				open = false
			} else if r != nil {
				pending = append(pending, r)
			}
		}
	fill:
		for open && len(pending) < maxGroupRequests {
			select {
			case r, ok := <-e.publishes:
				if !ok {
					open = false
					break fill
				}
				pending = append(pending, r)
			default:
				break fill
			}
		}
		if open && len(pending) > 0 && len(pending) < lingerGroup && time.Since(last) < lingerBusy {
			pending, open = e.linger(pending)
		}
		if large != nil {
			pending = divert(pending, large)
		}
		waits := q.waiting
		closing := !open && q.next(time.Now()) == nil
		if closing {
			// The parts left failed: they are stored at the next start,
			// and the publishes that waited for them are answered now.
			waits = func(string) bool { return false }
		}
		batch, pending = takeGroup(batch[:0], pending, waits)
		stored := len(batch) > 0
		if stored {
			outs := e.commitPublishes(batch)
			last = time.Now()
			q.stored(batch, last)
			for _, out := range outs {
				if out != nil {
					q.push(out.parts...)
				}
			}
			clear(batch)
		}
		// A part between groups: another app's publish waits for at most
		// one. Alone, parts are stored together (whether others are
		// active is looked up only when parts are queued).
		alone := len(q.queue) > 0 && len(e.publishes) == 0 && !q.anyFree(pending) && !q.othersActive(time.Now())
		if e.runParts(&q, alone) {
			stored = true
		}
		if stored {
			// The callers just answered and the workers just handed jobs
			// wait on this goroutine's processor, and the next
			// transaction runs mostly in SQLite's C code: on busy cores
			// they waited there until the runtime took the processor back,
			// 10 ms and more (TestNoisyNeighbour, from commit to answer:
			// p90 10.6 ms, p99 18.9 ms). Yielding lets them run first
			// (p90 0.6 ms, p99 2.6 ms); it costs a trip through the
			// scheduler per transaction.
			runtime.Gosched()
		}
		if closing && len(pending) == 0 {
			q.answerAll()
			break
		}
	}
}

// nextPublish waits for a publish, or until a part is due, and returns
// the publish if one came (nil otherwise); ok is false once publishes are
// closed.
func (e *Engine) nextPublish(q *parts) (r *publishReq, ok bool) {
	d := q.wait(time.Now())
	switch {
	case d < 0:
		r, ok = <-e.publishes
		return r, ok
	case d == 0:
		select {
		case r, ok = <-e.publishes:
			return r, ok
		default:
			return nil, true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r, ok = <-e.publishes:
		return r, ok
	case <-t.C:
		return nil, true
	}
}

// laneRows is the size from which a publish is large: on a database that
// takes concurrent writers (PostgreSQL), large publishes (a fan-out to
// hundreds of endpoints) commit one at a time on a lane of their own, so
// that the small ones, of other apps too, are not stored behind them: a
// group then waits for the commit of at most maxGroupRows rows, never for
// one of MaxPublishDeliveries. Next to an app publishing to a thousand
// endpoints, this took another app's publish p99 from 77 to 27-31 ms
// (TestNoisyNeighbour on PostgreSQL). SQLite has a single writer: a second
// lane there would only wait for its lock; it stores large fan-outs in
// parts instead (see partRows).
const laneRows = maxGroupRows / 4

// divert moves the large publishes of pending to their lane, keeping the
// others in order.
func divert(pending []*publishReq, lane chan<- *publishReq) []*publishReq {
	rest := pending[:0]
	for _, r := range pending {
		if r.rows() > laneRows {
			lane <- r
			continue
		}
		rest = append(rest, r)
	}
	clear(pending[len(rest):])
	return rest
}

// Under load, the publisher lingers a moment for more publishes before it
// commits a small group: a commit costs about as much CPU as the inserts
// of a few events (SQLite writes a page of each table and index it
// touched), so when publishes are already waiting as a commit ends, fewer
// and fuller commits leave more of the machine for the publishes
// themselves. A publish that finds the publisher idle (no commit ended
// within lingerBusy), as at a steady few hundred a second, never waits:
// there lingering would only add latency (a timer of 300 µs fires about a
// millisecond later on Linux).
const (
	lingerGroup = 16                     // publishes that make a group full enough
	lingerBusy  = 200 * time.Microsecond // a commit ended this recently means load
	lingerFor   = 300 * time.Microsecond // the longest a group waits
)

// linger adds to pending the publishes that arrive within lingerFor, until
// the group holds lingerGroup of them.
func (e *Engine) linger(pending []*publishReq) ([]*publishReq, bool) {
	t := time.NewTimer(lingerFor)
	defer t.Stop()
	for len(pending) < lingerGroup {
		select {
		case r, ok := <-e.publishes:
			if !ok {
				return pending, false
			}
			pending = append(pending, r)
		case <-t.C:
			return pending, true
		}
	}
	return pending, true
}

// Group commit bounds.
const (
	// maxGroupRows bounds the rows (events and deliveries) of one group
	// commit, unless one request alone has more (at most
	// MaxPublishDeliveries and its events).
	maxGroupRows = 1000
	// maxGroupRequests bounds the requests taken from the queue for one
	// group.
	maxGroupRequests = 512
)

// rows estimates the rows a request stores: its events and the deliveries
// they matched when prepared.
func (r *publishReq) rows() int {
	n := len(r.inputs)
	for _, m := range r.matched {
		n += len(m)
	}
	return n
}

// takeGroup moves the requests of the next group from pending to batch:
// the smallest first, within maxGroupEvents and maxGroupRows (at least
// one unless every app waits), keeping the others in pending in their
// order. The requests of apps that waits names stay in pending.
func takeGroup(batch, pending []*publishReq, waits func(app string) bool) ([]*publishReq, []*publishReq) {
	order := make([]int, 0, len(pending))
	for i, r := range pending {
		if !waits(r.appID) {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(pending[a].rows(), pending[b].rows()) })
	taken := make([]bool, len(pending))
	events, rows := 0, 0
	for _, i := range order {
		r := pending[i]
		if len(batch) > 0 && (events+len(r.inputs) > maxGroupEvents || rows+r.rows() > maxGroupRows) {
			break
		}
		batch = append(batch, r)
		taken[i] = true
		events, rows = events+len(r.inputs), rows+r.rows()
	}
	rest := pending[:0]
	for i, r := range pending {
		if !taken[i] {
			rest = append(rest, r)
		}
	}
	clear(pending[len(rest):])
	return batch, rest
}

// publishOutput is what one publish stored.
type publishOutput struct {
	events    []*Event
	published []EventPublished
	created   []DeliveryChange
	// jobs are the new deliveries handed to the scheduler, leased to this
	// engine; reserved counts their room in the window per endpoint.
	jobs     []*job
	reserved map[string]int
	// unleased are endpoints with new deliveries left to claims; held are
	// the leases that keep those from claims until the feeds have heard
	// of them (drivers whose leases cost nothing only).
	unleased []string
	held     []Lease
	// app is the publishing app, whose share of the window reserved
	// counts against.
	app string
	// parts are the rest of the fan-out, stored as parts.
	parts []*fanoutPart
}

func (o *publishOutput) unreserve(w *window) {
	for ep, n := range o.reserved {
		w.release(ep, o.app, n)
	}
	o.reserved, o.jobs = nil, nil
}

// commitPublishes stores a group of publishes, answers them, and returns
// what each stored (nil for those that stored nothing).
func (e *Engine) commitPublishes(batch []*publishReq) []*publishOutput {
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), time.Minute)
	defer cancel()
	replies := make([]publishReply, len(batch))
	outs := make([]*publishOutput, len(batch))
	start := time.Now()
	var live []int // requests whose callers still wait
	err := func() error {
		tx, err := e.cfg.Driver.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after commit
		now := e.cfg.Now().UTC()
		versions := make(map[string]int64, 1)
		for i, req := range batch {
			if err := req.ctx.Err(); err != nil {
				replies[i].err = err // the caller gave up: store nothing
				continue
			}
			current, err := e.current(ctx, tx, req, versions)
			if err != nil {
				return err
			}
			if !current {
				replies[i].stale = true
				continue
			}
			live = append(live, i)
		}
		if len(live) == 0 {
			return tx.Commit()
		}
		// All together first, with no savepoint: one statement per kind
		// of row, however many requests. Should one of them be refused,
		// or a statement fail, the whole transaction is rolled back and
		// each request stored again on its own (storeEach), so that it
		// fails alone. Refusals are rare; savepoints in every commit
		// cost a statement each, and on PostgreSQL a round trip.
		stored, refused, err := e.storeGroup(ctx, tx, pick(batch, live), now)
		if err == nil && refused == nil {
			for k, i := range live {
				outs[i] = stored[k]
			}
			return tx.Commit()
		}
		if rerr := tx.Rollback(); rerr != nil {
			return rerr
		}
		if len(live) == 1 {
			replies[live[0]].err = cmp.Or(refused, err)
			return nil
		}
		return e.storeEach(ctx, batch, live, now, outs, replies)
	}()
	events := 0
	for _, out := range outs {
		if out != nil {
			events += len(out.published)
		}
	}
	e.tel.metrics.PublisherCommit(events, time.Since(start), err)
	if err != nil {
		for i := range replies {
			if replies[i].err == nil {
				replies[i] = publishReply{err: fmt.Errorf("publish: %w", err)}
			}
		}
		for _, out := range outs {
			if out != nil {
				out.unreserve(e.window)
			}
		}
		outs = nil
	}
	for i, out := range outs {
		if out != nil {
			replies[i].events = out.events
		}
	}
	// Feeds hear of the new deliveries before anything can send them:
	// hand-offs come after, and so does the release of the deliveries
	// held back from claims until now (see held).
	for _, out := range outs {
		if out != nil {
			e.announce(out)
		}
	}
	for i, req := range batch {
		if outs != nil && outs[i] != nil && len(outs[i].parts) > 0 {
			out := outs[i]
			// Answered once the last part is stored: the app's turn,
			// held until then, covers its fan-out's commits too.
			last := out.parts[len(out.parts)-1]
			last.reply, last.answer = req.reply, replies[i]
			continue
		}
		req.reply <- replies[i]
	}
	for _, out := range outs {
		if out != nil {
			e.afterPublish(out)
		}
	}
	return outs
}

// current reports whether the subscribers a request was matched against
// are still the app's: nothing invalidated them here and, with a database
// shared with other engines, the app's endpoints version read in tx is
// theirs. versions caches the versions read in tx, per app.
func (e *Engine) current(ctx context.Context, tx Tx, req *publishReq, versions map[string]int64) (bool, error) {
	if !e.subs.current(req.appID, req.snap) {
		return false, nil
	}
	if !e.shared {
		return true, nil
	}
	v, ok := versions[req.appID]
	if !ok {
		var err error
		if v, err = tx.EndpointsVersion(ctx, req.appID); err != nil {
			return false, err
		}
		versions[req.appID] = v
	}
	if v != req.snap.version {
		// Another replica changed the app's endpoints, and told this one,
		// but not yet.
		e.subs.invalidate(req.appID)
		return false, nil
	}
	return true, nil
}

// pick returns batch[i] for each i in which.
func pick(batch []*publishReq, which []int) []*publishReq {
	reqs := make([]*publishReq, len(which))
	for k, i := range which {
		reqs[k] = batch[i]
	}
	return reqs
}

// storeEach stores each of the requests batch[i] for i in which on its
// own, under a savepoint, in one new transaction: a request refused, or
// whose statements fail, gets its error as its reply and the others are
// stored.
func (e *Engine) storeEach(ctx context.Context, batch []*publishReq, which []int, now time.Time, outs []*publishOutput, replies []publishReply) error {
	tx, err := e.cfg.Driver.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit
	for _, i := range which {
		if err := tx.Savepoint(ctx, "publish"); err != nil {
			return err
		}
		stored, refused, err := e.storeGroup(ctx, tx, batch[i:i+1], now)
		if err == nil && refused != nil {
			err = refused
		}
		if err != nil {
			if rerr := tx.RollbackTo(ctx, "publish"); rerr != nil {
				return rerr
			}
			replies[i].err = err
		} else {
			outs[i] = stored[0]
		}
		if rerr := tx.ReleaseSavepoint(ctx, "publish"); rerr != nil {
			return rerr
		}
	}
	if err := tx.Commit(); err != nil {
		for _, i := range which {
			if outs[i] != nil {
				outs[i].unreserve(e.window)
				outs[i] = nil
			}
		}
		return err
	}
	return nil
}

// announce reports a publish's new events and deliveries to the feeds.
func (e *Engine) announce(out *publishOutput) {
	e.tel.metrics.EventsPublished(len(out.published))
	for _, p := range out.published {
		e.cfg.Observer.EventPublished(p)
	}
	for _, c := range out.created {
		e.cfg.Observer.DeliveryChanged(c)
	}
}

// afterPublish hands a publish's new deliveries to the scheduler and lets
// claims take the others.
func (e *Engine) afterPublish(out *publishOutput) {
	if len(out.jobs) > 0 {
		e.sched.handOff(out.jobs)
	}
	if len(out.held) > 0 {
		ctx, cancel := context.WithTimeout(tenant.System(context.Background()), 10*time.Second)
		if err := e.cfg.Driver.Release(ctx, out.held, e.cfg.Now().UTC()); err != nil {
			e.log.Error("release new deliveries to claims", "count", len(out.held), "err", err)
		}
		cancel()
	}
	if len(out.unleased) > 0 {
		e.wake(out.unleased...) // claims find them, here or on a peer
	}
}

// memoryLeaser is implemented by drivers whose leases live in memory, for
// which holding a delivery costs nothing (SQLiteDriver): their engine is
// the only one on the database.
type memoryLeaser interface{ leasesInMemory() }

func inMemory(d Driver) bool {
	_, ok := d.(memoryLeaser)
	return ok
}

// storeGroup stores the events of reqs and their deliveries (one per
// active endpoint subscribed to an event's type, except the request's
// exclude) in tx, with one statement per kind of row however many
// requests there are. Inputs whose idempotency key was used before return
// the original event. The new deliveries of endpoints whose configuration the
// engine knows are leased to it as they are inserted, within the window,
// and handed off.
//
// A request that is refused (an idempotency key reused for another event)
// is returned as refused, with nothing stored of any request's deliveries
// and the window's reservations undone: the caller rolls back the events.
//
// The group's events and deliveries are stamped with now and take their
// IDs from one sequence, so that ordered delivery, which sorts deliveries
// created together by ID, sends them in the order of their events.
func (e *Engine) storeGroup(ctx context.Context, tx Tx, reqs []*publishReq, now time.Time) (outs []*publishOutput, refused, err error) {
	seq := ids.NewSequence(now)
	outs = make([]*publishOutput, len(reqs))
	var rows []*EventRow
	matches := make([][][]match, len(reqs))
	for i, req := range reqs {
		outs[i] = &publishOutput{events: make([]*Event, len(req.inputs)), app: req.appID}
		var evs []*EventRow
		evs, matches[i] = e.newEvents(req, now, seq)
		rows = append(rows, evs...)
	}
	existing, err := tx.InsertEvents(ctx, rows)
	if err != nil {
		return nil, nil, err
	}
	var leased, dueNow, dueLater, failed []DeliveryRow
	lease := &Lease{Token: e.worker, Until: now.Add(e.cfg.Lease)}
	undo := func() {
		for _, out := range outs {
			out.unreserve(e.window)
		}
	}
	room := -1 // deliveries a request stores now, the rest in parts
	pt, inParts := tx.(partTx)
	if inParts && !e.shared {
		room = partRows
	}
	var stored []StoredPart
	off := 0
	for i, req := range reqs {
		n := len(req.inputs)
		p, err := e.newDeliveries(req, rows[off:off+n], matches[i], existing[off:off+n], lease, now, seq, room, outs[i])
		off += n
		if err != nil {
			undo()
			return nil, err, nil
		}
		leased, dueNow, dueLater = append(leased, p.leased...), append(dueNow, p.dueNow...), append(dueLater, p.dueLater...)
		failed = append(failed, p.failed...)
		if p.later != nil {
			parts, s, err := splitParts(p.later)
			if err != nil {
				undo()
				return nil, nil, err
			}
			outs[i].parts, stored = parts, append(stored, s...)
		}
	}
	if len(stored) > 0 {
		if err := pt.InsertParts(ctx, stored); err != nil {
			undo()
			return nil, nil, err
		}
	}
	if err := tx.InsertAudit(ctx, auditRows(reqs, outs, now)); err != nil {
		undo()
		return nil, nil, err
	}
	// Deliveries due now are held from claims until the feeds have heard
	// of them, where holding costs nothing.
	var hold *Lease
	if !e.shared && len(dueNow) > 0 {
		hold = lease
		out := outs[0]
		for _, r := range dueNow {
			out.held = append(out.held, Lease{DeliveryID: r.ID, EndpointID: r.EndpointID, Token: hold.Token, Until: hold.Until})
		}
	}
	for _, part := range []struct {
		rows  []DeliveryRow
		lease *Lease
	}{{leased, lease}, {dueNow, hold}, {dueLater, nil}, {failed, nil}} {
		if len(part.rows) == 0 {
			continue
		}
		if err := tx.InsertDeliveries(ctx, part.rows, part.lease); err != nil {
			undo()
			return nil, nil, err
		}
	}
	return outs, nil, nil
}

// publishFields describes a publish for its audit record: the event types,
// how many events, and their keys (never their payloads).
func publishFields(inputs []EventInput) map[string]any {
	types := make([]string, 0, 1)
	var keys, orderingKeys []string
	for _, in := range inputs {
		types = appendNew(types, in.EventType)
		if in.IdempotencyKey != "" {
			keys = append(keys, in.IdempotencyKey)
		}
		if in.OrderingKey != "" {
			orderingKeys = appendNew(orderingKeys, in.OrderingKey)
		}
	}
	f := map[string]any{"events": len(inputs), "eventTypes": types}
	if keys != nil {
		f["idempotencyKeys"] = keys
	}
	if orderingKeys != nil {
		f["orderingKeys"] = orderingKeys
	}
	return f
}

// auditRows returns the audit records of the requests that have one, each
// targeting its first event and listing its events' IDs.
func auditRows(reqs []*publishReq, outs []*publishOutput, now time.Time) []*audit.Row {
	var rows []*audit.Row
	for i, req := range reqs {
		if req.audit == nil {
			continue
		}
		r := *req.audit
		ids := make([]string, 0, len(outs[i].events))
		for _, ev := range outs[i].events {
			if ev != nil {
				ids = append(ids, ev.ID)
			}
		}
		if len(ids) > 0 {
			r.TargetID = ids[0]
		}
		// The request's fields are its own: a group committed again
		// after a refusal sets the IDs again.
		req.auditFields["eventIds"] = ids
		r.Changes, r.CreatedAt = audit.EncodeFields(req.auditFields), now
		rows = append(rows, &r)
	}
	return rows
}

// match is an endpoint an event goes to: the snapshot's subscriber k, or,
// if failed is not empty, a delivery to it created FAILED with that
// reason.
type match struct {
	k      int
	failed string
}

// tooExpensiveReason is the error of a delivery whose endpoint's filter
// ran out of its budget on the event.
var tooExpensiveReason = "not sent: " + filter.ErrTooExpensive.Error() + "; retry the delivery to send it anyway"

// newEvents returns the rows of a request's events, with IDs from seq,
// and, for each, the endpoints it goes to: its prepared matches, finished
// with the event's ID and timestamp.
func (e *Engine) newEvents(req *publishReq, now time.Time, seq *ids.Sequence) ([]*EventRow, [][]match) {
	rows := make([]*EventRow, len(req.inputs))
	matches := make([][]match, len(req.inputs))
	stamp := now.Format(time.RFC3339Nano)
	for i, in := range req.inputs {
		rows[i] = &EventRow{ID: seq.Next(ids.Event), AppID: req.appID, EventType: in.EventType, Payload: in.Payload,
			IdempotencyKey: in.IdempotencyKey, OrderingKey: in.OrderingKey, CreatedAt: now, TraceParent: req.traceParent}
		if in.DeliverAt != nil && in.DeliverAt.After(now) {
			at := in.DeliverAt.UTC()
			rows[i].DeliverAt = &at
		}
		for _, pm := range req.matched[i] {
			switch {
			case pm.tooExpensive:
				matches[i] = append(matches[i], match{k: pm.k, failed: tooExpensiveReason})
			case pm.p.Match(rows[i].ID, stamp):
				matches[i] = append(matches[i], match{k: pm.k})
			}
		}
		rows[i].DeliveryCount = len(matches[i])
	}
	return rows, matches
}

// newDeliveryRows are the deliveries of a request to insert: leased to
// the engine (handed off), due now, due later, and failed at once; and
// those left for parts of the fan-out (see partRows).
type newDeliveryRows struct {
	leased, dueNow, dueLater, failed []DeliveryRow

	later *laterFanout
}

// newDeliveries fills out with what a request stores once its events are
// inserted: its events (existing[i] is the original of rows[i] if its
// idempotency key was used before), their deliveries, and the jobs handed
// off under lease, with delivery IDs from seq. With room at 0 or more, it
// stores at most room deliveries and leaves the others for parts, whose
// IDs it skips in seq. It refuses the request if a key was reused for a
// different event.
func (e *Engine) newDeliveries(req *publishReq, rows []*EventRow, matches [][]match, existing []*EventRow, lease *Lease, now time.Time, seq *ids.Sequence, room int, out *publishOutput) (newDeliveryRows, error) {
	var p newDeliveryRows
	subs := req.snap.subs
	stored := 0
	for i, in := range req.inputs {
		ev := rows[i]
		if old := existing[i]; old != nil {
			if !sameEvent(old, ev) {
				return p, fault.Conflictf("IDEMPOTENCY_KEY_REUSED",
					"%s.idempotencyKey %q was already used for event %s with a different type or payload: use a new key for a different event", req.prefix(i), in.IdempotencyKey, old.ID)
			}
			out.events[i] = eventOf(old, true)
			continue
		}
		var msg *message
		for j, m := range matches[i] {
			if room >= 0 && stored >= room {
				if p.later == nil {
					p.later = newLaterFanout(req, rows, matches, *seq, now, room)
				}
				p.later.add(i, j)
				continue
			}
			stored++
			sub := subs[m.k]
			row := newDeliveryRow(req.appID, ev, in, sub, m, seq.Next(ids.Delivery), now)
			out.created = append(out.created, createdChange(row, now))
			switch {
			case row.Failed != "":
				p.failed = append(p.failed, row)
				continue
			case ev.DeliverAt != nil:
				p.dueLater = append(p.dueLater, row) // claimed when due
				continue
			}
			cfg := e.handOffConfig(out, sub.EndpointID, sub.Controlled)
			if cfg == nil {
				out.unleased = appendNew(out.unleased, sub.EndpointID)
				p.dueNow = append(p.dueNow, row)
				continue
			}
			p.leased = append(p.leased, row)
			if msg == nil {
				msg = newMessage(ev, in, now)
			}
			out.jobs = append(out.jobs, newJob(lease, row, cfg, msg, in.OrderingKey, req.traceParent, now))
		}
		out.events[i] = eventOf(ev, false)
		out.published = append(out.published, EventPublished{AppID: req.appID, EventID: ev.ID, EventType: ev.EventType, Deliveries: len(matches[i]), At: now})
	}
	if p.later != nil {
		seq.Skip(len(p.later.refs))
		p.later.arrange(len(subs))
	}
	return p, nil
}

// newDeliveryRow is the delivery of event ev, published as in, to the
// endpoint of sub as matched by m.
func newDeliveryRow(appID string, ev *EventRow, in EventInput, sub Subscriber, m match, id string, now time.Time) DeliveryRow {
	row := DeliveryRow{ID: id, AppID: appID, EventID: ev.ID, EndpointID: sub.EndpointID, EventType: ev.EventType,
		CreatedAt: now, OrderingKey: orderingKeyOf(sub.Ordering, in.OrderingKey)}
	if m.failed != "" {
		// Not ordered: a failed delivery holds nothing back.
		row.OrderingKey, row.Failed = nil, m.failed
	} else if ev.DeliverAt != nil {
		row.DueAt = *ev.DeliverAt
	}
	return row
}

// createdChange is what the feeds hear of a new delivery.
func createdChange(r DeliveryRow, at time.Time) DeliveryChange {
	c := DeliveryChange{Kind: Created, AppID: r.AppID, DeliveryID: r.ID, EventID: r.EventID, EndpointID: r.EndpointID,
		EventType: r.EventType, Status: "PENDING", At: at}
	switch {
	case r.Failed != "":
		c.Kind, c.Status, c.Error = Cancelled, "FAILED", r.Failed
	case !r.DueAt.IsZero():
		due := r.DueAt
		c.NextAttemptAt = &due
	}
	return c
}

// newMessage is what an event's deliveries send.
func newMessage(ev *EventRow, in EventInput, now time.Time) *message {
	return &message{ID: ev.ID, Type: ev.EventType, OrderingKey: in.OrderingKey, Body: renderEnvelope(ev.ID, ev.EventType, now, ev.Payload, false)}
}

// handOffConfig returns the configuration under which a new delivery of
// out to endpoint epID is handed to the scheduler, with its room in the
// window taken and counted in out.reserved, or nil if claims are to take
// it: the deliveries of an endpoint whose flow is controlled are claimed,
// by the one engine that sends to it (a held one's too, which its stored
// columns do not say).
func (e *Engine) handOffConfig(out *publishOutput, epID string, controlled bool) *endpointConfig {
	if controlled {
		return nil
	}
	cfg := e.configs.fresh(epID)
	if cfg == nil || cfg.controlled() || e.window.acquireHandOff(epID, out.app, 1) == 0 {
		return nil
	}
	if out.reserved == nil {
		out.reserved = make(map[string]int)
	}
	out.reserved[epID]++
	return cfg
}

// newJob is the job of a new delivery handed to the scheduler under lease.
func newJob(lease *Lease, row DeliveryRow, cfg *endpointConfig, msg *message, orderingKey, traceParent string, eventCreated time.Time) *job {
	l := *lease
	l.DeliveryID, l.EndpointID = row.ID, row.EndpointID
	return &job{
		Job: Job{Lease: l, AppID: row.AppID, EventID: row.EventID, EventType: row.EventType, Trigger: "SCHEDULED",
			EventCreatedAt: eventCreated, TraceParent: traceParent, OrderingKey: orderingKey},
		trigger: "SCHEDULED",
		attempt: attempt{DeliveryID: row.ID, Number: 1, Endpoint: cfg, Msg: msg},
		counted: true,
	}
}

// compileFilters compiles the payload filters of freshly loaded
// subscribers, once for as long as they are cached. A filter that did not
// change since prev, the app's list read before, keeps its compiled form:
// an app with a thousand filters of 16 KiB spent about as much CPU
// compiling them again at every reload (each 5 s, and after any change of
// its endpoints) as matching events against them. A stored filter that
// does not compile (it was validated when saved) matches nothing.
func compileFilters(log *slog.Logger, subs, prev []Subscriber) {
	var before map[string]*Subscriber
	for i := range prev {
		if prev[i].Filter != nil {
			if before == nil {
				before = make(map[string]*Subscriber, len(prev))
			}
			before[prev[i].EndpointID] = &prev[i]
		}
	}
	for i := range subs {
		if subs[i].Filter == nil {
			continue
		}
		if old := before[subs[i].EndpointID]; old != nil && bytes.Equal(old.Filter, subs[i].Filter) {
			subs[i].match, subs[i].broken = old.match, old.broken
			continue
		}
		f, err := filter.Compile(subs[i].Filter)
		if err != nil {
			log.Error("endpoint filter does not compile; it matches nothing until fixed", "endpoint_id", subs[i].EndpointID, "err", err)
			subs[i].broken = true
			continue
		}
		subs[i].match = f
	}
}

// sameEvent reports whether a stored event and a new one with the same
// idempotency key are the same event: same type and the same JSON payload
// (compared as values, so formatting does not matter).
func sameEvent(old, ev *EventRow) bool {
	if old.EventType != ev.EventType {
		return false
	}
	if bytes.Equal(old.Payload, ev.Payload) {
		return true
	}
	var a, b any
	da, db := json.NewDecoder(bytes.NewReader(old.Payload)), json.NewDecoder(bytes.NewReader(ev.Payload))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&a) != nil || db.Decode(&b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

func eventOf(r *EventRow, existing bool) *Event {
	ev := &Event{ID: r.ID, AppID: r.AppID, EventType: r.EventType, Payload: r.Payload, DeliveryCount: r.DeliveryCount,
		CreatedAt: r.CreatedAt, DeliverAt: r.DeliverAt, Existing: existing}
	if r.IdempotencyKey != "" {
		k := r.IdempotencyKey
		ev.IdempotencyKey = &k
	}
	if r.OrderingKey != "" {
		k := r.OrderingKey
		ev.OrderingKey = &k
	}
	return ev
}

// orderingKeyOf returns the ordering key a new delivery of an event gets
// at an endpoint: "" for strict ordering (one queue), the event's key for
// ordering by key, none otherwise (or when the event has no key).
func orderingKeyOf(ordering, eventKey string) *string {
	switch webhook.Ordering(ordering) {
	case webhook.OrderStrict:
		k := ""
		return &k
	case webhook.OrderByKey:
		if eventKey != "" {
			k := eventKey // not &eventKey: that moves the argument to the heap in every call
			return &k
		}
	}
	return nil
}

// appendNew appends s to list unless list holds it already.
func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
