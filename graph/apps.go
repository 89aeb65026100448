package graph

import (
	"context"
	"fmt"

	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/app"
	"github.com/heraldhq/herald/ent/attempt"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/event"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph/model"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
)

// readApp returns the context to read the figures of app a with (what, for
// messages): the request's own for the app it acts in, and for an admin
// key, which may read every app's, one that reaches the other app (the
// caller filters by app ID itself). Other keys are refused another app's.
func readApp(ctx context.Context, a *ent.App, what string) (context.Context, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case a.ID == v.AppID:
		return ctx, nil
	case v.Admin:
		return tenant.System(ctx), nil
	}
	return nil, fault.Forbiddenf("%s of app %s: only the app this key belongs to", what, a.ID)
}

// endpointSummary counts an app's endpoints and those needing attention.
func (r *Resolver) endpointSummary(ctx context.Context, appID string) (*model.EndpointSummary, error) {
	q := func() *ent.EndpointQuery {
		return r.client.Endpoint.Query().Where(endpoint.AppID(appID), endpoint.DeletedAtIsNil())
	}
	total, err := q().Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("count endpoints of app %s: %w", appID, err)
	}
	attention, err := q().Where(endpoints.NeedsAttention()).Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("count endpoints needing attention of app %s: %w", appID, err)
	}
	return &model.EndpointSummary{Total: total, NeedingAttention: attention}, nil
}

// locate finds the app of an object by its ID: in every app for admin
// keys, in its own for other keys (the data layer's isolation).
func (r *Resolver) locate(ctx context.Context, id string) (*model.Location, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	read := ctx
	if v.Admin {
		read = tenant.System(ctx)
	}
	var (
		typ   = nodeTypes[ids.Prefix(id)]
		appID string
	)
	switch typ {
	case "Endpoint":
		var ep *ent.Endpoint
		if ep, err = r.client.Endpoint.Query().Where(endpoint.ID(id)).Only(read); err == nil {
			appID = ep.AppID
		}
	case "EventType":
		var et *ent.EventType
		if et, err = r.client.EventType.Query().Where(eventtype.ID(id)).Only(read); err == nil {
			appID = et.AppID
			if et.CatalogID != "" {
				appID, err = r.sharedTypeApp(ctx, v.AppID, et.CatalogID)
			}
		}
	case "Event":
		var ev *ent.Event
		if ev, err = r.client.Event.Query().Where(event.ID(id)).Only(read); err == nil {
			appID = ev.AppID
		}
	case "Delivery":
		var d *ent.Delivery
		if d, err = r.client.Delivery.Query().Where(delivery.ID(id)).Only(read); err == nil {
			appID = d.AppID
		}
	case "Attempt":
		var at *ent.Attempt
		if at, err = r.client.Attempt.Query().Where(attempt.ID(id)).Only(read); err == nil {
			appID = at.AppID
		}
	default:
		return nil, fault.Invalid("id", "%q is not the ID of an endpoint, event type, event, delivery or attempt (they start with ep_, et_, evt_, dlv_ or att_)", id)
	}
	if ent.IsNotFound(err) {
		return nil, fault.NotFoundf("no app has a %s with ID %q", typ, id)
	}
	if err != nil {
		return nil, fmt.Errorf("locate %s: %w", id, err)
	}
	a, err := r.client.App.Get(tenant.System(ctx), appID)
	if err != nil {
		return nil, fmt.Errorf("locate %s: load app %s: %w", id, appID, err)
	}
	return &model.Location{ID: id, Type: typ, App: a}, nil
}

// sharedTypeApp answers locate for a type of a shared catalog, which
// belongs to no app: an app that has it, the caller's if it does.
func (r *Resolver) sharedTypeApp(ctx context.Context, viewerApp, catalogID string) (string, error) {
	sys := tenant.System(ctx)
	first, err := r.client.App.Query().Where(app.CatalogID(catalogID)).
		Order(ent.Asc(app.FieldCreatedAt)).Limit(1).IDs(sys)
	if err != nil {
		return "", err
	}
	in, err := r.client.App.Query().Where(app.ID(viewerApp), app.CatalogID(catalogID)).Exist(sys)
	if err != nil {
		return "", err
	}
	switch {
	case in:
		return viewerApp, nil
	case len(first) == 0:
		return "", fault.NotFoundf("event type is in a catalog that no app belongs to: read it through catalogs { eventTypes }")
	}
	return first[0], nil
}
