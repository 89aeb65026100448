package dispatch

import (
	"fmt"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/signing"
	"github.com/heraldhq/herald/transform"
	"github.com/heraldhq/herald/webhook"
)

// endpointConfig is what the engine needs of an endpoint, parsed once per
// change of the endpoint: how to pace, sign and retry its deliveries, and
// its destination's target, which sends them.
type endpointConfig struct {
	ID    string
	AppID string
	Type  destination.Type
	// URL is where events go, without credentials for brokers: the
	// endpoint's url as stored.
	URL       string
	Retry     webhook.RetryPolicy
	Timeout   time.Duration
	Active    bool
	Deleted   bool
	UpdatedAt time.Time
	loadedAt  time.Time // when the scheduler read it
	// Flow control: the order deliveries go in, a rate limit (nil: none)
	// and a pause the endpoint asked for.
	Ordering    webhook.Ordering
	RateLimit   *webhook.RateLimit
	PausedUntil time.Time

	// signer signs with the current secret; rotating also with the
	// previous one, until prevUntil.
	signer    *signing.Signer
	rotating  *signing.Signer
	prevUntil time.Time
	// target sends to the endpoint (nil only in tests that never send).
	target destination.Target
	// held is target when only the process holding its connection can
	// send to it (a listener), nil otherwise.
	held destination.Held
	// transform reshapes its events (nil: none).
	transform *transform.Program
}

// ordered reports whether the endpoint's deliveries go in publish order.
func (e *endpointConfig) ordered() bool {
	return e.Ordering == webhook.OrderByKey || e.Ordering == webhook.OrderStrict
}

// controlled reports whether one engine at a time must send to the
// endpoint: it orders its deliveries, limits its rate, or is held by the
// process that holds its connection.
func (e *endpointConfig) controlled() bool { return e.ordered() || e.RateLimit != nil || e.held != nil }

// maxConcurrency is how many requests to the endpoint may be in flight at
// once, given the engine's per-endpoint limit: one for a held endpoint,
// whose deliveries go one at a time in the order they fall due.
func (e *endpointConfig) maxConcurrency(perEndpoint int) int {
	if e.held != nil {
		return 1
	}
	return perEndpoint
}

// signerAt returns the signer to use at time t.
func (e *endpointConfig) signerAt(t time.Time) *signing.Signer {
	if e.rotating != nil && t.Before(e.prevUntil) {
		return e.rotating
	}
	return e.signer
}

// EndpointSecrets returns the columns of an endpoint row that hold
// secrets, as stored (sealed), for package secret to open or seal; reg
// names the secret fields of its destination type.
func EndpointSecrets(ep *ent.Endpoint, reg *destination.Registry) secret.Endpoint {
	e := secret.Endpoint{ID: ep.ID, Signing: ep.Secret, Auth: ep.Auth, Headers: ep.Headers, Destination: ep.Destination, TLS: ep.TLS}
	if ep.PreviousSecret != nil {
		e.PreviousSigning = *ep.PreviousSecret
	}
	if reg != nil {
		if spec, ok := reg.Lookup(ep.Type); ok {
			e.DestinationSecrets = spec.Secrets()
		}
	}
	if e.TLS != nil && e.TLS.IsZero() {
		e.TLS = nil
	}
	return e
}

// newEndpointConfig parses a stored endpoint for sending: it opens its
// secrets with keys and prepares its target with drivers (nil: no target,
// for tests that never send).
func newEndpointConfig(ep *ent.Endpoint, keys *secret.Keyring, drivers *destination.Drivers, reg *destination.Registry, transforms *transform.Engine) (*endpointConfig, error) {
	plain, err := keys.OpenEndpoint(EndpointSecrets(ep, reg))
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: read its secrets: %w", ep.ID, err)
	}
	key, err := signing.ParseKey(plain.Signing)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: signing secret: %w", ep.ID, err)
	}
	c := &endpointConfig{
		ID: ep.ID, AppID: ep.AppID, Type: ep.Type, URL: ep.URL,
		Retry: ep.RetryPolicy, Timeout: ep.Timeout, Active: ep.IsActive, Deleted: ep.DeletedAt != nil,
		UpdatedAt: ep.UpdatedAt, signer: signing.NewSignerKeys(key),
		Ordering: webhook.Ordering(ep.Ordering), RateLimit: ep.RateLimit,
	}
	if c.Type == "" {
		c.Type = destination.HTTP
	}
	if c.Ordering == "" {
		c.Ordering = webhook.OrderNone
	}
	if ep.PausedUntil != nil {
		c.PausedUntil = *ep.PausedUntil
	}
	if c.Timeout <= 0 {
		c.Timeout = webhook.DefaultTimeout
	}
	if plain.PreviousSigning != "" && ep.PreviousSecretExpiresAt != nil {
		prev, err := signing.ParseKey(plain.PreviousSigning)
		if err != nil {
			return nil, fmt.Errorf("endpoint %s: previous signing secret: %w", ep.ID, err)
		}
		c.rotating = signing.NewSignerKeys(key, prev)
		c.prevUntil = *ep.PreviousSecretExpiresAt
	}
	if ep.Transformation != nil && transforms != nil {
		if c.transform, err = transforms.Compile(*ep.Transformation); err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", ep.ID, err)
		}
	}
	if drivers != nil {
		c.target, err = drivers.Prepare(&destination.Endpoint{
			ID: ep.ID, AppID: ep.AppID, Type: c.Type, URL: ep.URL, Auth: plain.Auth, Headers: plain.Headers, Config: plain.Destination,
			TLS: plain.TLS, Timeout: c.Timeout,
		})
		if err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", ep.ID, err)
		}
		c.held, _ = c.target.(destination.Held)
	}
	return c, nil
}
