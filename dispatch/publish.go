package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/event"
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

// Publishing limits.
const (
	// MaxPublishBatch is the most events one Publish call takes.
	MaxPublishBatch = 100
	// DefaultMaxPayload is the default size limit of one payload.
	DefaultMaxPayload = 256 << 10
)

// Publish stores an event of the viewer's app and, in the same
// transaction, one PENDING delivery per active endpoint subscribed to its
// type. If its idempotency key was used before, Publish returns the
// original event and creates nothing. Faults name fields "input.<field>".
func (e *Engine) Publish(ctx context.Context, in EventInput) (*ent.Event, error) {
	evs, err := e.publish(ctx, []EventInput{in}, func(int) string { return "input" })
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}

// PublishBatch publishes up to MaxPublishBatch events in one transaction,
// as Publish does each, and returns them in input order. Faults name fields
// "input[i].<field>".
func (e *Engine) PublishBatch(ctx context.Context, inputs []EventInput) ([]*ent.Event, error) {
	return e.publish(ctx, inputs, func(i int) string { return fmt.Sprintf("input[%d]", i) })
}

func (e *Engine) publish(ctx context.Context, inputs []EventInput, prefix func(int) string) ([]*ent.Event, error) {
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

	var (
		events    []*ent.Event
		published []EventPublished
		created   []DeliveryChange
	)
	now := e.cfg.Now().UTC()
	for try := 0; ; try++ {
		err := db.WithTx(ctx, e.cfg.Client, func(tx *ent.Client) error {
			var err error
			events, published, created, err = publishIdempotent(ctx, tx, v.AppID, inputs, now)
			return err
		})
		if ent.IsConstraintError(err) && try == 0 {
			// A concurrent publish used the same idempotency key; the retry
			// finds its event.
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	// Unwrap each entity once (a batch may repeat an idempotency key, so
	// the same entity can appear twice).
	unwrapped := make(map[*ent.Event]*ent.Event, len(events))
	for i, ev := range events {
		u, ok := unwrapped[ev]
		if !ok {
			u = ev.Unwrap()
			unwrapped[ev] = u
		}
		events[i] = u
	}
	if len(created) > 0 {
		e.Notify(endpointsOf(created)...)
	}
	for _, p := range published {
		e.cfg.Observer.EventPublished(p)
	}
	for _, c := range created {
		e.cfg.Observer.DeliveryChanged(c)
	}
	return events, nil
}

// publishIdempotent resolves idempotency keys against stored events and
// publishes the inputs that are new.
func publishIdempotent(ctx context.Context, tx *ent.Client, appID string, inputs []EventInput, now time.Time) ([]*ent.Event, []EventPublished, []DeliveryChange, error) {
	out := make([]*ent.Event, len(inputs))
	var keys []string
	for _, in := range inputs {
		if in.IdempotencyKey != "" {
			keys = append(keys, in.IdempotencyKey)
		}
	}
	byKey := make(map[string]*ent.Event)
	if len(keys) > 0 {
		prev, err := tx.Event.Query().Where(event.AppID(appID), event.IdempotencyKeyIn(keys...)).All(ctx)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("look up idempotency keys: %w", err)
		}
		for _, ev := range prev {
			byKey[*ev.IdempotencyKey] = ev
		}
	}
	var (
		fresh    []EventInput
		freshIdx []int
		firstOf  = make(map[string]int) // key → index in fresh
		dupOf    = make(map[int]int)    // input index → index in fresh
	)
	for i, in := range inputs {
		if in.IdempotencyKey != "" {
			if ev, ok := byKey[in.IdempotencyKey]; ok {
				out[i] = ev
				continue
			}
			if j, ok := firstOf[in.IdempotencyKey]; ok {
				dupOf[i] = j
				continue
			}
			firstOf[in.IdempotencyKey] = len(fresh)
		}
		fresh = append(fresh, in)
		freshIdx = append(freshIdx, i)
	}
	if len(fresh) == 0 {
		return out, nil, nil, nil
	}
	evs, published, created, err := fanOut(ctx, tx, appID, fresh, "", now)
	if err != nil {
		return nil, nil, nil, err
	}
	for k, i := range freshIdx {
		out[i] = evs[k]
	}
	for i, j := range dupOf {
		out[i] = evs[j]
	}
	return out, published, created, nil
}

// publishTx publishes events inside an existing transaction, skipping the
// endpoint exclude (Herald's meta-events are never sent to the endpoint
// they are about).
func publishTx(ctx context.Context, tx *ent.Client, appID string, inputs []EventInput, exclude string, now time.Time) ([]EventPublished, []DeliveryChange, error) {
	_, published, created, err := fanOut(ctx, tx, appID, inputs, exclude, now)
	return published, created, err
}

// maxRowsPerInsert keeps multi-row INSERTs under SQLite's variable limit.
const maxRowsPerInsert = 1000

// fanOut stores events and one PENDING delivery per active endpoint of the
// app whose subscriptions match, except exclude.
func fanOut(ctx context.Context, tx *ent.Client, appID string, inputs []EventInput, exclude string, now time.Time) ([]*ent.Event, []EventPublished, []DeliveryChange, error) {
	eps, err := tx.Endpoint.Query().
		Where(endpoint.AppID(appID), endpoint.IsActive(true)).
		Select(endpoint.FieldID, endpoint.FieldEventTypes).
		All(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load subscribed endpoints: %w", err)
	}
	evCreates := make([]*ent.EventCreate, len(inputs))
	var dlvCreates []*ent.DeliveryCreate
	published := make([]EventPublished, len(inputs))
	var created []DeliveryChange
	for i, in := range inputs {
		evID := ids.NewAt(ids.Event, now)
		n := 0
		for _, ep := range eps {
			if ep.ID == exclude || !webhook.MatchAny(ep.EventTypes, in.EventType) {
				continue
			}
			n++
			dID := ids.NewAt(ids.Delivery, now)
			dlvCreates = append(dlvCreates, tx.Delivery.Create().
				SetID(dID).
				SetAppID(appID).
				SetEventID(evID).
				SetEndpointID(ep.ID).
				SetEventType(in.EventType).
				SetStatus(delivery.StatusPending).
				SetNextAttemptAt(now).
				SetCreatedAt(now).
				SetUpdatedAt(now))
			created = append(created, DeliveryChange{
				Kind: Created, AppID: appID, DeliveryID: dID, EventID: evID, EndpointID: ep.ID,
				EventType: in.EventType, Status: "PENDING", At: now,
			})
		}
		c := tx.Event.Create().
			SetID(evID).
			SetAppID(appID).
			SetEventType(in.EventType).
			SetPayload(in.Payload).
			SetDeliveryCount(n).
			SetCreatedAt(now)
		if in.IdempotencyKey != "" {
			c.SetIdempotencyKey(in.IdempotencyKey)
		}
		evCreates[i] = c
		published[i] = EventPublished{AppID: appID, EventID: evID, EventType: in.EventType, Deliveries: n, At: now}
	}
	events, err := tx.Event.CreateBulk(evCreates...).Save(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store events: %w", err)
	}
	for len(dlvCreates) > 0 {
		n := min(len(dlvCreates), maxRowsPerInsert)
		if err := tx.Delivery.CreateBulk(dlvCreates[:n]...).Exec(ctx); err != nil {
			return nil, nil, nil, fmt.Errorf("store deliveries: %w", err)
		}
		dlvCreates = dlvCreates[n:]
	}
	return events, published, created, nil
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
