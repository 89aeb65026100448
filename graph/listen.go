package graph

import (
	"context"
	"errors"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/destination/listener"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph/model"
	"github.com/heraldhq/herald/webhook"
)

// Liveness is what the subscriptions of a websocket connection know of it:
// when it last received anything from the client, and how to close it.
type Liveness struct {
	LastRead func() time.Time
	Close    func()
}

type livenessKey struct{}

// WithLiveness returns a copy of ctx, a websocket connection's, that
// carries its liveness: a listen subscription closes a connection that
// stays silent longer than ListenSilence.
func WithLiveness(ctx context.Context, l Liveness) context.Context {
	return context.WithValue(ctx, livenessKey{}, l)
}

// Limits of listen sessions.
const (
	// ListenSilence is how long a listen connection may receive nothing
	// before it is found dead and closed: the client pings every 10
	// seconds (herald listen) and answers the server's pings, so a
	// connection that carried nothing for this long is gone (a laptop's
	// sleep, a dropped network). What the session held is pushed again to
	// the next one.
	ListenSilence = 25 * time.Second
	// listenCheck is how often a session looks at its connection.
	listenCheck = time.Second
)

var errSilent = errors.New("listener: the connection was silent too long")

// listen holds a listener for the caller's connection: see the listen
// subscription in schema.graphqls.
func (r *Resolver) listen(ctx context.Context, listenerID string) (<-chan *model.ListenerMessage, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	if v.Portal {
		return nil, fault.Forbiddenf("portal sessions cannot listen: herald listen is for the platform's developers, with an API key")
	}
	if r.listeners == nil {
		return nil, fault.Conflictf("LISTENERS_UNAVAILABLE", "this server delivers no listeners")
	}
	ep, err := r.endpoints.Listener(ctx, "listenerId", listenerID)
	if err != nil {
		return nil, err
	}
	if !ep.IsActive {
		return nil, listenerDisabled(ep)
	}
	live, ok := ctx.Value(livenessKey{}).(Liveness)
	if !ok {
		return nil, fault.Invalid("", "listen needs a websocket connection (graphql-transport-ws) at /graphql")
	}
	sub, done, err := openFeed(ctx, r.bus, bus.Filter{Topic: bus.Endpoints, AppID: v.AppID, EndpointID: ep.ID, Coalesce: true})
	if err != nil {
		return nil, err
	}
	sess := r.listeners.Attach(ep.ID, live.LastRead)
	if err := r.endpoints.ListenerHeld(ctx, ep, sess.ID); err != nil {
		sess.End(err)
		done()
		return nil, err
	}
	waiting, err := r.endpoints.Waiting(ctx, ep.ID)
	if err != nil {
		sess.End(err)
		done()
		_ = r.endpoints.ListenerReleased(context.WithoutCancel(ctx), ep, sess.ID)
		return nil, err
	}
	out := make(chan *model.ListenerMessage, 1)
	out <- &model.ListenerMessage{Kind: model.ListenerMessageKindConnected, Waiting: &waiting}
	go func() {
		defer close(out)
		defer done()
		why := r.runSession(ctx, ep, sess, sub, live, out)
		sess.End(why)
		// On failure the session's renewals stop all the same: the
		// listener shows disconnected and expires in time.
		_ = r.endpoints.ListenerReleased(context.WithoutCancel(ctx), ep, sess.ID)
		if f := sessionEnd(why); f != nil && ctx.Err() == nil {
			// gqlgen reads subscription errors once out is closed (or ctx
			// ends): they must be added before either.
			transport.AddSubscriptionError(ctx, faultGQL(f))
		}
	}()
	return out, nil
}

// runSession pushes the session's deliveries to out until the session or
// its connection ends, and returns why it ended (nil: the client left).
func (r *Resolver) runSession(ctx context.Context, ep *ent.Endpoint, sess *listener.Session, sub *bus.Subscription, live Liveness,
	out chan<- *model.ListenerMessage) error {
	check := time.NewTicker(listenCheck)
	defer check.Stop()
	renew := time.NewTicker(endpoints.ListenerRenew)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sess.Done():
			return sess.Err()
		case <-sub.Done():
			return sub.Err() // the server is shutting down
		case p := <-sess.Pushes():
			select {
			case out <- pushMessage(p):
			case <-ctx.Done():
				return nil
			case <-sess.Done():
				return sess.Err()
			}
		case <-check.C:
			if time.Since(live.LastRead()) > ListenSilence {
				live.Close()
				return errSilent
			}
		case <-renew.C:
			held, err := r.endpoints.ListenerRenew(ctx, ep, sess.ID)
			if err == nil && !held {
				return listener.ErrMoved
			}
		case m := <-sub.C:
			c, _ := m.Payload.(dispatch.EndpointChange)
			switch c.Reason {
			case "attempts recorded", "paused", "listener connected", "listener disconnected":
				continue
			}
			cur, err := r.endpoints.Listener(ctx, "listenerId", ep.ID)
			switch {
			case err != nil && ctx.Err() == nil:
				if f, ok := fault.As(err); ok {
					return f
				}
			case err == nil && !cur.IsActive:
				return listenerDisabled(cur)
			case err == nil:
				ep = cur
			}
		}
	}
}

// sessionEnd returns the error a subscription ends with after its session
// ended for why, or nil if it ends quietly.
func sessionEnd(why error) *fault.Error {
	if f, ok := fault.As(why); ok {
		return f
	}
	switch {
	case errors.Is(why, listener.ErrReplaced), errors.Is(why, listener.ErrMoved):
		return &fault.Error{Code: fault.Conflict, Reason: "LISTENER_TAKEN_OVER", Message: "another herald listen session took this listener over (the newest session holds a listener); this one ends"}
	}
	return nil
}

func listenerDisabled(ep *ent.Endpoint) *fault.Error {
	why := "disabled"
	if ep.DisabledReason != nil {
		why = *ep.DisabledReason
	}
	return fault.Conflictf("LISTENER_DISABLED", "listener %s is disabled (%s): turn it on with \"herald endpoints enable %s\", or start herald listen without --listener for a new one", ep.ID, why, ep.ID)
}

func pushMessage(p *listener.Push) *model.ListenerMessage {
	hs := make([]*webhook.Header, len(p.Headers))
	for i := range p.Headers {
		hs[i] = &p.Headers[i]
	}
	return &model.ListenerMessage{Kind: model.ListenerMessageKindDelivery, Delivery: &model.ListenerDelivery{
		DeliveryID: p.DeliveryID, EventID: p.EventID, EventType: p.EventType, Attempt: p.Attempt, Token: p.Token,
		Body: string(p.Body), Headers: hs, TimeoutMs: int(p.Timeout / time.Millisecond),
	}}
}

// reportListenerDelivery hands a report to the attempt that waits for it.
func (r *Resolver) reportListenerDelivery(ctx context.Context, in model.ListenerReportInput) (*model.ListenerReportPayload, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	if v.Portal {
		return nil, fault.Forbiddenf("portal sessions cannot listen: herald listen is for the platform's developers, with an API key")
	}
	// The listener must be the caller's app's: reports of another app's
	// attempts are NOT_FOUND, like the listener.
	if _, err := r.endpoints.Listener(ctx, "input.listenerId", in.ListenerID); err != nil {
		return nil, err
	}
	rep := listener.Report{DeliveryID: in.DeliveryID, Token: in.Token, Status: deref(in.Status), Body: deref(in.Body), Error: deref(in.Error)}
	if rep.Status != 0 && (rep.Status < 100 || rep.Status > 999) {
		return nil, fault.Invalid("input.status", "must be an HTTP status (100-999), or null when there was no answer; got %d", rep.Status)
	}
	if rep.Status == 0 && rep.Error == "" {
		return nil, fault.Invalid("input.error", "is required when there was no answer (status null): say why, such as \"connection refused\"")
	}
	if in.DurationMs != nil {
		rep.Duration = time.Duration(*in.DurationMs) * time.Millisecond
	}
	for _, h := range in.Headers {
		rep.Headers = append(rep.Headers, webhook.Header{Name: h.Name, Value: h.Value})
	}
	if r.listeners == nil {
		return nil, staleReport(in.DeliveryID)
	}
	if err := r.listeners.Report(in.ListenerID, rep); err != nil {
		return nil, staleReport(in.DeliveryID)
	}
	return &model.ListenerReportPayload{DeliveryID: in.DeliveryID}, nil
}

func staleReport(deliveryID string) *fault.Error {
	return fault.Conflictf("STALE_REPORT", "no attempt of delivery %s waits for this report on this server: the attempt ended (its session ended or it timed out) and the delivery is pushed again; report on the listen subscription's connection", deliveryID)
}

// listenerOf presents a listener's session and expiry.
func (r *Resolver) listenerOf(ep *ent.Endpoint) *model.Listener {
	if ep.Type != listener.Type {
		return nil
	}
	l := &model.Listener{TTL: endpoints.DefaultListenerTTL, Connected: endpoints.ListenerConnected(ep, r.now()), LastSeenAt: ep.ListenerSeenAt}
	if ep.ListenerTTL != nil {
		l.TTL = *ep.ListenerTTL
	}
	if ep.ListenerExpiresAt != nil {
		l.ExpiresAt = *ep.ListenerExpiresAt
	}
	return l
}

// faultGQL is a fault as a GraphQL error, as the error presenter shows it.
func faultGQL(f *fault.Error) *gqlerror.Error {
	e := gqlerror.Errorf("%s", f.Error())
	e.Extensions = map[string]any{"code": string(f.Code)}
	if f.Field != "" {
		e.Extensions["field"] = f.Field
	}
	if f.Reason != "" {
		e.Extensions["reason"] = f.Reason
	}
	return e
}
