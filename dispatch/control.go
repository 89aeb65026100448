package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
	return ep, nil
}

// Retry queues another attempt of a delivery of the viewer's app, due now,
// with trigger MANUAL_RETRY. Finished deliveries (SUCCEEDED or FAILED) are
// sent again; a RETRYING one is tried at once instead of waiting. The
// endpoint must be active: re-enabling it is the caller's decision.
func (e *Engine) Retry(ctx context.Context, id string) (*ent.Delivery, error) {
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
	switch d.Status {
	case delivery.StatusPending, delivery.StatusSending:
		return nil, fault.Conflictf("DELIVERY_IN_PROGRESS", "delivery %s is %s: it is already queued or being sent", id, d.Status)
	}
	next := delivery.StatusRetrying
	if d.AttemptCount == 0 {
		next = delivery.StatusPending
	}
	now := e.cfg.Now().UTC()
	n, err := requeue(e.cfg.Client.Delivery.Update().
		Where(delivery.ID(id), delivery.StatusIn(delivery.StatusSucceeded, delivery.StatusFailed, delivery.StatusRetrying)),
		next, now).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("retry delivery %s: %w", id, err)
	}
	if n == 0 {
		return nil, fault.Conflictf("DELIVERY_IN_PROGRESS", "delivery %s changed state meanwhile: it is already being sent", id)
	}
	// Read the requeued state before waking the engine, which may claim the
	// delivery at once.
	d, err = e.cfg.Client.Delivery.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("retry delivery %s: %w", id, err)
	}
	e.Notify(d.EndpointID)
	e.cfg.Observer.DeliveryChanged(DeliveryChange{
		Kind: Requeued, AppID: d.AppID, DeliveryID: d.ID, EventID: d.EventID, EndpointID: d.EndpointID,
		EventType: d.EventType, Status: next.String(), NextAttemptAt: &now, At: now,
	})
	return d, nil
}

// Replay queues again every delivery of an endpoint of the viewer's app that
// has the given status (FAILED or SUCCEEDED) and was created at or after
// since. It returns how many were queued.
func (e *Engine) Replay(ctx context.Context, endpointID string, since time.Time, status delivery.Status) (int, error) {
	if status != delivery.StatusFailed && status != delivery.StatusSucceeded {
		return 0, fault.Invalid("status", "only FAILED or SUCCEEDED deliveries can be replayed, got %s", status)
	}
	if err := e.requireActive(ctx, endpointID); err != nil {
		return 0, err
	}
	now := e.cfg.Now().UTC()
	total := 0
	err := db.WithTx(ctx, e.cfg.Client, func(tx *ent.Client) error {
		for _, attempted := range []bool{true, false} {
			next, cond := delivery.StatusRetrying, delivery.AttemptCountGT(0)
			if !attempted {
				next, cond = delivery.StatusPending, delivery.AttemptCount(0)
			}
			n, err := requeue(tx.Delivery.Update().
				Where(delivery.EndpointID(endpointID), delivery.StatusEQ(status), delivery.CreatedAtGTE(since), cond),
				next, now).Save(ctx)
			if err != nil {
				return fmt.Errorf("replay deliveries of endpoint %s: %w", endpointID, err)
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if total > 0 {
		e.Notify(endpointID)
		if v, ok := tenant.FromContext(ctx); ok {
			e.cfg.Observer.EndpointChanged(EndpointChange{AppID: v.AppID, EndpointID: endpointID, Reason: fmt.Sprintf("%d deliveries replayed", total), At: now})
		}
	}
	return total, nil
}

// requeue makes deliveries due now for a manual attempt.
func requeue(u *ent.DeliveryUpdate, status delivery.Status, now time.Time) *ent.DeliveryUpdate {
	return u.SetStatus(status).
		SetNextAttemptAt(now).
		SetNextTrigger(delivery.NextTriggerMANUAL_RETRY).
		ClearCompletedAt().
		ClearClaimedBy()
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
	if !catalog.IsSystem(eventType) {
		if err := e.cfg.Catalog.CheckPublish(ctx, v.AppID, eventType, payload); err != nil {
			return nil, err
		}
	}
	cfg, err := newEndpointConfig(ep)
	if err != nil {
		return nil, err
	}

	now := e.cfg.Now().UTC()
	var tag [8]byte
	_, _ = rand.Read(tag[:])
	claimedBy := "test-" + hex.EncodeToString(tag[:])
	evID, dID := ids.NewAt(ids.Event, now), ids.NewAt(ids.Delivery, now)
	err = db.WithTx(ctx, e.cfg.Client, func(tx *ent.Client) error {
		if err := tx.Event.Create().SetID(evID).SetEventType(eventType).SetPayload(payload).
			SetDeliveryCount(1).SetCreatedAt(now).Exec(ctx); err != nil {
			return fmt.Errorf("store test event: %w", err)
		}
		return tx.Delivery.Create().SetID(dID).SetEventID(evID).SetEndpointID(endpointID).
			SetEventType(eventType).SetStatus(delivery.StatusSending).SetClaimedBy(claimedBy).
			SetNextAttemptAt(now.Add(e.cfg.Lease)).SetCreatedAt(now).SetUpdatedAt(now).Exec(ctx)
	})
	if err != nil {
		return nil, err
	}
	e.cfg.Observer.EventPublished(EventPublished{AppID: v.AppID, EventID: evID, EventType: eventType, Deliveries: 1, At: now})

	j := &job{
		Job:     Job{DeliveryID: dID, AppID: v.AppID, EventID: evID, EndpointID: endpointID, EventType: eventType},
		trigger: "TEST",
	}
	j.attempt = attempt{DeliveryID: dID, Number: 1, Endpoint: cfg, Msg: &message{
		ID: evID, Type: eventType, Body: renderEnvelope(evID, eventType, now, payload),
	}}
	e.cfg.Observer.DeliveryChanged(DeliveryChange{
		Kind: AttemptStarted, AppID: v.AppID, DeliveryID: dID, EventID: evID, EndpointID: endpointID,
		EventType: eventType, Status: "SENDING", Attempt: 1, At: now,
	})
	resp := e.sender.send(ctx, &j.attempt)
	done := make(chan recorded, 1)
	if err := e.submit(&result{job: j, resp: resp, done: done, uncounted: true}); err != nil {
		return nil, err
	}
	rec := <-done
	if rec.err != nil {
		return nil, fmt.Errorf("record test attempt: %w", rec.err)
	}
	return &TestResult{
		Delivered:    resp.Outcome == Success,
		StatusCode:   resp.Status,
		ResponseBody: resp.ResponseBody,
		Duration:     resp.Duration(),
		Error:        resp.Error,
		AttemptID:    rec.attemptID,
	}, nil
}

// submit hands a result from outside the worker pool to the recorder.
func (e *Engine) submit(r *result) error {
	e.submitMu.RLock()
	defer e.submitMu.RUnlock()
	if e.closed {
		return errEngineClosed
	}
	e.results <- r
	return nil
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
