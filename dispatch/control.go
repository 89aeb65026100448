package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/heraldhq/herald/destination"
	"time"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/ent/schema"
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
	res, err := e.cfg.Driver.Requeue(tenant.System(ctx), RequeueParams{
		AppID: d.AppID, DeliveryIDs: []string{id}, Now: now,
		Statuses: []string{delivery.StatusSucceeded.String(), delivery.StatusFailed.String(), delivery.StatusRetrying.String()},
	})
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
	for {
		res, err := e.cfg.Driver.Requeue(tenant.System(ctx), RequeueParams{
			AppID: v.AppID, EndpointID: endpointID, Since: since, Statuses: []string{status.String()},
			Limit: replayPage, After: pos, Now: now,
		})
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
	Delivered    bool
	StatusCode   int
	ResponseBody string
	Duration     time.Duration
	Error        string
	// AttemptID is the recorded attempt (trigger TEST).
	AttemptID string
}

// Test sends one event to an endpoint of the viewer's app now, even if the
// endpoint is inactive, and waits for the outcome. The event (default type
// test.ping; default payload the type's example) is stored with a delivery
// to that endpoint only; the attempt is recorded with trigger TEST. It
// counts toward the endpoint's health but not toward auto-disable, and is
// never retried.
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
	if len(payload) == 0 {
		payload, err = e.examplePayload(ctx, eventType, endpointID)
		if err != nil {
			return nil, err
		}
	}
	if len(payload) > e.cfg.MaxPayload {
		return nil, fault.Invalid("payload", "is %s; the limit is %s", byteSize(len(payload)), byteSize(e.cfg.MaxPayload))
	}
	if webhook.Reserved(eventType) {
		return nil, fault.Invalid("eventType", "%q is reserved: Herald sends webhook.* events itself, about your endpoints; test with test.ping or one of your event types", eventType)
	}
	if eventType != catalog.TypeTestPing {
		if err := e.cfg.Catalog.CheckPublish(ctx, v.AppID, eventType, payload); err != nil {
			return nil, err
		}
	}
	cfg, err := newEndpointConfig(ep, e.drivers, e.cfg.Transforms)
	if err != nil {
		return nil, err
	}

	now := e.cfg.Now().UTC()
	evID, dID := ids.NewAt(ids.Event, now), ids.NewAt(ids.Delivery, now)
	lease := Lease{DeliveryID: dID, EndpointID: endpointID, Token: e.worker, Until: now.Add(e.cfg.Lease)}
	err = func() error {
		tx, err := e.cfg.Driver.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after commit
		if _, err := tx.InsertEvents(ctx, []*EventRow{{ID: evID, AppID: v.AppID, EventType: eventType, Payload: payload, DeliveryCount: 1, CreatedAt: now}}); err != nil {
			return fmt.Errorf("store test event: %w", err)
		}
		row := DeliveryRow{ID: dID, AppID: v.AppID, EventID: evID, EndpointID: endpointID, EventType: eventType, CreatedAt: now}
		if err := tx.InsertDeliveries(ctx, []DeliveryRow{row}, &lease); err != nil {
			return fmt.Errorf("store test delivery: %w", err)
		}
		return tx.Commit()
	}()
	if err != nil {
		return nil, fmt.Errorf("test endpoint %s: %w", endpointID, err)
	}
	e.cfg.Observer.EventPublished(EventPublished{AppID: v.AppID, EventID: evID, EventType: eventType, Deliveries: 1, At: now})

	j := &job{
		Job:     Job{Lease: lease, AppID: v.AppID, EventID: evID, EventType: eventType},
		trigger: "TEST",
	}
	j.attempt = attempt{DeliveryID: dID, Number: 1, Endpoint: cfg, Msg: &message{
		ID: evID, Type: eventType, Body: renderEnvelope(evID, eventType, now, payload),
	}}
	e.cfg.Observer.DeliveryChanged(DeliveryChange{
		Kind: AttemptStarted, AppID: v.AppID, DeliveryID: dID, EventID: evID, EndpointID: endpointID,
		EventType: eventType, Status: "SENDING", Attempt: 1, At: now,
	})
	// The attempt belongs to the engine, not to the caller: a caller who
	// leaves does not cut it off; only shutdown does.
	resp := e.sendAttempt(j)
	done := make(chan recorded, 1)
	if err := e.submit(&result{job: j, resp: resp, done: done}); err != nil {
		return nil, err
	}
	rec := <-done
	if rec.err != nil {
		return nil, fmt.Errorf("test endpoint %s: %w", endpointID, rec.err)
	}
	return &TestResult{
		Delivered:    resp.Outcome == destination.Delivered,
		StatusCode:   resp.Status,
		ResponseBody: resp.ResponseBody,
		Duration:     resp.Duration(),
		Error:        resp.Error,
		AttemptID:    rec.attemptID,
	}, nil
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
