package graph

import (
	"context"
	"fmt"

	"encoding/json"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/event"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph/model"
	"github.com/heraldhq/herald/scope"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// viewer returns the caller of the request.
func viewer(ctx context.Context) (tenant.Viewer, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return tenant.Viewer{}, tenant.ErrNoViewer
	}
	return v, nil
}

// requireAdmin returns FORBIDDEN unless the caller uses an admin key.
func requireAdmin(ctx context.Context) error {
	v, err := viewer(ctx)
	if err != nil {
		return err
	}
	if !v.Admin {
		return fault.Forbiddenf("this needs an admin API key; this key can only manage its own app's endpoints and events")
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// nullToEmpty maps a JSON null to "absent".
func nullToEmpty(v json.RawMessage) json.RawMessage {
	if string(v) == "null" {
		return nil
	}
	return v
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// authOut returns an endpoint's auth with its secrets masked.
func authOut(a webhook.Auth) *model.EndpointAuth {
	m := secret.MaskAuth(a)
	if m.Type == "" {
		m.Type = webhook.AuthNone
	}
	return &model.EndpointAuth{
		Type:         model.EndpointAuthType(m.Type),
		Token:        strPtr(m.Token),
		Username:     strPtr(m.Username),
		Password:     strPtr(m.Password),
		HeaderName:   strPtr(m.HeaderName),
		HeaderValue:  strPtr(m.HeaderValue),
		Secret:       strPtr(m.Secret),
		TokenURL:     strPtr(m.TokenURL),
		ClientID:     strPtr(m.ClientID),
		ClientSecret: strPtr(m.ClientSecret),
		Scopes:       m.Scopes,
		Audience:     strPtr(m.Audience),
	}
}

// tlsOut returns an endpoint's mutual TLS with its key masked (nil: none).
func tlsOut(t *webhook.TLS, now time.Time) *model.EndpointTLS {
	if t == nil || t.IsZero() {
		return nil
	}
	m := secret.MaskTLS(*t)
	return &model.EndpointTLS{
		ClientCertificate: strPtr(m.ClientCertificate),
		ClientKey:         strPtr(m.ClientKey),
		CaCertificates:    strPtr(m.CACertificates),
		ExpiresAt:         m.NotAfter,
		ExpiresSoon:       m.ExpiresSoon(now),
	}
}

// tlsIn converts a mutual TLS input (nil: none).
func tlsIn(in *model.EndpointTLSInput) *webhook.TLS {
	if in == nil {
		return nil
	}
	return &webhook.TLS{ClientCertificate: deref(in.ClientCertificate), ClientKey: deref(in.ClientKey), CACertificates: deref(in.CaCertificates)}
}

// endpointInput converts the GraphQL input of createEndpoint and
// updateEndpoint.
func endpointInput(name, description, url *string, eventTypes []string, a *model.EndpointAuthInput, headers []*model.HeaderInput,
	retry *model.RetryPolicyInput, timeout *time.Duration, isActive, allowDuplicate *bool) endpoints.Input {
	in := endpoints.Input{
		Name:           name,
		Description:    description,
		URL:            url,
		EventTypes:     eventTypes,
		Timeout:        timeout,
		IsActive:       isActive,
		AllowDuplicate: deref(allowDuplicate),
	}
	if a != nil {
		in.Auth = &webhook.Auth{
			Type:         webhook.AuthType(a.Type),
			Token:        deref(a.Token),
			Username:     deref(a.Username),
			Password:     deref(a.Password),
			HeaderName:   deref(a.HeaderName),
			HeaderValue:  deref(a.HeaderValue),
			Secret:       deref(a.Secret),
			TokenURL:     deref(a.TokenURL),
			ClientID:     deref(a.ClientID),
			ClientSecret: deref(a.ClientSecret),
			Scopes:       a.Scopes,
			Audience:     deref(a.Audience),
		}
	}
	if headers != nil {
		hs := make([]webhook.Header, len(headers))
		for i, h := range headers {
			hs[i] = webhook.Header{Name: h.Name, Value: h.Value, Secret: deref(h.Secret)}
		}
		in.Headers = &hs
	}
	if retry != nil {
		in.RetryPolicy = &endpoints.RetryPolicyPatch{
			MaxAttempts:       retry.MaxAttempts,
			InitialDelay:      retry.InitialDelay,
			BackoffMultiplier: retry.BackoffMultiplier,
			MaxDelay:          retry.MaxDelay,
		}
	}
	return in
}

// rateLimitOf converts a rate limit input (nil: none).
func rateLimitOf(in *model.RateLimitInput) *webhook.RateLimit {
	if in == nil {
		return nil
	}
	return &webhook.RateLimit{Requests: in.Requests, Per: in.Per}
}

// orderingOf converts an ordering input (nil: unchanged).
func orderingOf(o *endpoint.Ordering) *webhook.Ordering {
	if o == nil {
		return nil
	}
	w := webhook.Ordering(*o)
	return &w
}

func publishInput(in *model.PublishEventInput) dispatch.EventInput {
	return dispatch.EventInput{EventType: in.EventType, Payload: nullToEmpty(in.Payload), IdempotencyKey: deref(in.IdempotencyKey),
		OrderingKey: deref(in.OrderingKey), DeliverAt: in.DeliverAt}
}

// requireEndpoint returns NOT_FOUND unless the endpoint exists in the
// caller's app.
func (r *Resolver) requireEndpoint(ctx context.Context, id string) error {
	ok, err := r.client.Endpoint.Query().Where(endpoint.ID(id)).Exist(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fault.NotFoundf("endpoint %q not found", id)
	}
	return nil
}

// eventScalars are the fields of Event that need no further loading.
var eventScalars = map[string]bool{
	"id": true, "eventType": true, "payload": true, "idempotencyKey": true,
	"deliveryCount": true, "createdAt": true, "__typename": true,
}

// eventEntities returns published events as entities for the response.
// When the query asks only for an event's own fields they are built from
// what was stored; otherwise (deliveries) they are read back.
func (r *Resolver) eventEntities(ctx context.Context, evs []*dispatch.Event) ([]*ent.Event, error) {
	reload := false
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		if !eventScalars[f.Name] {
			reload = true
		}
	}
	out := make([]*ent.Event, len(evs))
	if !reload {
		for i, ev := range evs {
			out[i] = &ent.Event{
				ID: ev.ID, AppID: ev.AppID, EventType: ev.EventType, Payload: ev.Payload,
				IdempotencyKey: ev.IdempotencyKey, DeliveryCount: ev.DeliveryCount, CreatedAt: ev.CreatedAt,
			}
		}
		return out, nil
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	stored, err := r.client.Event.Query().Where(event.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load published events: %w", err)
	}
	byID := make(map[string]*ent.Event, len(stored))
	for _, ev := range stored {
		byID[ev.ID] = ev
	}
	for i, id := range ids {
		if out[i] = byID[id]; out[i] == nil {
			return nil, fmt.Errorf("published event %s not found", id)
		}
	}
	return out, nil
}

// scopesIn converts API scopes; nil stays nil (full access, or none given).
func scopesIn(in []model.APIKeyScope) []scope.Scope {
	if in == nil {
		return nil
	}
	out := make([]scope.Scope, len(in))
	for i, s := range in {
		out[i] = scope.Scope(s)
	}
	return out
}

// scopesOut converts stored scopes for the API; nil stays nil.
func scopesOut(in []string) []model.APIKeyScope {
	if in == nil {
		return nil
	}
	out := make([]model.APIKeyScope, len(in))
	for i, s := range in {
		out[i] = model.APIKeyScope(s)
	}
	return out
}
