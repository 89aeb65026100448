package endpoints

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/destination/listener"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// Listeners are endpoints of type LISTENER that herald listen opens: their
// deliveries go over the CLI's websocket session (package
// destination/listener) instead of HTTP. They are endpoints in every other
// way (filters, ordering, rate limits, retries, the logs), count toward
// their own limit (LISTENERS) rather than ENDPOINTS, and expire a TTL after
// their session was last seen.
const (
	// DefaultListenerTTL is how long a listener outlives its last session
	// unless createListener says otherwise.
	DefaultListenerTTL = 24 * time.Hour
	// MinListenerTTL and MaxListenerTTL bound a listener's TTL.
	MinListenerTTL = time.Minute
	MaxListenerTTL = 7 * 24 * time.Hour
	// DefaultListenerName names listeners created without a name.
	DefaultListenerName = "herald listen"
	// DefaultForwardTo is the url of a listener created without forwardTo.
	DefaultForwardTo = "herald listen"
	// ListenerRenew is how often the replica that holds a listener's
	// session records that it is alive (which pushes its expiry back).
	ListenerRenew = 30 * time.Second
	// ListenerStale is how long after its last renewal a session counts
	// as gone (its replica stopped without saying so).
	ListenerStale = 3 * ListenerRenew
)

const listenerType = listener.Type

// listenerSettings are what a listener has beyond an endpoint.
type listenerSettings struct {
	ttl time.Duration
}

// ListenerInput is the configuration of a new listener. Only EventTypes is
// required.
type ListenerInput struct {
	// Name defaults to DefaultListenerName.
	Name *string
	// ForwardTo says where the CLI forwards (shown as the listener's url);
	// Herald never connects to it.
	ForwardTo  *string
	EventTypes []string
	// Filter is a payload filter (nil: none).
	Filter json.RawMessage
	// TTL is how long the listener outlives its last session (default
	// DefaultListenerTTL).
	TTL         *time.Duration
	Ordering    *webhook.Ordering
	RateLimit   *webhook.RateLimit
	RetryPolicy *RetryPolicyPatch
	Timeout     *time.Duration
}

// CreateListener creates a listener in the viewer's app and returns it with
// its signing secret. Portal sessions cannot: listeners are the platform's
// developers' tool, opened with an API key.
func (s *Service) CreateListener(ctx context.Context, in ListenerInput) (*ent.Endpoint, string, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, "", tenant.ErrNoViewer
	}
	if v.Portal {
		return nil, "", fault.Forbiddenf("portal sessions cannot open listeners: herald listen is for the platform's developers, with an API key")
	}
	ttl := DefaultListenerTTL
	if in.TTL != nil {
		ttl = *in.TTL
		if ttl < MinListenerTTL || ttl > MaxListenerTTL {
			return nil, "", fault.Invalid("input.ttl", "must be between %s and %s, got %s", MinListenerTTL, MaxListenerTTL, ttl)
		}
	}
	name := DefaultListenerName
	if in.Name != nil && strings.TrimSpace(*in.Name) != "" {
		name = *in.Name
	}
	return s.Create(ctx, Input{
		Name:        &name,
		URL:         in.ForwardTo,
		EventTypes:  in.EventTypes,
		Filter:      Change[json.RawMessage]{Set: in.Filter != nil, Value: in.Filter},
		RateLimit:   Change[*webhook.RateLimit]{Set: in.RateLimit != nil, Value: in.RateLimit},
		Ordering:    in.Ordering,
		RetryPolicy: in.RetryPolicy,
		Timeout:     in.Timeout,
		listener:    &listenerSettings{ttl: ttl},
	})
}

// Listener returns a listener of the viewer's app: NOT_FOUND if it does not
// exist there (or was deleted, or expired), BAD_USER_INPUT on field if the
// endpoint is not a listener.
func (s *Service) Listener(ctx context.Context, field, id string) (*ent.Endpoint, error) {
	ep, err := s.Client.Endpoint.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, fault.NotFoundf("listener %q not found: it expired, was deleted, or belongs to another app; herald listen opens a new one", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get listener %s: %w", id, err)
	}
	if ep.Type != listenerType {
		return nil, fault.Invalid(field, "%s is a %s endpoint, not a listener", id, ep.Type)
	}
	return ep, nil
}

// ListenerHeld records that a session of a listener (session) holds it
// from now on: the listener is connected and does not expire while the
// session is renewed.
func (s *Service) ListenerHeld(ctx context.Context, ep *ent.Endpoint, session string) error {
	now := s.now()
	err := s.Client.Endpoint.UpdateOneID(ep.ID).
		SetListenerSession(session).SetListenerSeenAt(now).SetListenerExpiresAt(now.Add(listenerTTL(ep))).
		Exec(tenant.System(ctx))
	if err != nil {
		return fmt.Errorf("record the session of listener %s: %w", ep.ID, err)
	}
	s.listenerChanged(ep, "listener connected")
	return nil
}

// ListenerRenew records that a listener's session is alive. It reports
// false when another session holds the listener now (one that began on
// another replica, whose notice was lost): this one should end.
func (s *Service) ListenerRenew(ctx context.Context, ep *ent.Endpoint, session string) (bool, error) {
	now := s.now()
	n, err := s.Client.Endpoint.Update().
		Where(endpoint.ID(ep.ID), endpoint.ListenerSession(session)).
		SetListenerSeenAt(now).SetListenerExpiresAt(now.Add(listenerTTL(ep))).
		Save(tenant.System(ctx))
	if err != nil {
		return true, fmt.Errorf("renew the session of listener %s: %w", ep.ID, err)
	}
	return n > 0, nil
}

// ListenerReleased records that a listener's session ended, unless another
// session holds the listener already: the listener expires its TTL from
// now.
func (s *Service) ListenerReleased(ctx context.Context, ep *ent.Endpoint, session string) error {
	now := s.now()
	n, err := s.Client.Endpoint.Update().
		Where(endpoint.ID(ep.ID), endpoint.ListenerSession(session)).
		ClearListenerSession().SetListenerSeenAt(now).SetListenerExpiresAt(now.Add(listenerTTL(ep))).
		Save(tenant.System(ctx))
	if err != nil {
		return fmt.Errorf("record the end of a session of listener %s: %w", ep.ID, err)
	}
	if n > 0 {
		s.listenerChanged(ep, "listener disconnected")
	}
	return nil
}

// Waiting counts a listener's unfinished deliveries: those its session
// catches up on.
func (s *Service) Waiting(ctx context.Context, id string) (int, error) {
	n, err := s.Client.Delivery.Query().Where(delivery.EndpointID(id), delivery.NextAttemptAtNotNil()).Count(tenant.System(ctx))
	if err != nil {
		return 0, fmt.Errorf("count the waiting deliveries of listener %s: %w", id, err)
	}
	return n, nil
}

// ListenerConnected reports whether a session holds a listener now, as far
// as the store knows at now: one holds it and renewed it lately.
func ListenerConnected(ep *ent.Endpoint, now time.Time) bool {
	return ep.ListenerSession != nil && ep.ListenerSeenAt != nil && now.Sub(*ep.ListenerSeenAt) < ListenerStale
}

func listenerTTL(ep *ent.Endpoint) time.Duration {
	if ep.ListenerTTL != nil && *ep.ListenerTTL > 0 {
		return *ep.ListenerTTL
	}
	return DefaultListenerTTL
}

// expireBatch is how many listeners one ExpireListeners statement reads.
const expireBatch = 100

// ExpireListeners deletes, in every app, the listeners whose TTL has run
// out since their session was last seen, as deleteEndpoint would (their
// waiting deliveries fail; their history stays until retention removes
// it), in batches. It returns how many it deleted. Replicas may run it at
// once: each listener is deleted once.
func (s *Service) ExpireListeners(ctx context.Context) (int, error) {
	ctx = tenant.System(ctx)
	total := 0
	for {
		now := s.now()
		eps, err := s.Client.Endpoint.Query().
			Where(endpoint.TypeEQ(listenerType), endpoint.ListenerExpiresAtLT(now)).
			Limit(expireBatch).All(ctx)
		if err != nil {
			return total, fmt.Errorf("find expired listeners: %w", err)
		}
		for _, ep := range eps {
			var n int
			err := db.WithTx(ctx, s.Client, func(tx *ent.Client) error {
				var err error
				n, err = tx.Endpoint.Update().
					Where(endpoint.ID(ep.ID), endpoint.DeletedAtIsNil(), endpoint.ListenerExpiresAtLT(now)).
					SetDeletedAt(now).SetIsActive(false).SetDisabledReason("listener expired").SetDisabledAt(now).
					Save(ctx)
				if err != nil || n == 0 {
					return err
				}
				return dispatch.MarkEndpointsChanged(ctx, tx, ep.AppID)
			})
			if err != nil {
				return total, fmt.Errorf("delete expired listener %s: %w", ep.ID, err)
			}
			if n == 0 {
				continue // renewed meanwhile, or another replica did it
			}
			total++
			if s.Engine != nil {
				s.Engine.EndpointDisabled(ctx, ep.AppID, ep.ID, "listener expired")
			}
			if s.Observer != nil {
				s.Observer.EndpointChanged(dispatch.EndpointChange{AppID: ep.AppID, EndpointID: ep.ID, Reason: "deleted", At: now})
			}
		}
		if len(eps) < expireBatch {
			return total, nil
		}
	}
}

func (s *Service) listenerChanged(ep *ent.Endpoint, reason string) {
	if s.Observer != nil {
		s.Observer.EndpointChanged(dispatch.EndpointChange{AppID: ep.AppID, EndpointID: ep.ID, Reason: reason, At: s.now()})
	}
}
