package graph_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// tenant is an app with one of everything.
type tenant struct {
	AppID, Token, KeyID                                     string
	EndpointID, EventTypeID, EventID, DeliveryID, AttemptID string
	EventTypeName                                           string
	Receiver                                                *heraldtest.Receiver
}

// ids returns every ID of the tenant's objects.
func (tn tenant) ids() map[string]string {
	return map[string]string{
		"app": tn.AppID, "apiKey": tn.KeyID, "endpoint": tn.EndpointID, "eventType": tn.EventTypeID,
		"event": tn.EventID, "delivery": tn.DeliveryID, "attempt": tn.AttemptID,
	}
}

// newTenant creates an app with an app key, an event type, an endpoint, and
// an event delivered to it.
func newTenant(t *testing.T, s *heraldtest.Server, name string) tenant {
	t.Helper()
	tn := tenant{EventTypeName: name + ".only", Receiver: heraldtest.NewReceiver(t, nil)}
	tn.AppID, tn.Token = s.NewApp(name)
	c := s.As(t, tn.Token)
	var v viewer
	c.Must(&v, viewerOp, nil)
	tn.KeyID = v.Viewer.APIKey.ID
	tn.EventTypeID = createEventType(t, c, map[string]any{"name": tn.EventTypeName})
	ep, _ := createEndpoint(t, c, map[string]any{"name": name + " hook", "url": tn.Receiver.Hook("/" + name)})
	tn.EndpointID = ep.ID
	tn.EventID = publish(t, c, "order.created", map[string]any{"app": name})
	d := s.WaitDelivery(tn.Token, tn.EventID, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	tn.DeliveryID = d.ID
	if len(d.Attempts.Edges) != 1 {
		t.Fatalf("delivery %s has %d attempts", d.ID, len(d.Attempts.Edges))
	}
	tn.AttemptID = d.Attempts.Edges[0].Node.ID
	return tn
}

func TestIsolation_OtherAppsObjectsAreNotFound(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	a, b := newTenant(t, s, "alpha"), newTenant(t, s, "beta")
	ca := s.As(t, a.Token)

	for kind, id := range b.ids() {
		r := ca.Do(`query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
		if r.Code() != "NOT_FOUND" || string(r.Data) != `{"node":null}` {
			t.Errorf("node(%s of app B) with A's key: want NOT_FOUND and null, got %s", kind, r.Body)
		}
	}
	var ids []string
	for _, id := range b.ids() {
		ids = append(ids, id)
	}
	r := ca.Do(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": ids})
	if want := `{"nodes":[` + strings.TrimSuffix(strings.Repeat("null,", len(ids)), ",") + `]}`; string(r.Data) != want {
		t.Errorf("nodes(B's IDs) with A's key = %s, want all null", r.Body)
	}
	r.WantError(t, "NOT_FOUND")

	vars := map[string]any{"ep": b.EndpointID, "et": b.EventTypeID, "dlv": b.DeliveryID}
	for name, op := range map[string]string{
		"updateEndpoint":       `mutation($ep: ID!) { updateEndpoint(id: $ep, input: {name: "pwned"}) { id } }`,
		"updateEndpoint url":   `mutation($ep: ID!) { updateEndpoint(id: $ep, input: {url: "https://evil.example/steal"}) { id } }`,
		"deleteEndpoint":       `mutation($ep: ID!) { deleteEndpoint(id: $ep) { deletedId } }`,
		"rotateEndpointSecret": `mutation($ep: ID!) { rotateEndpointSecret(id: $ep) { secret } }`,
		"testEndpoint":         `mutation($ep: ID!) { testEndpoint(id: $ep) { delivered } }`,
		"revealEndpointSecret": `mutation($ep: ID!) { revealEndpointSecret(id: $ep) { secret } }`,
		"retryDelivery":        `mutation($dlv: ID!) { retryDelivery(id: $dlv) { id } }`,
		"replayDeliveries":     `mutation($ep: ID!) { replayDeliveries(endpointId: $ep, since: "2000-01-01T00:00:00Z", status: SUCCEEDED) { count } }`,
		"updateEventType":      `mutation($et: ID!) { updateEventType(id: $et, input: {description: "pwned"}) { id } }`,
		"archiveEventType":     `mutation($et: ID!) { archiveEventType(id: $et) { id } }`,
		"unarchiveEventType":   `mutation($et: ID!) { unarchiveEventType(id: $et) { id } }`,
	} {
		r := ca.Do(op, vars)
		if r.Code() != "NOT_FOUND" {
			t.Errorf("%s on app B's object with A's key: want NOT_FOUND, got %s", name, r.Body)
		}
		if strings.Contains(string(r.Body), "beta") {
			t.Errorf("%s: the error reveals B's data: %s", name, r.Body)
		}
	}

	// B's objects are untouched.
	cb := s.As(t, b.Token)
	ep := getEndpoint(t, cb, b.EndpointID)
	if ep.Name != "beta hook" || ep.URL != b.Receiver.Hook("/beta") || !ep.IsActive || ep.PreviousSecretExpiresAt != nil {
		t.Errorf("B's endpoint changed: %+v", ep)
	}
	if et := getEventType(t, cb, b.EventTypeID); et.Description != "" || et.ArchivedAt != nil {
		t.Errorf("B's event type changed: %+v", et)
	}
	if d := s.Deliveries(b.Token, b.EventID); len(d) != 1 || d[0].Status != "SUCCEEDED" || d[0].AttemptCount != 1 {
		t.Errorf("B's delivery changed: %+v", d)
	}
	if n := len(b.Receiver.Requests()); n != 1 {
		t.Errorf("B's receiver got %d requests, want only its own event", n)
	}
}

func TestIsolation_ListsShowOnlyOwnApp(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	a, b := newTenant(t, s, "alpha"), newTenant(t, s, "beta")
	ca := s.As(t, a.Token)

	lists := map[string]struct {
		query string
		want  string // an ID of A's that the list must show
	}{
		"endpoints":  {`{ endpoints(first: 100) { totalCount edges { node { id name url deliveries { edges { node { id } } } } } } }`, a.EndpointID},
		"events":     {`{ events(first: 100) { totalCount edges { node { id payload deliveries { edges { node { id endpointID } } } } } } }`, a.EventID},
		"deliveries": {`{ deliveries(first: 100) { totalCount edges { node { id eventID endpointID event { id } endpoint { id } attempts { edges { node { id requestURL } } } } } } }`, a.AttemptID},
		"eventTypes": {`{ eventTypes(first: 100) { totalCount edges { node { id name } } } }`, a.EventTypeID},
		"apiKeys":    {`{ apiKeys(first: 100) { totalCount edges { node { id name app { id } } } } }`, a.KeyID},
		"apps":       {`{ apps(first: 100) { totalCount edges { node { id name } } } }`, a.AppID},
	}
	for name, l := range lists {
		r := ca.Do(l.query, nil)
		r.Decode(t, nil)
		body := string(r.Body)
		if !strings.Contains(body, l.want) {
			t.Errorf("%s with A's key does not show A's %s: %s", name, l.want, body)
		}
		for kind, id := range b.ids() {
			if strings.Contains(body, id) {
				t.Errorf("%s with A's key shows B's %s %s", name, kind, id)
			}
		}
		for _, leak := range []string{"beta", b.Receiver.URL} {
			if strings.Contains(body, leak) {
				t.Errorf("%s with A's key mentions %q: %s", name, leak, body)
			}
		}
	}

	var counts struct {
		Endpoints, Events, Deliveries, APIKeys, Apps struct{ TotalCount int }
	}
	ca.Must(&counts, `{ endpoints { totalCount } events { totalCount } deliveries { totalCount } apiKeys { totalCount } apps { totalCount } }`, nil)
	if c := counts; c.Endpoints.TotalCount != 1 || c.Events.TotalCount != 1 || c.Deliveries.TotalCount != 1 || c.APIKeys.TotalCount != 1 || c.Apps.TotalCount != 1 {
		t.Errorf("A's totals = %+v, want one of each", c)
	}

	// An admin key without X-Herald-App sees its own app's data only,
	// though it may list every app and key.
	var admin struct {
		Endpoints, Events, Deliveries, Apps struct{ TotalCount int }
	}
	s.As(t, s.Token).Must(&admin, `{ endpoints { totalCount } events { totalCount } deliveries { totalCount } apps { totalCount } }`, nil)
	if admin.Endpoints.TotalCount != 0 || admin.Events.TotalCount != 0 || admin.Deliveries.TotalCount != 0 || admin.Apps.TotalCount != 3 {
		t.Errorf("default app's admin totals = %+v, want no endpoints, events or deliveries, and 3 apps", admin)
	}
}

func TestIsolation_FiltersOnOtherAppsIDsFindNothing(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	a, b := newTenant(t, s, "alpha"), newTenant(t, s, "beta")
	ca := s.As(t, a.Token)

	vars := map[string]any{"ep": b.EndpointID, "ev": b.EventID, "dlv": b.DeliveryID, "et": b.EventTypeID, "key": b.KeyID, "app": b.AppID, "mine": a.EndpointID}
	for name, q := range map[string]string{
		"deliveries by endpointID":      `query($ep: ID!) { c: deliveries(where: {endpointID: $ep}) { totalCount edges { node { id } } } }`,
		"deliveries by eventID":         `query($ev: ID!) { c: deliveries(where: {eventID: $ev}) { totalCount edges { node { id } } } }`,
		"deliveries by idIn":            `query($dlv: ID!) { c: deliveries(where: {idIn: [$dlv]}) { totalCount edges { node { id } } } }`,
		"deliveries by event edge":      `query($ev: ID!) { c: deliveries(where: {hasEventWith: {id: $ev}}) { totalCount edges { node { id } } } }`,
		"deliveries by endpoint prefix": `query($ep: ID!) { c: deliveries(where: {endpointIDHasPrefix: $ep}) { totalCount edges { node { id } } } }`,
		"events by id":                  `query($ev: ID!) { c: events(where: {id: $ev}) { totalCount edges { node { id } } } }`,
		"events by delivery edge":       `query($dlv: ID!) { c: events(where: {hasDeliveriesWith: {id: $dlv}}) { totalCount edges { node { id } } } }`,
		"endpoints by idIn":             `query($ep: ID!) { c: endpoints(where: {idIn: [$ep]}) { totalCount edges { node { id } } } }`,
		"eventTypes by id":              `query($et: ID!) { c: eventTypes(where: {id: $et}) { totalCount edges { node { id } } } }`,
		"eventTypes by name":            `{ c: eventTypes(where: {name: "beta.only"}) { totalCount edges { node { id } } } }`,
		"apiKeys by id":                 `query($key: ID!) { c: apiKeys(where: {id: $key}) { totalCount edges { node { id } } } }`,
		"apps by id":                    `query($app: ID!) { c: apps(where: {id: $app}) { totalCount edges { node { id } } } }`,
	} {
		var out struct {
			C struct {
				TotalCount int
				Edges      []any
			}
		}
		ca.Must(&out, q, vars)
		if out.C.TotalCount != 0 || len(out.C.Edges) != 0 {
			t.Errorf("%s (B's ID) with A's key: totalCount %d, %d edges; want nothing", name, out.C.TotalCount, len(out.C.Edges))
		}
	}
	var nested struct {
		Node struct {
			Deliveries struct{ TotalCount int }
		}
	}
	ca.Must(&nested, `query($mine: ID!, $ev: ID!) { node(id: $mine) { ... on Endpoint { deliveries(where: {eventID: $ev}) { totalCount } } } }`, vars)
	if nested.Node.Deliveries.TotalCount != 0 {
		t.Errorf("A's endpoint.deliveries filtered by B's event: %d", nested.Node.Deliveries.TotalCount)
	}
}

func TestIsolation_OtherAppsEventTypesAreUnknown(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	_, tokenA := s.NewApp("alpha")
	_, tokenB := s.NewApp("beta")
	createEventType(t, s.As(t, tokenB), map[string]any{"name": "beta.only"})
	ca := s.As(t, tokenA)

	ca.Do(createEndpointOp, map[string]any{"in": endpointInput(map[string]any{"url": "https://example.com/a", "eventTypes": []string{"beta.only"}})}).
		WantFault(t, "BAD_USER_INPUT", "input.eventTypes")
	ca.Do(`mutation { publishEvent(input: {eventType: "beta.only", payload: {}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.eventType")
	// And B's app key cannot change the shared catalog that A publishes
	// from too.
	cb := s.As(t, tokenB)
	cb.Do(`mutation($id: ID!) { archiveEventType(id: $id) { id } }`, map[string]any{"id": eventTypeID(t, cb, "order.paid")}).WantError(t, "FORBIDDEN")
	cb.Do(`mutation($id: ID!) { updateEventType(id: $id, input: {description: "mine"}) { id } }`, map[string]any{"id": eventTypeID(t, cb, "order.paid")}).WantError(t, "FORBIDDEN")
	publish(t, ca, "order.paid", map[string]any{})
}

func TestIsolation_DuplicateCheckIsPerApp(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	_, tokenA := s.NewApp("alpha")
	_, tokenB := s.NewApp("beta")

	createEndpoint(t, s.As(t, tokenA), map[string]any{"url": "https://example.com/shared"})
	r := s.As(t, tokenB).Do(createEndpointOp, map[string]any{"in": endpointInput(map[string]any{"url": "https://example.com/shared"})})
	r.Decode(t, nil) // another app's endpoint is not a duplicate, and is not revealed
}
