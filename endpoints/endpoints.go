// Package endpoints manages webhook endpoints: validating their
// configuration, issuing and rotating signing secrets, refusing accidental
// duplicates, enabling, disabling and soft-deleting them, and summarising
// their health.
package endpoints

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/httpdest"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/predicate"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/filter"
	"github.com/heraldhq/herald/quota"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/transform"
	"github.com/heraldhq/herald/webhook"
)

// Service changes endpoints of the viewer's app.
type Service struct {
	// Client is the database.
	Client *ent.Client
	// Catalog checks subscribed event types.
	Catalog *catalog.Catalog
	// Policy validates endpoint URLs and brokers' addresses.
	Policy destination.Policy
	// Destinations are the destination types endpoints may have (default:
	// HTTP only).
	Destinations *destination.Registry
	// Transforms compiles transformations to check them at save (default:
	// the default limits).
	Transforms *transform.Engine
	// Observer is told about changes (may be nil).
	Observer dispatch.Observer
	// Engine, if set, learns at once when an endpoint is disabled, deleted
	// or enabled again, so that it fails queued deliveries and sends
	// nothing more to it.
	Engine interface {
		EndpointChanged(appID, id string)
		EndpointDisabled(ctx context.Context, appID, id, reason string)
		EndpointEnabled(appID, id string)
	}
	// Secrets seals the endpoints' secrets before they are stored and opens
	// them when they are read (required).
	Secrets *secret.Keyring
	// Rand is the source of signing secrets (default crypto/rand).
	Rand io.Reader
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// RetryPolicyPatch changes some fields of a retry policy.
type RetryPolicyPatch struct {
	MaxAttempts       *int
	InitialDelay      *time.Duration
	BackoffMultiplier *float64
	MaxDelay          *time.Duration
}

func (p *RetryPolicyPatch) apply(base webhook.RetryPolicy) webhook.RetryPolicy {
	if p == nil {
		return base
	}
	if p.MaxAttempts != nil {
		base.MaxAttempts = *p.MaxAttempts
	}
	if p.InitialDelay != nil {
		base.InitialDelay = *p.InitialDelay
	}
	if p.BackoffMultiplier != nil {
		base.BackoffMultiplier = *p.BackoffMultiplier
	}
	if p.MaxDelay != nil {
		base.MaxDelay = *p.MaxDelay
	}
	return base
}

// Input is the configuration of an endpoint. On update, nil fields (and
// Changes not Set) stay as they are.
type Input struct {
	Name           *string
	Description    *string
	URL            *string
	EventTypes     []string
	Auth           *webhook.Auth
	Headers        *[]webhook.Header
	RetryPolicy    *RetryPolicyPatch
	Timeout        *time.Duration
	IsActive       *bool
	AllowDuplicate bool
	// Filter is the payload filter (see package filter); a Set nil or
	// JSON null removes it.
	Filter Change[json.RawMessage]
	// RateLimit is the rate limit; a Set nil removes it.
	RateLimit Change[*webhook.RateLimit]
	Ordering  *webhook.Ordering
	// Type is the destination type (nil: HTTP on create, unchanged on
	// update).
	Type *destination.Type
	// Destination is a broker's configuration (nil: none given), given in
	// the input field DestinationField ("rabbitmq").
	Destination      json.RawMessage
	DestinationField string
	// Transformation is the script; a Set "" or nil removes it.
	Transformation Change[*string]
	// TLS is the mutual TLS configuration; a Set nil removes it.
	TLS Change[*webhook.TLS]
	// SignatureScheme is how deliveries are signed (nil: HMAC_SHA256 on
	// create; the scheme changes only by rotating the secret).
	SignatureScheme *endpoint.SignatureScheme

	// listener, set by CreateListener, makes the endpoint a listener.
	listener *listenerSettings
}

// Change is an optional change of a field that can also be cleared: Set
// reports that the field changes, to Value (its zero value clears it).
type Change[T any] struct {
	Set   bool
	Value T
}

// config is a complete, validated endpoint configuration.
type config struct {
	typ                    destination.Type
	destination            json.RawMessage // a broker's configuration
	transformation         *string
	name, description, url string
	eventTypes             []string
	auth                   webhook.Auth
	headers                []webhook.Header
	retry                  webhook.RetryPolicy
	timeout                time.Duration
	filter                 json.RawMessage // nil: none
	rateLimit              *webhook.RateLimit
	ordering               webhook.Ordering
	tls                    *webhook.TLS // nil: none
	isActive               bool
}

// validate merges in over base and checks the result. It reports every
// invalid field at once (a fault.List), so that a form can show them all
// after one request; faults name fields "input.<field>". Errors that are
// not faults (the catalog could not be read) end it at once.
func (s *Service) validate(ctx context.Context, appID string, base config, in Input) (config, error) {
	c := base
	var errs fault.List
	// check records a failed check's faults; it returns false for an
	// error that is not one, which validate returns as it is.
	check := func(err error) bool { return err == nil || errs.Add(err) }
	if in.Name != nil {
		c.name = strings.TrimSpace(*in.Name)
	}
	if n := len([]rune(c.name)); n < 2 || n > 255 {
		errs = append(errs, fault.Invalid("input.name", "must be 2-255 characters, got %d", n))
	}
	if in.Description != nil {
		c.description = *in.Description
	}
	if len(c.description) > 4096 {
		errs = append(errs, fault.Invalid("input.description", "must be at most 4096 characters"))
	}
	if err := s.checkDestination(&c, base, in); err != nil {
		return c, err
	}
	if in.URL != nil && c.typ == destination.HTTP {
		u, err := s.Policy.CheckURL(strings.TrimSpace(*in.URL))
		var ue *destination.URLError
		switch {
		case errors.As(err, &ue):
			errs = append(errs, fault.Invalid("input.url", "%s", ue.Reason))
		case err != nil:
			errs = append(errs, fault.Invalid("input.url", "%v", err))
		default:
			// Host names are case-insensitive: store them in lower case,
			// so that the duplicate check sees one URL however it is
			// written.
			u.Host = strings.ToLower(u.Host)
			c.url = u.String()
		}
	}
	if in.EventTypes != nil {
		ets, err := webhook.CheckPatterns("input.eventTypes", in.EventTypes)
		if err == nil {
			err = s.Catalog.CheckSubscribable(ctx, appID, "input.eventTypes", ets)
		}
		if !check(err) {
			return c, err
		}
		c.eventTypes = ets
	}
	authOK := true
	if in.Auth != nil {
		a, err := secret.UnmaskAuth(*in.Auth, base.auth).Normalize()
		if err == nil && a.Type == webhook.AuthOAuth2 {
			err = s.checkTokenURL(a.TokenURL)
		}
		if err != nil {
			authOK = false
			if !check(fault.Prefix("input.auth", err)) {
				return c, err
			}
		} else {
			c.auth = a
		}
	}
	if in.Headers != nil {
		c.headers = secret.UnmaskHeaders(*in.Headers, base.headers)
	}
	if in.TLS.Set {
		c.tls = nil
		if t := in.TLS.Value; t != nil && !t.IsZero() {
			old := webhook.TLS{}
			if base.tls != nil {
				old = *base.tls
			}
			t := *t
			t.ClientKey = secret.Unmask(t.ClientKey, old.ClientKey)
			checked, err := t.Check(s.now())
			if err != nil {
				if !check(fault.Prefix("input.tls", err)) {
					return c, err
				}
			} else {
				c.tls = &checked
			}
		}
	}
	if c.typ != destination.HTTP {
		if in.TLS.Set && in.TLS.Value != nil && !in.TLS.Value.IsZero() {
			errs = append(errs, fault.Invalid("input.tls", "is only for HTTP endpoints; a %s endpoint's TLS settings go in its configuration", c.typ))
		}
		c.auth, c.headers, c.tls = webhook.Auth{Type: webhook.AuthNone}, nil, nil
	}
	if authOK {
		// Headers are checked against the authentication's header,
		// which must be known first.
		hs, err := webhook.CheckHeaders("input.headers", c.headers, c.auth)
		if !check(err) {
			return c, err
		}
		if err == nil {
			c.headers = hs
		}
	}
	c.retry = in.RetryPolicy.apply(c.retry)
	if err := c.retry.Validate(); !check(fault.Prefix("input.retryPolicy", err)) {
		return c, err
	}
	if in.Timeout != nil {
		c.timeout = *in.Timeout
	}
	if err := webhook.CheckTimeout("input.timeout", c.timeout); !check(err) {
		return c, err
	}
	if in.Filter.Set {
		f, err := CheckFilter("input.filter", in.Filter.Value)
		if !check(err) {
			return c, err
		}
		c.filter = f
	}
	if in.RateLimit.Set {
		c.rateLimit = in.RateLimit.Value
		if c.rateLimit != nil {
			if err := c.rateLimit.Validate(); !check(fault.Prefix("input.rateLimit", err)) {
				return c, err
			}
		}
	}
	if in.Transformation.Set {
		c.transformation = in.Transformation.Value
		if c.transformation != nil && strings.TrimSpace(*c.transformation) == "" {
			c.transformation = nil
		}
		if c.transformation != nil {
			tr := s.Transforms
			if tr == nil {
				tr = transform.New(transform.Limits{})
			}
			if _, err := tr.Compile(*c.transformation); err != nil {
				return c, fault.Invalid("input.transformation", "%s", strings.TrimPrefix(err.Error(), "transformation: "))
			}
		}
	}
	if in.Ordering != nil {
		switch o := *in.Ordering; o {
		case webhook.OrderNone, webhook.OrderByKey, webhook.OrderStrict:
			c.ordering = o
		default:
			errs = append(errs, fault.Invalid("input.ordering", "must be NONE, KEY or STRICT, got %q", o))
		}
	}
	return c, errs.Err()
}

// registry returns the destination types, HTTP only by default.
func (s *Service) registry() *destination.Registry {
	if s.Destinations == nil {
		s.Destinations = destination.NewRegistry(httpdest.Spec())
	}
	return s.Destinations
}

// checkDestination applies the input's destination type and configuration
// to c: an HTTP endpoint needs a url and no broker configuration; a
// broker endpoint needs its configuration (in the field named after its
// type, checked by its spec, whose errors name their field) and neither a
// url nor auth nor headers, and its url becomes the broker's address.
func (s *Service) checkDestination(c *config, base config, in Input) error {
	reg := s.registry()
	if in.Type != nil {
		c.typ = *in.Type
	}
	spec, ok := reg.Lookup(c.typ)
	if !ok {
		return fault.Invalid("input.type", "%s endpoints are not available in this installation", c.typ)
	}
	if spec.Managed || base.typ != c.typ && base.typ != "" && isManaged(reg, base.typ) {
		return s.checkManaged(c, base, in, spec)
	}
	if in.Destination != nil && in.DestinationField != spec.Field {
		other := "an HTTP"
		if o, ok := reg.ByField(in.DestinationField); ok {
			other = "a " + string(o.Type)
		}
		return fault.Invalid("input."+in.DestinationField, "configures %s endpoint, but the endpoint's type is %s", other, c.typ)
	}
	if c.typ == destination.HTTP {
		c.destination = nil
		if in.URL == nil && (base.url == "" || base.typ != destination.HTTP) {
			return fault.Invalid("input.url", "is required for HTTP endpoints")
		}
		return nil
	}
	switch {
	case in.URL != nil:
		return fault.Invalid("input.url", "is only for HTTP endpoints; a %s endpoint is configured by input.%s", spec.Type, spec.Field)
	case in.Auth != nil && in.Auth.Type != webhook.AuthNone:
		return fault.Invalid("input.auth", "is only for HTTP endpoints; a %s endpoint's credentials go in input.%s", spec.Type, spec.Field)
	case in.Headers != nil && len(*in.Headers) > 0:
		return fault.Invalid("input.headers", "are only for HTTP endpoints; a %s message carries Herald's headers as its own", spec.Type)
	case in.Destination == nil && base.typ == c.typ && base.destination != nil:
		return nil // unchanged
	case in.Destination == nil:
		return fault.Invalid("input."+spec.Field, "is required for %s endpoints", spec.Type)
	}
	var stored json.RawMessage
	if base.typ == c.typ {
		stored = base.destination
	}
	checked, err := reg.Check(c.typ, in.Destination, stored, s.Policy)
	if err != nil {
		var fe *destination.FieldError
		if errors.As(err, &fe) {
			field := "input." + spec.Field
			if fe.Field != "" {
				field += "." + fe.Field
			}
			return fault.Invalid(field, "%s", fe.Message)
		}
		return fault.Invalid("input."+spec.Field, "%v", err)
	}
	c.destination, c.url = checked.Config, checked.Address
	return nil
}

// isManaged reports whether endpoints of type t are created by an API of
// their own (listeners).
func isManaged(reg *destination.Registry, t destination.Type) bool {
	spec, ok := reg.Lookup(t)
	return ok && spec.Managed
}

// checkManaged applies the input to an endpoint of a managed type (a
// listener): it is created only through its own API, keeps its type, and
// has no url, auth or headers to change (its url says where its CLI
// forwards, as it said when it was created).
func (s *Service) checkManaged(c *config, base config, in Input, spec *destination.Spec) error {
	creating := in.listener != nil
	switch {
	case base.typ != c.typ && !creating && isManaged(s.registry(), base.typ):
		return fault.Invalid("input.type", "a %s endpoint keeps its type: create an endpoint of type %s instead", base.typ, c.typ)
	case base.typ != c.typ && !creating:
		return fault.Invalid("input.type", "%s endpoints are created by createListener (herald listen), not by createEndpoint or updateEndpoint", spec.Type)
	case in.Destination != nil:
		return fault.Invalid("input."+in.DestinationField, "configures another type of endpoint than %s", spec.Type)
	case !creating && in.URL != nil:
		return fault.Invalid("input.url", "cannot change: a %s endpoint's url says where its herald listen forwards", spec.Type)
	case in.Auth != nil && in.Auth.Type != webhook.AuthNone:
		return fault.Invalid("input.auth", "is only for HTTP endpoints: herald listen forwards with Herald's headers and signature")
	case in.Headers != nil && len(*in.Headers) > 0:
		return fault.Invalid("input.headers", "are only for HTTP endpoints: herald listen forwards with Herald's headers and signature")
	}
	c.destination = nil
	if creating && in.URL != nil {
		u := strings.TrimSpace(*in.URL)
		switch {
		case u == "":
			u = base.url
		case len(u) > 2048:
			return fault.Invalid("input.forwardTo", "is %d bytes long; the limit is 2048", len(u))
		case strings.ContainsAny(u, "\r\n"):
			return fault.Invalid("input.forwardTo", "must be one line")
		}
		c.url = u
	}
	return nil
}

// CheckFilter validates a payload filter; faults name the offending part
// of it under field ("input.filter.data.total.$gt"). It returns the filter
// compacted, or nil for an empty or null one (no filter).
func CheckFilter(field string, raw json.RawMessage) (json.RawMessage, error) {
	f, err := filter.Compile(raw)
	if err != nil {
		var fe *filter.Error
		if errors.As(err, &fe) {
			if fe.Path != "" {
				field += "." + fe.Path
			}
			return nil, fault.Invalid(field, "%s", fe.Message)
		}
		return nil, fault.Invalid(field, "%v", err)
	}
	if f == nil {
		return nil, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, fault.Invalid(field, "is not valid JSON: %v", err)
	}
	return b.Bytes(), nil
}

// checkTokenURL checks an OAuth2 token URL against the destination
// policy, as an endpoint's URL is: Herald fetches tokens from it.
func (s *Service) checkTokenURL(raw string) error {
	_, err := s.Policy.CheckURL(raw)
	var ue *destination.URLError
	switch {
	case errors.As(err, &ue):
		return fault.Invalid("tokenUrl", "%s", ue.Reason)
	case err != nil:
		return fault.Invalid("tokenUrl", "%v", err)
	}
	return nil
}

// checkQuotas refuses an endpoint configuration beyond the app's limits:
// its headers and filter if they change, and, on creation (count names the
// limit it counts toward: ENDPOINTS, or LISTENERS for a listener), one
// endpoint more than the app may have.
func checkQuotas(ctx context.Context, tx *ent.Client, appID string, c config, headers, filter bool, count quota.Name, now time.Time) error {
	a, err := tx.App.Get(tenant.System(ctx), appID)
	if err != nil {
		return fmt.Errorf("read the limits of app %s: %w", appID, err)
	}
	if headers {
		if err := quota.Bound(a.Limits, quota.HeadersPerEndpoint, len(c.headers), "input.headers"); err != nil {
			return err
		}
	}
	if filter {
		if err := quota.Bound(a.Limits, quota.FilterBytes, len(c.filter), "input.filter"); err != nil {
			return err
		}
	}
	if count != "" {
		used, err := quota.Used(ctx, tx, appID, count, now)
		if err != nil {
			return err
		}
		if limit := quota.Of(a.Limits, count); used+1 > limit {
			return quota.Exceeded(count, used, limit)
		}
	}
	return nil
}

// checkDuplicate refuses a second endpoint of the app with the same URL and
// overlapping event types. client may be a transactional client.
func checkDuplicate(ctx context.Context, client *ent.Client, c config, self string) error {
	same, err := client.Endpoint.Query().Where(endpoint.URL(c.url), endpoint.IDNEQ(self)).All(ctx)
	if err != nil {
		return fmt.Errorf("check duplicate endpoints: %w", err)
	}
	for _, other := range same {
		if webhook.Overlap(other.EventTypes, c.eventTypes) {
			return fault.Conflictf("WEBHOOK_EXISTS", "endpoint %s (%q) already receives overlapping event types at %s; change the URL or event types, or set allowDuplicate: true", other.ID, other.Name, redactURL(c.url))
		}
	}
	return nil
}

func (s *Service) get(ctx context.Context, id string) (*ent.Endpoint, error) {
	return getEndpoint(ctx, s.Client, id)
}

// getEndpoint reads an endpoint through client, which may be a
// transactional client.
func getEndpoint(ctx context.Context, client *ent.Client, id string) (*ent.Endpoint, error) {
	ep, err := client.Endpoint.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, fault.NotFoundf("endpoint %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	return ep, nil
}

func (s *Service) changed(ep *ent.Endpoint, reason string) {
	if s.Engine != nil {
		s.Engine.EndpointChanged(ep.AppID, ep.ID)
	}
	if s.Observer != nil {
		s.Observer.EndpointChanged(dispatch.EndpointChange{AppID: ep.AppID, EndpointID: ep.ID, Reason: reason, At: s.now()})
	}
}

// redactURL drops credentials and the query from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the same URL"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// Health summarises how an endpoint is doing.
type Health string

// Health values.
const (
	// Setup: nothing has been sent to the endpoint yet.
	Setup Health = "SETUP"
	// Ready: active, configured or tested, no recent traffic.
	Ready Health = "READY"
	// Live: a delivery succeeded in the last LiveWindow.
	Live Health = "LIVE"
	// Attention: disabled, or its latest attempt failed.
	Attention Health = "ATTENTION"
)

// LiveWindow is how recent a success must be for an endpoint to be LIVE.
const LiveWindow = 24 * time.Hour

// HealthOf returns the health of an endpoint at time now.
func HealthOf(ep *ent.Endpoint, now time.Time) Health {
	switch {
	case !ep.IsActive:
		return Attention
	case ep.LastFailureAt != nil && (ep.LastSuccessAt == nil || ep.LastFailureAt.After(*ep.LastSuccessAt)):
		return Attention
	case ep.ConsecutiveFailures > 0:
		return Attention
	case ep.LastSuccessAt != nil && now.Sub(*ep.LastSuccessAt) <= LiveWindow:
		return Live
	case ep.LastSuccessAt == nil && ep.LastFailureAt == nil:
		return Setup
	default:
		return Ready
	}
}

// NeedsAttention selects the endpoints whose health is Attention (see
// HealthOf), so that they can be counted without reading them.
func NeedsAttention() predicate.Endpoint {
	return endpoint.Or(
		endpoint.IsActive(false),
		endpoint.ConsecutiveFailuresGT(0),
		endpoint.And(
			endpoint.LastFailureAtNotNil(),
			endpoint.Or(
				endpoint.LastSuccessAtIsNil(),
				// Times are stored in UTC, whose text form (SQLite)
				// sorts in time order too.
				predicate.Endpoint(func(s *sql.Selector) {
					s.Where(sql.ColumnsGT(s.C(endpoint.FieldLastFailureAt), s.C(endpoint.FieldLastSuccessAt)))
				}),
			),
		),
	)
}
