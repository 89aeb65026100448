package endpoints

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/quota"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/signing"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// Open returns an endpoint's secret-bearing configuration in the clear, as
// Herald uses it: the signing secrets, auth, headers, destination and TLS.
// It is never stored or shown as it is: the API masks it.
func (s *Service) Open(ep *ent.Endpoint) (secret.Endpoint, error) {
	plain, err := s.Secrets.OpenEndpoint(dispatch.EndpointSecrets(ep, s.registry()))
	if err != nil {
		return secret.Endpoint{}, fmt.Errorf("read the secrets of endpoint %s: %w", ep.ID, err)
	}
	return plain, nil
}

// baseOf returns the configuration of a stored endpoint, secrets in the
// clear.
func (s *Service) baseOf(cur *ent.Endpoint) (config, secret.Endpoint, error) {
	plain, err := s.Open(cur)
	if err != nil {
		return config{}, plain, err
	}
	base := config{
		typ: cur.Type, destination: plain.Destination, transformation: cur.Transformation,
		name: cur.Name, description: cur.Description, url: cur.URL, eventTypes: cur.EventTypes,
		auth: plain.Auth, headers: plain.Headers, retry: cur.RetryPolicy, timeout: cur.Timeout,
		filter: cur.Filter, rateLimit: cur.RateLimit, ordering: webhook.Ordering(cur.Ordering), tls: plain.TLS,
		isActive: cur.IsActive,
	}
	if base.typ == "" {
		base.typ = destination.HTTP
	}
	return base, plain, nil
}

// sealed returns the stored form of an endpoint's secrets: signing is the
// current signing secret or private key, previous the one a rotation still
// signs with ("" if none), c the rest of its configuration, in the clear.
func (s *Service) sealed(id, signing, previous string, c config) (secret.Endpoint, error) {
	e := secret.Endpoint{ID: id, Signing: signing, PreviousSigning: previous, Auth: c.auth, Headers: c.headers,
		Destination: c.destination, TLS: c.tls}
	if spec, ok := s.registry().Lookup(c.typ); ok {
		e.DestinationSecrets = spec.Secrets()
	}
	out, err := s.Secrets.SealEndpoint(e)
	if err != nil {
		return out, fmt.Errorf("seal the secrets of endpoint %s: %w", id, err)
	}
	return out, nil
}

// newSigningKey returns a new signing secret of a scheme, and what
// receivers verify with: the secret itself for HMAC_SHA256, the public
// key for ED25519.
func (s *Service) newSigningKey(scheme endpoint.SignatureScheme) (key, verify, public string, err error) {
	if scheme == endpoint.SignatureSchemeED25519 {
		priv, pub, err := signing.NewKeyPair(s.Rand)
		return priv, pub, pub, err
	}
	sec, err := signing.NewSecret(s.Rand)
	return sec, sec, "", err
}

// Create creates an endpoint in the viewer's app and returns it with what
// receivers verify its signatures with: its signing secret, shown only
// now (and by rotation and reveal), or its Ed25519 public key.
func (s *Service) Create(ctx context.Context, in Input) (*ent.Endpoint, string, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, "", tenant.ErrNoViewer
	}
	var missing fault.List
	if in.Name == nil {
		missing = append(missing, fault.Invalid("input.name", "is required"))
	}
	if in.EventTypes == nil {
		missing = append(missing, fault.Invalid("input.eventTypes", "is required; use [\"*\"] for every event type"))
	}
	base := config{typ: destination.HTTP, auth: webhook.Auth{Type: webhook.AuthNone}, retry: webhook.DefaultRetryPolicy(), timeout: webhook.DefaultTimeout, ordering: webhook.OrderNone}
	counts := quota.Endpoints
	if in.listener != nil {
		base.typ, base.url, counts = listenerType, DefaultForwardTo, quota.Listeners
	}
	c, err := s.validate(ctx, v.AppID, base, in)
	if len(missing) > 0 {
		// What is there is checked too, so that every field is reported
		// (once: a missing name is not also too short).
		var rest fault.List
		if err != nil && !rest.Add(err) {
			return nil, "", err
		}
		for _, f := range rest {
			if !slices.ContainsFunc(missing, func(m *fault.Error) bool { return m.Field == f.Field }) {
				missing = append(missing, f)
			}
		}
		return nil, "", missing.Err()
	}
	if err != nil {
		return nil, "", err
	}
	scheme := endpoint.SignatureSchemeHMAC_SHA256
	if in.SignatureScheme != nil {
		if err := endpoint.SignatureSchemeValidator(*in.SignatureScheme); err != nil {
			return nil, "", fault.Invalid("input.signatureScheme", "must be HMAC_SHA256 or ED25519")
		}
		scheme = *in.SignatureScheme
	}
	if !in.AllowDuplicate && in.listener == nil {
		if err := checkDuplicate(ctx, s.Client, c, ""); err != nil {
			return nil, "", err
		}
	}
	key, verify, public, err := s.newSigningKey(scheme)
	if err != nil {
		return nil, "", fmt.Errorf("create endpoint: %w", err)
	}
	active := in.IsActive == nil || *in.IsActive
	c.isActive = active
	now := s.now()
	id := ids.New(ids.Endpoint)
	sealed, err := s.sealed(id, key, "", c)
	if err != nil {
		return nil, "", err
	}
	var ep *ent.Endpoint
	err = db.WithTx(ctx, s.Client, func(tx *ent.Client) error {
		create := tx.Endpoint.Create().
			SetID(id).
			SetType(c.typ).
			SetName(c.name).
			SetDescription(c.description).
			SetURL(c.url).
			SetEventTypes(c.eventTypes).
			SetAuth(sealed.Auth).
			SetHeaders(sealed.Headers).
			SetRetryPolicy(c.retry).
			SetTimeout(c.timeout).
			SetOrdering(endpoint.Ordering(c.ordering)).
			SetIsActive(active).
			SetSignatureScheme(scheme).
			SetSecret(sealed.Signing).
			SetSecretsKey(s.Secrets.Primary())
		if public != "" {
			create.SetPublicKey(public)
		}
		if c.filter != nil {
			create.SetFilter(c.filter)
		}
		if sealed.Destination != nil {
			create.SetDestination(sealed.Destination)
		}
		if sealed.TLS != nil {
			create.SetTLS(sealed.TLS).SetNillableCertificateExpiresAt(c.tls.NotAfter)
		}
		create.SetNillableTransformation(c.transformation)
		if c.rateLimit != nil {
			create.SetRateLimit(c.rateLimit)
		}
		if !active {
			create.SetDisabledReason("created inactive").SetDisabledAt(now)
		}
		if l := in.listener; l != nil {
			create.SetListenerTTL(l.ttl).SetListenerSeenAt(now).SetListenerExpiresAt(now.Add(l.ttl))
		}
		// Marking the app's endpoints changed locks its row: concurrent
		// creations count each other.
		if err := dispatch.MarkEndpointsChanged(ctx, tx, v.AppID); err != nil {
			return err
		}
		if err := checkQuotas(ctx, tx, v.AppID, c, true, true, counts, now); err != nil {
			return err
		}
		var err error
		if ep, err = create.Save(ctx); err != nil {
			return fmt.Errorf("create endpoint: %w", err)
		}
		fields := changes(config{}, c, s.registry())
		fields["secret"], fields["signatureScheme"] = secret.Changed, scheme.String()
		if public != "" {
			fields["publicKey"] = public
		}
		return audit.Record(ctx, tx, audit.Change{TargetType: "Endpoint", TargetID: id, Fields: fields}, now)
	})
	if err != nil {
		return nil, "", err
	}
	s.changed(ep, "created")
	return ep, verify, nil
}

// Update changes an endpoint of the viewer's app. Changing the URL or event
// types keeps the secret. Setting IsActive re-enables a disabled endpoint
// (resetting its consecutive failures) or disables an active one (failing
// its queued deliveries).
//
// The endpoint is read, merged with in, checked (duplicates included) and
// written in one transaction, so concurrent updates of different fields
// all take effect, and IsActive applies to the endpoint as it is when the
// update is written (an endpoint the engine has just disabled is enabled
// again).
func (s *Service) Update(ctx context.Context, id string, in Input) (*ent.Endpoint, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, tenant.ErrNoViewer
	}
	if in.SignatureScheme != nil {
		return nil, fault.Invalid("input.signatureScheme", "changes by rotating the secret: rotateEndpointSecret(id, input: {signatureScheme: %s})", *in.SignatureScheme)
	}
	now := s.now()
	var ep *ent.Endpoint
	err := db.WithTx(ctx, s.Client, func(tx *ent.Client) error {
		cur, err := getEndpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		base, plain, err := s.baseOf(cur)
		if err != nil {
			return err
		}
		c, err := s.validate(ctx, v.AppID, base, in)
		if err != nil {
			return err
		}
		if !in.AllowDuplicate && c.typ != listenerType && (c.url != cur.URL || in.EventTypes != nil) {
			if err := checkDuplicate(ctx, tx, c, id); err != nil {
				return err
			}
		}
		if err := checkQuotas(ctx, tx, v.AppID, c, in.Headers != nil, in.Filter.Set, "", now); err != nil {
			return err
		}
		sealed, err := s.sealed(id, plain.Signing, plain.PreviousSigning, c)
		if err != nil {
			return err
		}
		u := tx.Endpoint.UpdateOneID(id).
			SetType(c.typ).
			SetName(c.name).
			SetDescription(c.description).
			SetURL(c.url).
			SetEventTypes(c.eventTypes).
			SetAuth(sealed.Auth).
			SetHeaders(sealed.Headers).
			SetRetryPolicy(c.retry).
			SetTimeout(c.timeout).
			SetOrdering(endpoint.Ordering(c.ordering)).
			SetSecret(sealed.Signing).
			SetSecretsKey(s.Secrets.Primary())
		if sealed.PreviousSigning != "" {
			u.SetPreviousSecret(sealed.PreviousSigning)
		}
		if c.filter != nil {
			u.SetFilter(c.filter)
		} else {
			u.ClearFilter()
		}
		if sealed.Destination != nil {
			u.SetDestination(sealed.Destination)
		} else {
			u.ClearDestination()
		}
		if sealed.TLS != nil {
			u.SetTLS(sealed.TLS).SetNillableCertificateExpiresAt(c.tls.NotAfter)
			if base.tls == nil || !sameTime(base.tls.NotAfter, c.tls.NotAfter) {
				u.ClearCertificateWarnedAt() // a new certificate: warn again before it expires
			}
		} else {
			u.ClearTLS().ClearCertificateExpiresAt().ClearCertificateWarnedAt()
		}
		if c.transformation != nil {
			u.SetTransformation(*c.transformation)
		} else {
			u.ClearTransformation()
		}
		if c.rateLimit != nil {
			u.SetRateLimit(c.rateLimit)
		} else {
			u.ClearRateLimit()
		}
		if in.IsActive != nil && *in.IsActive && !cur.IsActive {
			u.SetIsActive(true).SetConsecutiveFailures(0).ClearDisabledReason().ClearDisabledAt()
		}
		if err := u.Exec(ctx); err != nil {
			return fmt.Errorf("update endpoint %s: %w", id, err)
		}
		if in.IsActive != nil && !*in.IsActive && cur.IsActive {
			if _, err := dispatch.DisableEndpoint(ctx, tx, id, "disabled by updateEndpoint", now); err != nil {
				return err
			}
		}
		if in.IsActive != nil {
			c.isActive = *in.IsActive
		}
		if err := dispatch.MarkEndpointsChanged(ctx, tx, cur.AppID); err != nil {
			return err
		}
		if ep, err = getEndpoint(ctx, tx, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{TargetType: "Endpoint", TargetID: id, Fields: changes(base, c, s.registry())}, now)
	})
	if err != nil {
		return nil, err
	}
	if s.Engine != nil && in.IsActive != nil {
		if ep.IsActive {
			s.Engine.EndpointEnabled(ep.AppID, id)
		} else {
			s.Engine.EndpointDisabled(ctx, ep.AppID, id, "endpoint disabled by updateEndpoint")
		}
	}
	s.changed(ep, "updated")
	return ep, nil
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// Delete soft-deletes an endpoint of the viewer's app: it disappears from
// queries and receives nothing more, its queued deliveries fail (the engine
// fails them once it learns of the deletion), and its deliveries and
// attempts stay in the logs.
func (s *Service) Delete(ctx context.Context, id string) error {
	cur, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	now := s.now()
	err = db.WithTx(ctx, s.Client, func(tx *ent.Client) error {
		n, err := tx.Endpoint.Update().
			Where(endpoint.ID(id)).
			SetDeletedAt(now).
			SetIsActive(false).
			SetDisabledReason("deleted").
			SetDisabledAt(now).
			Save(ctx)
		if err != nil {
			return fmt.Errorf("delete endpoint %s: %w", id, err)
		}
		if n == 0 {
			return fault.NotFoundf("endpoint %q not found", id)
		}
		if err := dispatch.MarkEndpointsChanged(ctx, tx, cur.AppID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{TargetType: "Endpoint", TargetID: id,
			Fields: map[string]any{"deletedAt": now, "name": cur.Name, "url": redactURL(cur.URL)}}, now)
	})
	if err != nil {
		return err
	}
	if s.Engine != nil {
		s.Engine.EndpointDisabled(ctx, cur.AppID, id, "endpoint deleted")
	}
	if s.Observer != nil {
		v, _ := tenant.FromContext(ctx)
		s.Observer.EndpointChanged(dispatch.EndpointChange{AppID: v.AppID, EndpointID: id, Reason: "deleted", At: now})
	}
	return nil
}

// DefaultOverlap is how long a rotated-out secret keeps signing.
const DefaultOverlap = 24 * time.Hour

// MaxOverlap is the longest rotation overlap.
const MaxOverlap = 7 * 24 * time.Hour

// RotateSecret gives an endpoint a new signing secret, or key pair, of
// the given scheme (nil: the endpoint's), and returns what receivers
// verify with: the new secret, or the new public key. Until the overlap
// ends, deliveries carry signatures by both the new and the previous
// secret (v1 and v1a side by side when the scheme changed), so receivers
// can switch without losing messages.
func (s *Service) RotateSecret(ctx context.Context, id string, overlap *time.Duration, scheme *endpoint.SignatureScheme) (*ent.Endpoint, string, error) {
	d := DefaultOverlap
	if overlap != nil {
		d = *overlap
	}
	if d < 0 || d > MaxOverlap {
		return nil, "", fault.Invalid("input.overlap", "must be between 0s and %s, got %s", MaxOverlap, d)
	}
	if scheme != nil {
		if err := endpoint.SignatureSchemeValidator(*scheme); err != nil {
			return nil, "", fault.Invalid("input.signatureScheme", "must be HMAC_SHA256 or ED25519")
		}
	}
	now := s.now()
	var (
		ep     *ent.Endpoint
		verify string
	)
	err := db.WithTx(ctx, s.Client, func(tx *ent.Client) error {
		cur, err := getEndpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		base, plain, err := s.baseOf(cur)
		if err != nil {
			return err
		}
		to := cur.SignatureScheme
		if scheme != nil {
			to = *scheme
		}
		key, v, public, err := s.newSigningKey(to)
		if err != nil {
			return fmt.Errorf("rotate secret of endpoint %s: %w", id, err)
		}
		verify = v
		previous := ""
		if d > 0 {
			previous = plain.Signing
		}
		sealed, err := s.sealed(id, key, previous, base)
		if err != nil {
			return err
		}
		u := tx.Endpoint.UpdateOneID(id).SetSecret(sealed.Signing).SetSignatureScheme(to).
			SetAuth(sealed.Auth).SetHeaders(sealed.Headers).SetSecretsKey(s.Secrets.Primary())
		if sealed.Destination != nil {
			u.SetDestination(sealed.Destination)
		}
		if sealed.TLS != nil {
			u.SetTLS(sealed.TLS)
		}
		if public != "" {
			u.SetPublicKey(public)
		} else {
			u.ClearPublicKey()
		}
		if d > 0 {
			u.SetPreviousSecret(sealed.PreviousSigning).SetPreviousSecretExpiresAt(now.Add(d))
		} else {
			u.ClearPreviousSecret().ClearPreviousSecretExpiresAt()
		}
		if ep, err = u.Save(ctx); err != nil {
			return fmt.Errorf("rotate secret of endpoint %s: %w", id, err)
		}
		fields := map[string]any{"secret": secret.Changed, "overlap": d.String(), "signatureScheme": to.String()}
		if public != "" {
			fields["publicKey"] = public
		}
		return audit.Record(ctx, tx, audit.Change{TargetType: "Endpoint", TargetID: id, Fields: fields}, now)
	})
	if err != nil {
		return nil, "", err
	}
	s.changed(ep, "secret rotated")
	return ep, verify, nil
}

// RevealSecret returns an endpoint of the viewer's app with what receivers
// verify its signatures with, for a caller allowed to manage it: its
// current signing secret, or its public key (an Ed25519 private key never
// leaves Herald). Each reveal is recorded in the audit log.
func (s *Service) RevealSecret(ctx context.Context, id string) (*ent.Endpoint, string, error) {
	ep, err := s.get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	shown := "secret"
	var verify string
	if ep.SignatureScheme == endpoint.SignatureSchemeED25519 && ep.PublicKey != nil {
		verify, shown = *ep.PublicKey, "publicKey"
	} else {
		plain, err := s.Open(ep)
		if err != nil {
			return nil, "", err
		}
		verify = plain.Signing
	}
	if err := audit.Record(ctx, s.Client, audit.Change{TargetType: "Endpoint", TargetID: id, Fields: map[string]any{"revealed": shown}}, s.now()); err != nil {
		return nil, "", err
	}
	return ep, verify, nil
}
