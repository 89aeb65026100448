package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/ent/event"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/filter"
	"github.com/heraldhq/herald/graph/model"
)

// flowOut is an endpoint's pace: the engine's view, with the pause its
// endpoint row records (which another replica may have set).
func flowOut(st dispatch.FlowState, ep *ent.Endpoint, now time.Time) *model.EndpointFlow {
	out := &model.EndpointFlow{
		RateLimit:      ep.RateLimit,
		Concurrency:    st.Concurrency,
		MaxConcurrency: st.MaxConcurrency,
		Throttled:      st.Throttled,
	}
	if st.RatePerSecond > 0 {
		rate := st.RatePerSecond
		out.RatePerSecond = &rate
	}
	paused := st.PausedUntil
	if ep.PausedUntil != nil && ep.PausedUntil.After(paused) {
		paused = *ep.PausedUntil
	}
	if paused.After(now) {
		p := paused.UTC()
		out.PausedUntil = &p
		out.Throttled = true
	}
	return out
}

// heldBy returns the delivery that holds d back: the oldest unfinished
// delivery of its endpoint and ordering key, unless that is d itself. It
// reads the partial index the engine's ordered claims use.
func heldBy(ctx context.Context, client *ent.Client, d *ent.Delivery) (*ent.Delivery, error) {
	head, err := client.Delivery.Query().
		Where(delivery.EndpointID(d.EndpointID), delivery.OrderingKey(*d.OrderingKey), delivery.NextAttemptAtNotNil()).
		Order(ent.Asc(delivery.FieldCreatedAt), ent.Asc(delivery.FieldID)).
		First(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("find the delivery holding %s back: %w", d.ID, err)
	case head.ID == d.ID:
		return nil, nil
	}
	return head, nil
}

// Limits of testFilter.
const (
	defaultFilterRecent = 20
	maxFilterRecent     = 50
)

// testFilter evaluates a payload filter against one payload or the app's
// recent events.
func (r *Resolver) testFilter(ctx context.Context, raw, payload json.RawMessage, eventType string, recent *int) (*model.FilterTest, error) {
	if _, err := endpoints.CheckFilter("filter", raw); err != nil {
		return nil, err
	}
	f, err := filter.Compile(raw)
	if err != nil {
		return nil, fmt.Errorf("compile filter: %w", err) // validated above
	}
	out := &model.FilterTest{Results: []*model.FilterMatch{}}
	try := func(ev *ent.Event, id, typ string, at time.Time, data json.RawMessage) {
		env := &filter.Envelope{ID: id, Type: typ, Timestamp: at.UTC().Format(time.RFC3339Nano), Payload: data}
		m, err := f.Match(env)
		res := &model.FilterMatch{Event: ev, EventType: typ, Matched: m}
		if err != nil {
			msg := err.Error()
			res.Error = &msg
		}
		out.Results = append(out.Results, res)
		if m {
			out.MatchCount++
		}
	}
	if payload != nil {
		if eventType == "" {
			return nil, fault.Invalid("eventType", "is required with a payload: filters may test the type")
		}
		if !json.Valid(payload) {
			return nil, fault.Invalid("payload", "is not valid JSON")
		}
		try(nil, "", eventType, r.now(), payload)
		return out, nil
	}
	n := defaultFilterRecent
	if recent != nil {
		n = *recent
	}
	if n < 1 || n > maxFilterRecent {
		return nil, fault.Invalid("recent", "must be between 1 and %d, got %d", maxFilterRecent, n)
	}
	q := r.client.Event.Query().Order(ent.Desc(event.FieldCreatedAt), ent.Desc(event.FieldID)).Limit(n)
	if eventType != "" {
		q.Where(event.EventType(eventType))
	}
	evs, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load recent events: %w", err)
	}
	for _, ev := range evs {
		try(ev, ev.ID, ev.EventType, ev.CreatedAt, ev.Payload)
	}
	return out, nil
}
