package server_test

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/ent/auditrecord"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/tenant"
)

// auditRecord is an audit record as the tests read it.
type auditRecord struct {
	ActorKind, ActorID, Action, TargetType, TargetID, RemoteAddr, RequestID string
	Changes                                                                 json.RawMessage
}

const auditFields = `actorKind actorID action targetType targetID remoteAddr requestID changes`

// TestAudit_EveryMutationLeavesOneRecord runs every mutation of the schema,
// found by introspection, and counts the audit records of each: exactly
// one per call. A mutation added to the schema without a case here fails
// the test, so that it cannot go unaudited unnoticed.
func TestAudit_EveryMutationLeavesOneRecord(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	admin := s.As(t, s.Token)
	var ids struct {
		app, key, session, endpoint, eventType, delivery, delivery2, catalog string
	}
	const bearer = "audit-bearer-token-value"
	// Each case runs its mutation once; they run in this order.
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"createApp", func(t *testing.T) {
			var out struct{ CreateApp struct{ ID string } }
			admin.Must(&out, `mutation { createApp(input: {name: "audited"}) { id } }`, nil)
			ids.app = out.CreateApp.ID
		}},
		{"updateApp", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { updateApp(id: $id, input: {name: "audited again"}) { id } }`, map[string]any{"id": ids.app})
		}},
		{"createAPIKey", func(t *testing.T) {
			var out struct {
				CreateAPIKey struct{ APIKey struct{ ID string } }
			}
			admin.Must(&out, `mutation($a: ID!) { createAPIKey(input: {appId: $a, name: "k"}) { apiKey { id } } }`, map[string]any{"a": ids.app})
			ids.key = out.CreateAPIKey.APIKey.ID
		}},
		{"revokeAPIKey", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": ids.key})
		}},
		{"createPortalSession", func(t *testing.T) {
			var out struct {
				CreatePortalSession struct{ APIKey struct{ ID string } }
			}
			admin.Must(&out, `mutation($a: ID!) { createPortalSession(input: {appId: $a}) { apiKey { id } } }`, map[string]any{"a": ids.app})
			ids.session = out.CreatePortalSession.APIKey.ID
		}},
		{"revokePortalSession", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { revokePortalSession(id: $id) { id } }`, map[string]any{"id": ids.session})
		}},
		{"revokePortalSessions", func(t *testing.T) { // none left: a record all the same
			admin.Must(nil, `mutation($a: ID!) { revokePortalSessions(appId: $a) { count } }`, map[string]any{"a": ids.app})
		}},
		{"updatePortalSettings", func(t *testing.T) {
			admin.Must(nil, `mutation { updatePortalSettings(input: {displayName: "Acme"}) { id } }`, nil)
		}},
		{"createEventType", func(t *testing.T) {
			var out struct{ CreateEventType struct{ ID string } }
			admin.Must(&out, `mutation { createEventType(input: {name: "audit.done"}) { id } }`, nil)
			ids.eventType = out.CreateEventType.ID
		}},
		{"updateEventType", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { updateEventType(id: $id, input: {description: "d"}) { id } }`, map[string]any{"id": ids.eventType})
		}},
		{"archiveEventType", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { archiveEventType(id: $id) { id } }`, map[string]any{"id": ids.eventType})
		}},
		{"unarchiveEventType", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { unarchiveEventType(id: $id) { id } }`, map[string]any{"id": ids.eventType})
		}},
		{"createEndpoint", func(t *testing.T) {
			ids.endpoint, _ = s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "auth": map[string]any{"type": "BEARER", "token": bearer}})
		}},
		{"updateEndpoint", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { updateEndpoint(id: $id, input: {description: "audited", auth: {type: BEARER, token: "another-bearer-token"}}) { id } }`,
				map[string]any{"id": ids.endpoint})
		}},
		{"rotateEndpointSecret", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { rotateEndpointSecret(id: $id) { secret } }`, map[string]any{"id": ids.endpoint})
		}},
		{"revealEndpointSecret", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { revealEndpointSecret(id: $id) { secret } }`, map[string]any{"id": ids.endpoint})
		}},
		{"testEndpoint", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { testEndpoint(id: $id) { delivered } }`, map[string]any{"id": ids.endpoint})
		}},
		{"publishEvent", func(t *testing.T) {
			ev := s.Publish(s.Token, "order.created", map[string]any{"n": 1})
			ids.delivery = s.WaitDelivery(s.Token, ev, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" }).ID
		}},
		{"publishEvents", func(t *testing.T) {
			var out struct{ PublishEvents []struct{ ID string } }
			admin.Must(&out, `mutation { publishEvents(input: [{eventType: "order.created", payload: {n: 2}}, {eventType: "order.created", payload: {n: 3}}]) { id } }`, nil)
			ids.delivery2 = s.WaitDelivery(s.Token, out.PublishEvents[0].ID, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" }).ID
		}},
		{"retryDelivery", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { retryDelivery(id: $id) { id } }`, map[string]any{"id": ids.delivery})
		}},
		{"retryDeliveries", func(t *testing.T) {
			admin.Must(nil, `mutation($ids: [ID!]!) { retryDeliveries(ids: $ids) { count } }`, map[string]any{"ids": []string{ids.delivery2}})
		}},
		{"replayDeliveries", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!, $since: Time!) { replayDeliveries(endpointId: $id, since: $since, status: FAILED) { count } }`,
				map[string]any{"id": ids.endpoint, "since": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
		}},
		{"rotateEncryptionKeys", func(t *testing.T) {
			admin.Must(nil, `mutation { rotateEncryptionKeys { done } }`, nil)
		}},
		{"createCatalog", func(t *testing.T) {
			var out struct{ CreateCatalog struct{ ID string } }
			admin.Must(&out, `mutation { createCatalog(input: {name: "audited"}) { id } }`, nil)
			ids.catalog = out.CreateCatalog.ID
		}},
		{"updateCatalog", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { updateCatalog(id: $id, input: {description: "audited"}) { id } }`, map[string]any{"id": ids.catalog})
		}},
		{"importEventTypes", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID) { importEventTypes(catalogId: $id, input: {eventTypes: [{name: "audit.imported"}]}) { created } }`,
				map[string]any{"id": ids.catalog})
		}},
		{"createEventType", func(t *testing.T) { // into a shared catalog
			admin.Must(nil, `mutation($id: ID) { createEventType(catalogId: $id, input: {name: "audit.shared"}) { id } }`,
				map[string]any{"id": ids.catalog})
		}},
		{"deleteCatalog", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { deleteCatalog(id: $id) { deletedId } }`, map[string]any{"id": ids.catalog})
		}},
		{"createListener", func(t *testing.T) {
			admin.Must(nil, `mutation { createListener(input: {eventTypes: ["order.*"]}) { secret } }`, nil)
		}},
		{"deleteEndpoint", func(t *testing.T) {
			admin.Must(nil, `mutation($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`, map[string]any{"id": ids.endpoint})
		}},
	}

	var schema struct {
		Type struct{ Fields []struct{ Name string } } `json:"__type"`
	}
	admin.Must(&schema, `{ __type(name: "Mutation") { fields { name } } }`, nil)
	// Not audited: a listener's CLI reporting the answer to a delivery it
	// forwarded (its attempt records it, as it records a receiver's).
	covered := map[string]bool{"reportListenerDelivery": true}
	for _, c := range cases {
		covered[c.name] = true
	}
	var missing []string
	for _, f := range schema.Type.Fields {
		if !covered[f.Name] {
			missing = append(missing, f.Name)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("mutation %s has no case in TestAudit_EveryMutationLeavesOneRecord: add one (and write its audit record in the transaction of its change)", m)
	}

	ctx := tenant.System(context.Background())
	for _, c := range cases {
		before, err := s.Store().Client.AuditRecord.Query().Where(auditrecord.Action(c.name)).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.run(t)
		// Publishing records in the publisher's group commit, which the
		// call waited for; the rest in the mutation's transaction.
		after, err := s.Store().Client.AuditRecord.Query().Where(auditrecord.Action(c.name)).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after-before != 1 {
			t.Errorf("%s left %d audit records, want 1", c.name, after-before)
		}
	}

	// What a record says: who, what, from where; secrets as "changed".
	var log struct {
		AuditLog struct{ Edges []struct{ Node auditRecord } }
	}
	admin.Must(&log, `query($id: ID!) { auditLog(first: 10, where: {target: $id, action: "updateEndpoint"}) { edges { node { `+auditFields+` } } } }`,
		map[string]any{"id": ids.endpoint})
	if len(log.AuditLog.Edges) != 1 {
		t.Fatalf("auditLog(target, action) = %d records, want 1", len(log.AuditLog.Edges))
	}
	r := log.AuditLog.Edges[0].Node
	if r.ActorKind != "ADMIN_KEY" || r.ActorID == "" || r.TargetType != "Endpoint" || r.RemoteAddr == "" || r.RequestID == "" {
		t.Errorf("updateEndpoint's record = %+v", r)
	}
	if !strings.Contains(string(r.Changes), "description") || !strings.Contains(string(r.Changes), "changed") ||
		strings.Contains(string(r.Changes), "another-bearer-token") {
		t.Errorf("updateEndpoint's changes = %s, want the description and the token as \"changed\"", r.Changes)
	}
	recs, err := s.Store().Client.AuditRecord.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if strings.Contains(string(rec.Changes), bearer) || strings.Contains(string(rec.Changes), "whsec_") {
			t.Errorf("record of %s holds a secret: %s", rec.Action, rec.Changes)
		}
	}
}

// TestAudit_APortalSessionSeesItsOwnChangesOnly: a customer's portal
// session reads the records of its own changes, not the platform's, and
// nothing of other apps.
func TestAudit_APortalSessionSeesItsOwnChangesOnly(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	otherApp, otherToken := s.NewApp("other")
	s.CreateEndpoint(otherToken, map[string]any{"url": rc.URL + "/other"})
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	var session struct {
		CreatePortalSession struct {
			Token  string
			APIKey struct{ ID string }
		}
	}
	s.As(t, s.Token).Must(&session, `mutation { createPortalSession(input: {}) { token apiKey { id } } }`, nil)
	portal := s.As(t, session.CreatePortalSession.Token)
	portal.Must(nil, `mutation($id: ID!) { updateEndpoint(id: $id, input: {description: "by the customer"}) { id } }`, map[string]any{"id": epID})

	var log struct {
		AuditLog struct{ Edges []struct{ Node auditRecord } }
	}
	portal.Must(&log, `{ auditLog(first: 50) { edges { node { `+auditFields+` } } } }`, nil)
	if len(log.AuditLog.Edges) != 1 {
		t.Fatalf("the portal session sees %d records, want only its own change: %+v", len(log.AuditLog.Edges), log.AuditLog.Edges)
	}
	r := log.AuditLog.Edges[0].Node
	if r.ActorKind != "PORTAL_SESSION" || r.ActorID != session.CreatePortalSession.APIKey.ID || r.Action != "updateEndpoint" || r.TargetID != epID {
		t.Errorf("the portal session's record = %+v", r)
	}
	// The app's key sees the whole app's log, and nothing of the other app.
	s.As(t, s.Token).Must(&log, `{ auditLog(first: 50) { edges { node { `+auditFields+` } } } }`, nil)
	if len(log.AuditLog.Edges) < 3 {
		t.Errorf("the app's admin key sees %d records, want its changes and the session's", len(log.AuditLog.Edges))
	}
	for _, e := range log.AuditLog.Edges {
		if e.Node.TargetID == otherApp || strings.Contains(string(e.Node.Changes), "/other") {
			t.Errorf("a record of the other app shows: %+v", e.Node)
		}
	}
}

// TestAudit_PublishesCommittedTogetherEachLeaveTheirRecord publishes from
// many clients at once, so that the publisher commits them in groups of
// varying sizes, and a retry, on both stores: every call leaves its own
// record, targeting its first event and naming all of its events.
func TestAudit_PublishesCommittedTogetherEachLeaveTheirRecord(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			s := heraldtest.Start(t, func(c *server.Config) {
				if store == "postgres" {
					c.DB = pgtest.New(t)
				}
			})
			rc := heraldtest.NewReceiver(t, nil)
			s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
			const calls = 48
			events := make([][]string, calls) // each call's event IDs
			var wg sync.WaitGroup
			for i := range calls {
				wg.Go(func() {
					// Every third call publishes three events.
					n := 1 + 2*min(1, i%3/2)
					in := make([]map[string]any, n)
					for j := range in {
						in[j] = map[string]any{"eventType": "order.created", "payload": map[string]any{"call": i, "n": j}}
					}
					r := s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in})
					var out struct{ PublishEvents []struct{ ID string } }
					if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil || len(out.PublishEvents) != n {
						t.Errorf("call %d: %s", i, r.Body)
						return
					}
					for _, ev := range out.PublishEvents {
						events[i] = append(events[i], ev.ID)
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			d := s.WaitDelivery(s.Token, events[0][0], 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
			s.As(t, s.Token).Must(nil, `mutation($id: ID!) { retryDelivery(id: $id) { id } }`, map[string]any{"id": d.ID})

			var log struct {
				AuditLog struct{ Edges []struct{ Node auditRecord } }
			}
			s.As(t, s.Token).Must(&log, `{ auditLog(first: 100, where: {action: "publishEvents"}) { edges { node { `+auditFields+` } } } }`, nil)
			byTarget := make(map[string]auditRecord)
			for _, e := range log.AuditLog.Edges {
				byTarget[e.Node.TargetID] = e.Node
			}
			if len(log.AuditLog.Edges) != calls || len(byTarget) != calls {
				t.Errorf("%d calls left %d records for %d targets", calls, len(log.AuditLog.Edges), len(byTarget))
			}
			for i, ids := range events {
				r, ok := byTarget[ids[0]]
				if !ok {
					t.Errorf("call %d (events %v) left no record", i, ids)
					continue
				}
				var changes struct {
					Events   int
					EventIDs []string `json:"eventIds"`
				}
				if err := json.Unmarshal(r.Changes, &changes); err != nil || changes.Events != len(ids) || !slices.Equal(changes.EventIDs, ids) {
					t.Errorf("call %d's record: changes %s, want its %d events %v", i, r.Changes, len(ids), ids)
				}
				if r.ActorKind != "ADMIN_KEY" || r.ActorID == "" || r.RequestID == "" || r.RemoteAddr == "" || r.TargetType != "Event" {
					t.Errorf("call %d's record = %+v", i, r)
				}
			}
			s.As(t, s.Token).Must(&log, `query($id: ID) { auditLog(first: 10, where: {action: "retryDelivery", target: $id}) { edges { node { `+auditFields+` } } } }`,
				map[string]any{"id": d.ID})
			if len(log.AuditLog.Edges) != 1 {
				t.Errorf("the retry left %d records, want 1", len(log.AuditLog.Edges))
			}
		})
	}
}
