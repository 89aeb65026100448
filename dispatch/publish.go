package dispatch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// EventInput is an event to publish.
type EventInput struct {
	EventType string
	Payload   json.RawMessage
	// IdempotencyKey, if set, makes publishing again with the same key
	// return the original event and create nothing.
	IdempotencyKey string
}

// Event is a stored event, as Publish returns it.
type Event struct {
	ID             string
	AppID          string
	EventType      string
	Payload        json.RawMessage
	IdempotencyKey *string
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
)

// ErrNotStarted is returned by operations that need a running engine.
var ErrNotStarted = errors.New("dispatch: engine not started")

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
	reply  chan publishReply
}

type publishReply struct {
	events []*Event
	err    error
}

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
		if err := e.cfg.Catalog.CheckPublish(ctx, v.AppID, in.EventType, in.Payload); err != nil {
			return nil, fault.Prefix(prefix(i), err)
		}
	}
	req := &publishReq{ctx: ctx, appID: v.AppID, inputs: inputs, reply: make(chan publishReply, 1)}
	if err := e.submitPublish(ctx, req); err != nil {
		return nil, err
	}
	select {
	case r := <-req.reply:
		return r.events, r.err
	case <-ctx.Done():
		// The group commit may still store the events; a retry with the
		// same idempotency key finds them.
		return nil, ctx.Err()
	}
}

func (e *Engine) submitPublish(ctx context.Context, req *publishReq) error {
	e.submitMu.RLock()
	defer e.submitMu.RUnlock()
	if !e.started.Load() {
		return ErrNotStarted
	}
	if e.closed {
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
// share commits. Each request runs under its own savepoint, so one failing
// does not fail the others.
func (e *Engine) runPublisher() {
	defer close(e.pubDone)
	batch := make([]*publishReq, 0, 64)
	for first := range e.publishes {
		batch = append(batch[:0], first)
		n := len(first.inputs)
	fill:
		for n < maxGroupEvents {
			select {
			case r, ok := <-e.publishes:
				if !ok {
					break fill
				}
				batch = append(batch, r)
				n += len(r.inputs)
			default:
				break fill
			}
		}
		e.commitPublishes(batch)
		clear(batch)
	}
}

func (e *Engine) commitPublishes(batch []*publishReq) {
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), time.Minute)
	defer cancel()
	replies := make([]publishReply, len(batch))
	outs := make([]*publishOutput, len(batch))
	err := func() error {
		if err := e.pubStmts.prepare(ctx, e.cfg.DB); err != nil {
			return err
		}
		tx, err := e.cfg.DB.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after commit
		now := e.cfg.Now().UTC()
		for i, req := range batch {
			if err := req.ctx.Err(); err != nil {
				replies[i].err = err // the caller gave up: store nothing
				continue
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT publish"); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			out, err := e.insertEvents(ctx, tx, req.appID, req.inputs, "", now)
			if err != nil {
				if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO publish"); rerr != nil {
					return fmt.Errorf("roll back to savepoint: %w", rerr)
				}
				replies[i].err = err
			} else {
				outs[i] = out
				replies[i].events = out.events
			}
			if _, err := tx.ExecContext(ctx, "RELEASE publish"); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		// Hold the new deliveries before they become visible, so that a
		// claim cannot take them as well as the hand-off.
		for _, out := range outs {
			if out != nil {
				e.holdJobs(out.jobs)
			}
		}
		if err := tx.Commit(); err != nil {
			for _, out := range outs {
				if out != nil {
					e.unhold(jobsOf(out.jobs))
				}
			}
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}()
	if err != nil {
		for i := range replies {
			if replies[i].err == nil {
				replies[i] = publishReply{err: fmt.Errorf("publish: %w", err)}
			}
		}
		outs = nil
	}
	for i, req := range batch {
		req.reply <- replies[i]
	}
	for _, out := range outs {
		if out != nil {
			e.afterPublish(out)
		}
	}
}

// publishOutput is what one publish stored.
type publishOutput struct {
	events    []*Event
	published []EventPublished
	created   []DeliveryChange
	jobs      []*job // the new deliveries, ready to send
}

// afterPublish hands the new deliveries to the scheduler and reports them.
// Feeds hear of the deliveries before the scheduler can send them.
func (e *Engine) afterPublish(out *publishOutput) {
	for _, p := range out.published {
		e.cfg.Observer.EventPublished(p)
	}
	for _, c := range out.created {
		e.cfg.Observer.DeliveryChanged(c)
	}
	if len(out.jobs) > 0 {
		e.handOff(out.jobs)
	}
}

// insertEvents stores events of an app and their deliveries in tx: one
// per active endpoint subscribed to the type, except exclude (meta-events
// are never sent to the endpoint they are about). Inputs whose idempotency
// key was used before return the original event.
func (e *Engine) insertEvents(ctx context.Context, tx *sql.Tx, appID string, inputs []EventInput, exclude string, now time.Time) (*publishOutput, error) {
	subs, err := e.subs.forApp(ctx, tx, appID)
	if err != nil {
		return nil, err
	}
	out := &publishOutput{events: make([]*Event, len(inputs))}
	byKey, err := existingKeys(ctx, tx, appID, inputs)
	if err != nil {
		return nil, err
	}
	insEvent := tx.StmtContext(ctx, e.pubStmts.event)
	insDelivery := tx.StmtContext(ctx, e.pubStmts.delivery)
	for i, in := range inputs {
		if in.IdempotencyKey != "" {
			if ev, ok := byKey[in.IdempotencyKey]; ok {
				out.events[i] = ev
				continue
			}
		}
		ev := &Event{ID: ids.NewAt(ids.Event, now), AppID: appID, EventType: in.EventType, Payload: in.Payload, CreatedAt: now}
		var matched []string
		for _, s := range subs {
			if s.id != exclude && webhook.MatchAny(s.patterns, in.EventType) {
				matched = append(matched, s.id)
			}
		}
		ev.DeliveryCount = len(matched)
		var key any
		if in.IdempotencyKey != "" {
			k := in.IdempotencyKey
			ev.IdempotencyKey, key = &k, k
			byKey[k] = &Event{ID: ev.ID, AppID: appID, EventType: ev.EventType, Payload: ev.Payload, IdempotencyKey: &k,
				DeliveryCount: ev.DeliveryCount, CreatedAt: now, Existing: true}
		}
		if _, err := insEvent.ExecContext(ctx, ev.ID, ev.EventType, []byte(ev.Payload), key, ev.DeliveryCount, now, appID); err != nil {
			return nil, fmt.Errorf("store event: %w", err)
		}
		var msg *message
		if len(matched) > 0 {
			msg = &message{ID: ev.ID, Type: ev.EventType, Body: renderEnvelope(ev.ID, ev.EventType, now, ev.Payload)}
		}
		for _, epID := range matched {
			dID := ids.NewAt(ids.Delivery, now)
			if _, err := insDelivery.ExecContext(ctx, dID, now, now, ev.EventType, now, appID, epID, ev.ID); err != nil {
				return nil, fmt.Errorf("store delivery: %w", err)
			}
			out.created = append(out.created, DeliveryChange{
				Kind: Created, AppID: appID, DeliveryID: dID, EventID: ev.ID, EndpointID: epID,
				EventType: ev.EventType, Status: "PENDING", At: now,
			})
			out.jobs = append(out.jobs, &job{
				Job:     Job{DeliveryID: dID, AppID: appID, EventID: ev.ID, EndpointID: epID, EventType: ev.EventType, Trigger: "SCHEDULED"},
				trigger: "SCHEDULED",
				attempt: attempt{DeliveryID: dID, Number: 1, Msg: msg},
			})
		}
		out.events[i] = ev
		out.published = append(out.published, EventPublished{AppID: appID, EventID: ev.ID, EventType: ev.EventType, Deliveries: len(matched), At: now})
	}
	return out, nil
}

// existingKeys looks up the events already stored under the inputs'
// idempotency keys.
func existingKeys(ctx context.Context, tx *sql.Tx, appID string, inputs []EventInput) (map[string]*Event, error) {
	byKey := make(map[string]*Event)
	var keys []any
	for _, in := range inputs {
		if in.IdempotencyKey != "" {
			keys = append(keys, in.IdempotencyKey)
		}
	}
	if len(keys) == 0 {
		return byKey, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, event_type, payload, idempotency_key, delivery_count, created_at FROM events
WHERE app_id = ? AND idempotency_key IN (`+placeholders(len(keys))+`)`, append([]any{appID}, keys...)...)
	if err != nil {
		return nil, fmt.Errorf("look up idempotency keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		ev := &Event{AppID: appID, Existing: true}
		var payload []byte
		var key string
		if err := rows.Scan(&ev.ID, &ev.EventType, &payload, &key, &ev.DeliveryCount, &ev.CreatedAt); err != nil {
			return nil, fmt.Errorf("look up idempotency keys: %w", err)
		}
		ev.Payload, ev.IdempotencyKey = payload, &key
		byKey[key] = ev
	}
	return byKey, rows.Err()
}

// publishStmts are the prepared statements of publishing.
type publishStmts struct {
	once     onceErr
	event    *sql.Stmt
	delivery *sql.Stmt
}

func (p *publishStmts) prepare(ctx context.Context, db *sql.DB) error {
	return p.once.do(func() error {
		var err error
		p.event, err = db.PrepareContext(ctx, `INSERT INTO events (id, event_type, payload, idempotency_key, delivery_count, created_at, app_id)
VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("prepare event insert: %w", err)
		}
		p.delivery, err = db.PrepareContext(ctx, `INSERT INTO deliveries (id, created_at, updated_at, event_type, status, attempt_count, next_attempt_at, next_trigger, app_id, endpoint_id, event_id)
VALUES (?, ?, ?, ?, 'PENDING', 0, ?, 'SCHEDULED', ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("prepare delivery insert: %w", err)
		}
		return nil
	})
}

func (p *publishStmts) close() {
	for _, s := range []*sql.Stmt{p.event, p.delivery} {
		if s != nil {
			s.Close()
		}
	}
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

// endpointsOf returns the distinct endpoints of delivery changes.
func endpointsOf(changes []DeliveryChange) []string {
	var ids []string
	seen := make(map[string]bool)
	for _, c := range changes {
		if !seen[c.EndpointID] {
			seen[c.EndpointID] = true
			ids = append(ids, c.EndpointID)
		}
	}
	return ids
}
