package graph

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph/model"
	"github.com/heraldhq/herald/webhook"
)

// NewObserver returns a dispatch.Observer that publishes every change to b
// for the live feeds. With no subscribers and no relay it costs an atomic
// load. With a relay it publishes every change even when this replica has
// no subscribers: another replica's may want it.
func NewObserver(b *bus.Bus) dispatch.Observer { return busObserver{b} }

type busObserver struct{ b *bus.Bus }

func (o busObserver) DeliveryChanged(c dispatch.DeliveryChange) {
	if !o.b.Wanted() {
		return
	}
	o.b.Publish(deliveryMessage(c))
}

func (o busObserver) EndpointChanged(c dispatch.EndpointChange) {
	if !o.b.Wanted() {
		return
	}
	o.b.Publish(endpointMessage(c))
}

func (o busObserver) EventPublished(p dispatch.EventPublished) {
	if !o.b.Wanted() {
		return
	}
	o.b.Publish(eventMessage(p))
}

func deliveryMessage(c dispatch.DeliveryChange) bus.Message {
	return bus.Message{Topic: bus.Deliveries, AppID: c.AppID, EndpointID: c.EndpointID, EventType: c.EventType, Status: c.Status, Payload: c}
}

func endpointMessage(c dispatch.EndpointChange) bus.Message {
	return bus.Message{Topic: bus.Endpoints, AppID: c.AppID, EndpointID: c.EndpointID, Payload: c}
}

func eventMessage(p dispatch.EventPublished) bus.Message {
	return bus.Message{Topic: bus.Events, AppID: p.AppID, EventType: p.EventType, Payload: p}
}

// connState is the live state of one websocket connection.
type connState struct {
	subs atomic.Int32
	max  int32
}

type connStateKey struct{}

// WithConnection returns a copy of ctx for a new websocket connection that
// allows at most maxSubscriptions concurrent subscriptions.
func WithConnection(ctx context.Context, maxSubscriptions int) context.Context {
	return context.WithValue(ctx, connStateKey{}, &connState{max: int32(maxSubscriptions)})
}

// subscribe opens a bus subscription for the caller, counting it against
// the connection's limit, whose messages the bus converts and hands
// straight to the channel gqlgen sends to the client: no goroutine of the
// subscription's own wakes for each message. The subscription ends when
// the client stops it or disconnects (ctx ends), or with an error when it
// lags behind or the server shuts down; the channel is closed then.
func subscribe[T any](ctx context.Context, b *bus.Bus, f bus.Filter, convert func(any) *T) (<-chan *T, error) {
	cs, err := takeFeedSlot(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan *T, b.Buffer())
	take := func(m *bus.Message) bool {
		select {
		case out <- convert(m.Payload):
			return true
		default:
			return false
		}
	}
	ended := func(err error) {
		// Tell the client why, unless it is gone or the server is
		// shutting down (then the connection closes with 1001). gqlgen
		// reads these errors once the channel closes; it also reads them
		// when ctx ends, so they must not be added after that.
		if err != nil && !errors.Is(err, bus.ErrClosed) && ctx.Err() == nil {
			transport.AddSubscriptionError(ctx, subscriptionError(err))
		}
		cs.subs.Add(-1)
		close(out)
	}
	sub, err := b.SubscribeFunc(f, take, ended)
	if err != nil {
		cs.subs.Add(-1)
		return nil, err
	}
	context.AfterFunc(ctx, sub.Close)
	return out, nil
}

// openFeed takes one of the websocket connection's subscription slots and
// subscribes to the bus. done closes the subscription and frees the slot.
func openFeed(ctx context.Context, b *bus.Bus, f bus.Filter) (sub *bus.Subscription, done func(), err error) {
	cs, err := takeFeedSlot(ctx)
	if err != nil {
		return nil, nil, err
	}
	if sub, err = b.Subscribe(f); err != nil {
		cs.subs.Add(-1)
		return nil, nil, err
	}
	return sub, func() { sub.Close(); cs.subs.Add(-1) }, nil
}

// takeFeedSlot takes one of the websocket connection's subscription
// slots; the caller gives it back when the subscription ends.
func takeFeedSlot(ctx context.Context) (*connState, error) {
	cs, _ := ctx.Value(connStateKey{}).(*connState)
	if cs == nil {
		return nil, fault.Invalid("", "subscriptions need a websocket connection (graphql-transport-ws or graphql-ws) at /graphql")
	}
	if n := cs.subs.Add(1); n > cs.max {
		cs.subs.Add(-1)
		return nil, fault.Invalid("", "this connection already has %d subscriptions, the limit: open another connection or stop one", cs.max)
	}
	return cs, nil
}

func subscriptionError(err error) *gqlerror.Error {
	e := gqlerror.Errorf("%s", err.Error())
	switch {
	case errors.Is(err, bus.ErrLagged):
		e.Message = "this subscription fell too far behind the live feed and was stopped: read faster or narrow it with arguments, then subscribe again"
		e.Extensions = map[string]any{"code": string(fault.BadUserInput), "reason": "SUBSCRIBER_LAGGED"}
	default:
		e.Extensions = map[string]any{"code": string(fault.Internal)}
	}
	return e
}

// checkPattern validates an event type filter argument.
func checkPattern(field string, p *string) (string, error) {
	if p == nil || *p == "" {
		return "", nil
	}
	if !webhook.ValidPattern(*p) {
		return "", fault.Invalid(field, "%q is not an event type or pattern: use a name such as \"order.created\", \"order.*\" or \"*\"", *p)
	}
	return *p, nil
}

func toDeliveryChange(p any) *model.DeliveryChange {
	c := p.(dispatch.DeliveryChange)
	m := &model.DeliveryChange{
		Kind:          model.DeliveryChangeKind(c.Kind),
		DeliveryID:    c.DeliveryID,
		EventID:       c.EventID,
		EndpointID:    c.EndpointID,
		EventType:     c.EventType,
		Status:        delivery.Status(c.Status),
		NextAttemptAt: c.NextAttemptAt,
		At:            c.At,
	}
	if c.Attempt > 0 {
		m.AttemptNumber = &c.Attempt
	}
	if c.AttemptID != "" {
		m.AttemptID = &c.AttemptID
	}
	if c.ResponseStatus != 0 {
		m.ResponseStatus = &c.ResponseStatus
	}
	if c.Kind == dispatch.AttemptFinished {
		ms := int(c.Duration / time.Millisecond)
		m.DurationMs = &ms
	}
	if c.Error != "" {
		m.Error = &c.Error
	}
	return m
}

func toEndpointChange(p any) *model.EndpointChange {
	c := p.(dispatch.EndpointChange)
	return &model.EndpointChange{EndpointID: c.EndpointID, Reason: c.Reason, At: c.At}
}

func toEventPublication(p any) *model.EventPublication {
	c := p.(dispatch.EventPublished)
	return &model.EventPublication{EventID: c.EventID, EventType: c.EventType, DeliveryCount: c.Deliveries, At: c.At}
}
