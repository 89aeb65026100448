package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/destination/listener"
	"github.com/heraldhq/herald/ent"
	entattempt "github.com/heraldhq/herald/ent/attempt"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/ent/schema"
	"github.com/heraldhq/herald/fair"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// DisableEndpoint makes an endpoint inactive with a reason, in the caller's
// transaction or a new one. It returns nil if the endpoint was already
// inactive. Once the change is committed, the caller tells the engine
// (Engine.EndpointDisabled), which fails the queued deliveries: it knows
// which are in flight.
func DisableEndpoint(ctx context.Context, client *ent.Client, id, reason string, now time.Time) (*ent.Endpoint, error) {
	var ep *ent.Endpoint
	err := db.WithTx(ctx, client, func(tx *ent.Client) error {
		var err error
		ep, err = disableEndpoint(ctx, tx, id, reason, now)
		return err
	})
	return ep, err
}

func disableEndpoint(ctx context.Context, tx *ent.Client, id, reason string, now time.Time) (*ent.Endpoint, error) {
	n, err := tx.Endpoint.Update().
		Where(endpoint.ID(id), endpoint.IsActive(true)).
		SetIsActive(false).
		SetDisabledReason(reason).
		SetDisabledAt(now).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("disable endpoint %s: %w", id, err)
	}
	if n == 0 {
		return nil, nil
	}
	ep, err := tx.Endpoint.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("disable endpoint %s: %w", id, err)
	}
	if err := MarkEndpointsChanged(ctx, tx, ep.AppID); err != nil {
		return nil, err
	}
	return ep, nil
}

// MarkEndpointsChanged bumps the version of an app's endpoints. Call it in
// the transaction (tx) of every change of them that publishing must see
// (created, deleted, enabled, disabled, subscribed types, filter,
// ordering, rate limit): engines on other replicas read the version
// before they trust the subscribers they cached.
func MarkEndpointsChanged(ctx context.Context, tx *ent.Client, appID string) error {
	if err := tx.App.UpdateOneID(appID).AddEndpointsVersion(1).Exec(tenant.System(ctx)); err != nil {
		return fmt.Errorf("mark the endpoints of app %s changed: %w", appID, err)
	}
	return nil
}

// Retry queues another attempt of a delivery of the viewer's app, due now,
// with trigger MANUAL_RETRY. Finished deliveries (SUCCEEDED or FAILED) are
// sent again; a RETRYING one is tried at once instead of waiting. A
// delivery being sent or queued to be sent now is a CONFLICT
// (DELIVERY_IN_PROGRESS): its attempt decides what comes next. The
// endpoint must be active: re-enabling it is the caller's decision.
func (e *Engine) Retry(ctx context.Context, id string) (*ent.Delivery, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, tenant.ErrNoViewer
	}
	d, err := e.cfg.Client.Delivery.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, fault.NotFoundf("delivery %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("retry delivery %s: %w", id, err)
	}
	if err := e.requireActive(ctx, d.EndpointID); err != nil {
		return nil, err
	}
	inProgress := fault.Conflictf("DELIVERY_IN_PROGRESS",
		"delivery %s is being sent now or is queued to be sent at once: wait for its attempt (see its attempts, or deliveryUpdated), then retry it if it failed", id)
	if d.Status == delivery.StatusPending || d.Status == delivery.StatusSending {
		return nil, inProgress
	}
	now := e.cfg.Now().UTC()
	row := audit.Take(ctx, audit.Change{TargetType: "Delivery", TargetID: id,
		Fields: map[string]any{"endpointId": d.EndpointID, "eventId": d.EventID, "status": d.Status.String()}}, now)
	res, err := e.cfg.Driver.Requeue(tenant.System(ctx), RequeueParams{
		AppID: d.AppID, DeliveryIDs: []string{id}, Now: now, Audit: row,
		Statuses: []string{delivery.StatusSucceeded.String(), delivery.StatusFailed.String(), delivery.StatusRetrying.String()},
	})
	if !res.Audited {
		audit.Untake(ctx, row)
	}
	if err != nil {
		return nil, fmt.Errorf("retry delivery %s: %w", id, err)
	}
	if len(res.Requeued) == 0 {
		return nil, inProgress
	}
	// Read the requeued state before waking the engine, which may claim the
	// delivery at once.
	d, err = e.cfg.Client.Delivery.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("retry delivery %s: %w", id, err)
	}
	e.wake(d.EndpointID)
	r := res.Requeued[0]
	e.cfg.Observer.DeliveryChanged(DeliveryChange{
		Kind: Requeued, AppID: v.AppID, DeliveryID: r.ID, EventID: r.EventID, EndpointID: r.EndpointID,
		EventType: r.EventType, Status: r.Status, NextAttemptAt: &now, At: now,
	})
	return d, nil
}

// replayPage is how many deliveries one replay statement requeues.
const replayPage = 500

// Replay queues again every delivery of an endpoint of the viewer's app that
// has the given status (FAILED or SUCCEEDED) and was created at or after
// since, in pages of bounded statements. It returns how many were queued.
func (e *Engine) Replay(ctx context.Context, endpointID string, since time.Time, status delivery.Status) (int, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return 0, tenant.ErrNoViewer
	}
	if status != delivery.StatusFailed && status != delivery.StatusSucceeded {
		return 0, fault.Invalid("status", "only FAILED or SUCCEEDED deliveries can be replayed, got %s", status)
	}
	if err := e.requireActive(ctx, endpointID); err != nil {
		return 0, err
	}
	now := e.cfg.Now().UTC()
	total, pos := 0, ""
	// The record goes with the first page that requeues anything.
	row := audit.Take(ctx, audit.Change{TargetType: "Endpoint", TargetID: endpointID,
		Fields: map[string]any{"since": since.UTC(), "status": status.String()}}, now)
	defer func() {
		if row != nil {
			audit.Untake(ctx, row)
		}
	}()
	for {
		res, err := e.cfg.Driver.Requeue(tenant.System(ctx), RequeueParams{
			AppID: v.AppID, EndpointID: endpointID, Since: since, Statuses: []string{status.String()},
			Limit: replayPage, After: pos, Now: now, Audit: row,
		})
		if res.Audited {
			row = nil
		}
		if err != nil {
			return total, fmt.Errorf("replay deliveries of endpoint %s: %w", endpointID, err)
		}
		total += len(res.Requeued)
		if len(res.Requeued) > 0 {
			e.wake(endpointID)
		}
		if !res.More {
			break
		}
		pos = res.Next
	}
	if total > 0 {
		e.cfg.Observer.EndpointChanged(EndpointChange{AppID: v.AppID, EndpointID: endpointID, Reason: fmt.Sprintf("%d deliveries replayed", total), At: now})
	}
	return total, nil
}

// requireActive returns a fault unless the endpoint exists in the viewer's
// app and is active.
func (e *Engine) requireActive(ctx context.Context, endpointID string) error {
	ep, err := e.cfg.Client.Endpoint.Get(schema.IncludeDeleted(ctx), endpointID)
	if ent.IsNotFound(err) {
		return fault.NotFoundf("endpoint %q not found", endpointID)
	}
	if err != nil {
		return fmt.Errorf("get endpoint %s: %w", endpointID, err)
	}
	switch {
	case ep.DeletedAt != nil:
		return fault.Conflictf("ENDPOINT_DELETED", "endpoint %s was deleted; its deliveries cannot be sent again", endpointID)
	case !ep.IsActive:
		return fault.Conflictf("ENDPOINT_DISABLED", "endpoint %s is disabled; enable it first with updateEndpoint(id: %q, input: {isActive: true})", endpointID, endpointID)
	}
	return nil
}

// TestResult is the outcome of a test send.
type TestResult struct {
	// DeliveryID is the test's delivery.
	DeliveryID string
	// Sent reports that the attempt was made and recorded; the other
	// fields describe it. A test that still waits for the endpoint's pace
	// is not sent yet: Error says why.
	Sent         bool
	Delivered    bool
	StatusCode   int
	ResponseBody string
	Duration     time.Duration
	Error        string
	// AttemptID is the recorded attempt (trigger TEST).
	AttemptID string
}

// Test tests an endpoint of the viewer's app, even an inactive one: it
// stores a test event (Event.test; its envelope says "test": true, under
// the signature) of the given type (default test.ping) with one delivery,
// to that endpoint, due at once with trigger TEST. The delivery goes
// through the endpoint's pace like any other (its rate limit, pauses,
// concurrency and, with strict ordering, its queue), so a test is neither
// a way around them nor mistaken for a business event. Test waits for the
// attempt up to the endpoint's timeout plus testWait, and otherwise
// returns the delivery still queued. The attempt counts toward the
// endpoint's health but not toward auto-disable, and is never retried.
//
// The payload defaults to the type's example. Portal sessions, held by
// the platform's customers, cannot choose it: they send test.ping or a
// catalog type's example, never a payload of their own.
func (e *Engine) Test(ctx context.Context, endpointID, eventType string, payload json.RawMessage) (*TestResult, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, tenant.ErrNoViewer
	}
	if !e.started.Load() {
		return nil, fmt.Errorf("test endpoint: engine not started")
	}
	ep, err := e.cfg.Client.Endpoint.Get(ctx, endpointID)
	if ent.IsNotFound(err) {
		return nil, fault.NotFoundf("endpoint %q not found", endpointID)
	}
	if err != nil {
		return nil, fmt.Errorf("test endpoint %s: %w", endpointID, err)
	}
	if eventType == "" {
		eventType = catalog.TypeTestPing
	}
	if err := webhook.CheckEventTypeName("eventType", eventType); err != nil {
		return nil, err
	}
	if webhook.Reserved(eventType) {
		return nil, fault.Invalid("eventType", "%q is reserved: Herald sends webhook.* events itself, about your endpoints; test with test.ping or one of your event types", eventType)
	}
	if len(payload) > 0 && v.Portal {
		return nil, &fault.Error{Code: fault.Forbidden, Field: "payload", Message: "portal sessions send the event type's example payload (or test.ping), never a payload of their own: leave payload out"}
	}
	if len(payload) == 0 {
		payload, err = e.examplePayload(ctx, eventType, endpointID)
		if err != nil {
			return nil, err
		}
	}
	if len(payload) > e.cfg.MaxPayload {
		return nil, fault.Invalid("payload", "is %s; the limit is %s", byteSize(len(payload)), byteSize(e.cfg.MaxPayload))
	}
	if eventType != catalog.TypeTestPing {
		if err := e.cfg.Catalog.CheckPublish(ctx, v.AppID, eventType, payload); err != nil {
			return nil, err
		}
	}

	now := e.cfg.Now().UTC()
	seq := ids.NewSequence(now)
	evID, dID := seq.Next(ids.Event), seq.Next(ids.Delivery)
	row := DeliveryRow{ID: dID, AppID: v.AppID, EventID: evID, EndpointID: endpointID, EventType: eventType, CreatedAt: now,
		Trigger: "TEST", OrderingKey: orderingKeyOf(string(ep.Ordering), "")}
	err = func() error {
		tx, err := e.cfg.Driver.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after commit
		if _, err := tx.InsertEvents(ctx, []*EventRow{{ID: evID, AppID: v.AppID, EventType: eventType, Payload: payload, DeliveryCount: 1, CreatedAt: now, Test: true}}); err != nil {
			return fmt.Errorf("store test event: %w", err)
		}
		if err := tx.InsertDeliveries(ctx, []DeliveryRow{row}, nil); err != nil {
			return fmt.Errorf("store test delivery: %w", err)
		}
		rec := audit.Take(ctx, audit.Change{TargetType: "Endpoint", TargetID: endpointID,
			Fields: map[string]any{"eventType": eventType, "eventId": evID, "deliveryId": dID}}, now)
		if rec != nil {
			if err := tx.InsertAudit(ctx, []*audit.Row{rec}); err != nil {
				audit.Untake(ctx, rec)
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			audit.Untake(ctx, rec)
			return err
		}
		return nil
	}()
	if err != nil {
		return nil, fmt.Errorf("test endpoint %s: %w", endpointID, err)
	}
	e.cfg.Observer.EventPublished(EventPublished{AppID: v.AppID, EventID: evID, EventType: eventType, Deliveries: 1, At: now})
	e.cfg.Observer.DeliveryChanged(DeliveryChange{
		Kind: Created, AppID: v.AppID, DeliveryID: dID, EventID: evID, EndpointID: endpointID,
		EventType: eventType, Status: "PENDING", At: now,
	})
	e.wake(endpointID)
	waits := "the endpoint's pace (its rate limit, a pause it asked for, or the deliveries ahead of it with strict ordering)"
	if ep.Type == listener.Type {
		waits = "herald listen: a listener's deliveries wait while no session holds it (or for its pace)"
	}
	return e.awaitTest(ctx, dID, ep.Timeout+testWait, waits)
}

// testWait is how much longer than an endpoint's timeout Test waits for its
// attempt before it answers with the delivery queued.
const testWait = 5 * time.Second

// awaitTest waits up to wait for a test delivery's attempt to be recorded,
// by whichever engine sends it, reading the delivery (often at first, then
// less often).
func (e *Engine) awaitTest(ctx context.Context, deliveryID string, wait time.Duration, waits string) (*TestResult, error) {
	// Waiting for the endpoint is not work on the cores: the caller's turn
	// (package fair) is given back meanwhile.
	defer fair.Pause(ctx)()
	ctx = tenant.System(ctx)
	deadline := time.Now().Add(wait)
	pause := 10 * time.Millisecond
	for {
		d, err := e.cfg.Client.Delivery.Get(ctx, deliveryID)
		if err != nil {
			return nil, fmt.Errorf("read test delivery %s: %w", deliveryID, err)
		}
		if d.AttemptCount > 0 || d.CompletedAt != nil {
			return e.testResult(ctx, d)
		}
		if !time.Now().Before(deadline) {
			return &TestResult{DeliveryID: deliveryID, Error: "not sent yet: the test waits for " + waits + "; follow delivery " + deliveryID}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(pause, time.Until(deadline))):
		}
		pause = min(2*pause, 250*time.Millisecond)
	}
}

// testResult describes a test delivery that ended or was attempted.
func (e *Engine) testResult(ctx context.Context, d *ent.Delivery) (*TestResult, error) {
	res := &TestResult{DeliveryID: d.ID}
	a, err := d.QueryAttempts().Order(ent.Desc(entattempt.FieldAttemptNumber)).First(ctx)
	if ent.IsNotFound(err) {
		// Failed without an attempt (the endpoint was deleted meanwhile).
		if d.LastError != nil {
			res.Error = *d.LastError
		}
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read test attempt of %s: %w", d.ID, err)
	}
	res.Sent, res.Delivered, res.AttemptID = true, a.Succeeded, a.ID
	res.ResponseBody, res.Duration = a.ResponseBody, time.Duration(a.DurationMs)*time.Millisecond
	if a.ResponseStatus != nil {
		res.StatusCode = *a.ResponseStatus
	}
	if a.ErrorMessage != nil {
		res.Error = *a.ErrorMessage
	}
	return res, nil
}

// examplePayload returns the payload of a test event of the given type: the
// catalog example, or a greeting for types without one.
func (e *Engine) examplePayload(ctx context.Context, eventType, endpointID string) (json.RawMessage, error) {
	et, err := e.cfg.Client.EventType.Query().Where(eventtype.Name(eventType)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("look up event type %s: %w", eventType, err)
	case eventType != catalog.TypeTestPing && len(et.Example) > 0 && string(et.Example) != "null":
		return et.Example, nil
	}
	return json.Marshal(map[string]any{"message": "Hello from Herald", "endpointId": endpointID})
}
