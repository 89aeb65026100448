package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// A credential of the scope matrix.
type matrixCred struct {
	name   string
	token  string
	scopes []string // nil: full access
	admin  bool
}

// A row of the scope matrix: one operation, written so that it fails
// harmlessly (an unknown ID, an invalid input) when it is allowed, and
// what the test expects it to need, written here independently of
// graph/scopes.go.
type matrixOp struct {
	root  string // Query, Mutation, Subscription
	field string
	doc   string
	// needs is the scope the operation needs; "FULL" for keys with full
	// access only, "" for any credential.
	needs string
}

const (
	fakeEP  = "ep_00000000000000000000000000"
	fakeDLV = "dlv_00000000000000000000000000"
	fakeEVT = "evt_00000000000000000000000000"
	fakeET  = "et_00000000000000000000000000"
	fakeATT = "att_00000000000000000000000000"
	fakeKEY = "key_00000000000000000000000000"
	fakeAPP = "app_00000000000000000000000000"
	fakeCAT = "cat_00000000000000000000000000"
)

// matrixOps covers every root field of the schema (checked against
// introspection) plus node lookups of every type.
var matrixOps = []matrixOp{
	{"Query", "viewer", `{ viewer { isAdmin app { id name portal { displayName } } apiKey { id scopes } } }`, ""},
	{"Query", "destinationTypes", `{ destinationTypes { type name fields { name kind secret } } }`, ""},
	{"Query", "node", `{ node(id: "` + fakeEP + `") { id } }`, "ENDPOINTS_READ"},
	{"Query", "node", `{ node(id: "` + fakeDLV + `") { id } }`, "EVENTS_READ"},
	{"Query", "node", `{ node(id: "` + fakeEVT + `") { id } }`, "EVENTS_READ"},
	{"Query", "node", `{ node(id: "` + fakeATT + `") { id } }`, "EVENTS_READ"},
	{"Query", "node", `{ node(id: "` + fakeET + `") { id } }`, "CATALOG_READ"},
	{"Query", "node", `{ node(id: "` + fakeKEY + `") { id } }`, "FULL"},
	{"Query", "node", `{ node(id: "` + fakeAPP + `") { id } }`, "FULL"},
	{"Query", "node", `{ node(id: "` + fakeCAT + `") { id } }`, "CATALOG_READ"},
	{"Query", "nodes", `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, "FULL"}, // variables: an endpoint and an app
	{"Query", "apps", `{ apps { totalCount } }`, "FULL"},
	{"Query", "apiKeys", `{ apiKeys { totalCount } }`, "FULL"},
	{"Query", "endpoints", `{ endpoints { totalCount edges { node { id url health } } } }`, "ENDPOINTS_READ"},
	{"Query", "eventTypes", `{ eventTypes { edges { node { name example shared } } } }`, "CATALOG_READ"},
	{"Query", "catalogs", `{ catalogs { edges { node { name eventTypes { totalCount } } } } }`, "CATALOG_READ"},
	{"Query", "events", `{ events { totalCount } }`, "EVENTS_READ"},
	{"Query", "deliveries", `{ deliveries { edges { node { id status } } } }`, "EVENTS_READ"},
	{"Query", "testFilter", `{ testFilter(filter: {type: "order.created"}) { matchCount results { matched } } }`, "EVENTS_READ"},
	{"Query", "locate", `{ locate(id: "` + fakeEVT + `") { app { id } } }`, "FULL"},
	{"Query", "auditLog", `{ auditLog(first: 5) { edges { node { action actorID changes } } } }`, ""}, // narrowed to one's own records
	{"Query", "encryptionKeys", `{ encryptionKeys { primary keys { id } } }`, "FULL"},                 // and admin keys only
	{"Query", "testTransformation", `{ testTransformation(script: "function handler(w) { return w }", payload: {}) { skipped body } }`, "EVENTS_READ"},

	{"Mutation", "createApp", `mutation { createApp(input: {name: ""}) { id } }`, "FULL"},
	{"Mutation", "updateApp", `mutation { updateApp(id: "` + fakeAPP + `", input: {name: "x"}) { id } }`, "FULL"},
	{"Mutation", "createAPIKey", `mutation { createAPIKey(input: {name: ""}) { token } }`, "FULL"},
	{"Mutation", "revokeAPIKey", `mutation { revokeAPIKey(id: "` + fakeKEY + `") { id } }`, "FULL"},
	{"Mutation", "updatePortalSettings", `mutation { updatePortalSettings(input: {accentColor: "red"}) { id } }`, "FULL"},
	{"Mutation", "createPortalSession", `mutation { createPortalSession(input: {expiresIn: "1000h"}) { url } }`, "PORTAL_SESSIONS"},
	{"Mutation", "revokePortalSession", `mutation { revokePortalSession(id: "` + fakeKEY + `") { id } }`, "PORTAL_SESSIONS"},
	{"Mutation", "revokePortalSessions", `mutation { revokePortalSessions(appId: "` + fakeAPP + `") { count } }`, "PORTAL_SESSIONS"},
	{"Mutation", "createEndpoint", `mutation { createEndpoint(input: {name: "x", url: "not a url", eventTypes: ["*"]}) { secret } }`, "ENDPOINTS_WRITE"},
	{"Mutation", "updateEndpoint", `mutation { updateEndpoint(id: "` + fakeEP + `", input: {name: "y"}) { id } }`, "ENDPOINTS_WRITE"},
	{"Mutation", "deleteEndpoint", `mutation { deleteEndpoint(id: "` + fakeEP + `") { deletedId } }`, "ENDPOINTS_WRITE"},
	{"Mutation", "rotateEndpointSecret", `mutation { rotateEndpointSecret(id: "` + fakeEP + `") { secret } }`, "ENDPOINTS_WRITE"},
	{"Mutation", "revealEndpointSecret", `mutation { revealEndpointSecret(id: "` + fakeEP + `") { secret } }`, "ENDPOINTS_WRITE"},
	{"Mutation", "testEndpoint", `mutation { testEndpoint(id: "` + fakeEP + `") { delivered } }`, "ENDPOINTS_WRITE"},
	// Portal sessions pass the scope check but the resolvers refuse them.
	{"Mutation", "createListener", `mutation { createListener(input: {eventTypes: ["NOT VALID"]}) { secret } }`, "ENDPOINTS_WRITE"},
	{"Mutation", "reportListenerDelivery", `mutation { reportListenerDelivery(input: {listenerId: "` + fakeEP + `", deliveryId: "` + fakeDLV + `", token: "t", status: 200}) { deliveryId } }`, "ENDPOINTS_WRITE"},
	{"Mutation", "createEventType", `mutation { createEventType(input: {name: "NOT VALID"}) { id } }`, "CATALOG_WRITE"},
	{"Mutation", "updateEventType", `mutation { updateEventType(id: "` + fakeET + `", input: {description: "x"}) { id } }`, "CATALOG_WRITE"},
	{"Mutation", "archiveEventType", `mutation { archiveEventType(id: "` + fakeET + `") { id } }`, "CATALOG_WRITE"},
	{"Mutation", "unarchiveEventType", `mutation { unarchiveEventType(id: "` + fakeET + `") { id } }`, "CATALOG_WRITE"},
	{"Mutation", "importEventTypes", `mutation { importEventTypes(input: {eventTypes: [{name: "NOT VALID"}]}) { created } }`, "CATALOG_WRITE"},
	{"Mutation", "createCatalog", `mutation { createCatalog(input: {name: ""}) { id } }`, "FULL"},
	{"Mutation", "updateCatalog", `mutation { updateCatalog(id: "` + fakeCAT + `", input: {name: "x"}) { id } }`, "FULL"},
	{"Mutation", "deleteCatalog", `mutation { deleteCatalog(id: "` + fakeCAT + `") { deletedId } }`, "FULL"},
	{"Mutation", "publishEvent", `mutation { publishEvent(input: {eventType: "no.such.type", payload: {}}) { id } }`, "EVENTS_PUBLISH"},
	{"Mutation", "publishEvents", `mutation { publishEvents(input: [{eventType: "no.such.type", payload: {}}]) { id } }`, "EVENTS_PUBLISH"},
	{"Mutation", "retryDelivery", `mutation { retryDelivery(id: "` + fakeDLV + `") { id } }`, "DELIVERIES_WRITE"},
	{"Mutation", "retryDeliveries", `mutation { retryDeliveries(ids: ["` + fakeDLV + `"]) { count } }`, "DELIVERIES_WRITE"},
	{"Mutation", "rotateEncryptionKeys", `mutation { rotateEncryptionKeys(input: {batchSize: 0}) { done } }`, "FULL"}, // and admin keys only
	{"Mutation", "replayDeliveries", `mutation { replayDeliveries(endpointId: "` + fakeEP + `", since: "2020-01-01T00:00:00Z") { count } }`, "DELIVERIES_WRITE"},

	{"Subscription", "deliveryUpdated", `subscription { deliveryUpdated { deliveryId } }`, "EVENTS_READ"},
	{"Subscription", "eventPublished", `subscription { eventPublished { eventId } }`, "EVENTS_READ"},
	{"Subscription", "endpointUpdated", `subscription { endpointUpdated { endpointId } }`, "ENDPOINTS_READ"},
	{"Subscription", "statsUpdated", `subscription { statsUpdated { from } }`, "EVENTS_READ"},
	{"Subscription", "listen", `subscription { listen(listenerId: "` + fakeEP + `") { kind delivery { body } } }`, "ENDPOINTS_WRITE"},
}

// implies lists what each scope implies besides itself.
var implies = map[string]string{"CATALOG_WRITE": "CATALOG_READ", "ENDPOINTS_WRITE": "ENDPOINTS_READ", "DELIVERIES_WRITE": "EVENTS_READ"}

// mayRun is the matrix's own statement of the rules.
func (op matrixOp) mayRun(c matrixCred) bool {
	switch {
	case c.scopes == nil || op.needs == "":
		return true
	case op.needs == "FULL":
		return false
	}
	for _, s := range c.scopes {
		if s == op.needs || implies[s] == op.needs {
			return true
		}
	}
	return false
}

// scopedKey creates an app key of the default app with scopes.
func scopedKey(t *testing.T, s *heraldtest.Server, name string, scopes []string) string {
	t.Helper()
	var out struct{ CreateAPIKey struct{ Token string } }
	s.Do(s.Token, `mutation($n: String!, $s: [APIKeyScope!]) { createAPIKey(input: {name: $n, scopes: $s}) { token } }`,
		map[string]any{"n": name, "s": scopes}).Decode(t, &out)
	return out.CreateAPIKey.Token
}

// portalSession opens a portal session of the default app.
func portalSession(t *testing.T, s *heraldtest.Server, token string, input map[string]any) portalSessionOut {
	t.Helper()
	var out struct{ CreatePortalSession portalSessionOut }
	s.Do(token, `mutation($in: CreatePortalSessionInput!) { createPortalSession(input: $in) {
		url token expiresAt readOnly apiKey { id kind scopes expiresAt } } }`,
		map[string]any{"in": input}).Decode(t, &out)
	return out.CreatePortalSession
}

type portalSessionOut struct {
	URL       string
	Token     string
	ExpiresAt time.Time
	ReadOnly  bool
	APIKey    struct {
		ID        string
		Kind      string
		Scopes    []string
		ExpiresAt time.Time
	}
}

// matrixCreds returns one credential of every kind: the admin key, a
// full-access app key, a key per scope, the two common restricted keys,
// and both kinds of portal session.
func matrixCreds(t *testing.T, s *heraldtest.Server) []matrixCred {
	t.Helper()
	full, _ := newKey(t, s, "full access")
	creds := []matrixCred{
		{name: "admin", token: s.Token, admin: true},
		{name: "app key", token: full},
	}
	for _, sc := range []string{"CATALOG_READ", "CATALOG_WRITE", "ENDPOINTS_READ", "ENDPOINTS_WRITE", "EVENTS_READ", "EVENTS_PUBLISH", "DELIVERIES_WRITE", "PORTAL_SESSIONS"} {
		creds = append(creds, matrixCred{name: sc, token: scopedKey(t, s, sc, []string{sc}), scopes: []string{sc}})
	}
	dashboard := []string{"CATALOG_READ", "ENDPOINTS_READ", "EVENTS_READ"}
	creds = append(creds,
		matrixCred{name: "dashboard", token: scopedKey(t, s, "dashboard", dashboard), scopes: dashboard},
		matrixCred{name: "portal", token: portalSession(t, s, s.Token, map[string]any{}).Token,
			scopes: []string{"CATALOG_READ", "ENDPOINTS_READ", "ENDPOINTS_WRITE", "EVENTS_READ", "DELIVERIES_WRITE"}},
		matrixCred{name: "portal read-only", token: portalSession(t, s, s.Token, map[string]any{"readOnly": true}).Token,
			scopes: dashboard},
	)
	return creds
}

// refusedByScope reports whether errors are the scope check's refusal.
func refusedByScope(errs []heraldtest.Error) bool {
	return len(errs) > 0 && errs[0].Extensions["code"] == "FORBIDDEN" && errs[0].Extensions["reason"] == "SCOPE"
}

func TestScopes_MatrixOfEveryOperationAndCredential(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)

	// The matrix must cover every root field of the schema.
	var intro struct {
		Schema struct {
			QueryType, MutationType, SubscriptionType struct{ Fields []struct{ Name string } }
		} `json:"__schema"`
	}
	s.Do("", `{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }`, nil).Decode(t, &intro)
	for root, fields := range map[string][]struct{ Name string }{
		"Query": intro.Schema.QueryType.Fields, "Mutation": intro.Schema.MutationType.Fields, "Subscription": intro.Schema.SubscriptionType.Fields,
	} {
		for _, f := range fields {
			if !slices.ContainsFunc(matrixOps, func(op matrixOp) bool { return op.root == root && op.field == f.Name }) {
				t.Errorf("the scope matrix lacks %s.%s: add a row", root, f.Name)
			}
		}
	}

	creds := matrixCreds(t, s)
	var table []string
	for _, c := range creds {
		var allowed, refused []string
		for _, op := range matrixOps {
			label := op.field
			if op.field == "node" {
				label = "node(" + strings.SplitN(strings.Split(op.doc, `"`)[1], "_", 2)[0] + ")"
			}
			var errs []heraldtest.Error
			var data string
			if op.root == "Subscription" {
				errs, data = subscribeOnce(t, s, c.token, op.doc)
			} else {
				r := s.As(t, c.token).Do(op.doc, map[string]any{"ids": []string{fakeEP, fakeAPP}})
				errs, data = r.Errors, string(r.Data)
			}
			want := op.mayRun(c)
			got := !refusedByScope(errs)
			switch {
			case want && !got:
				t.Errorf("%s: %s refused, want it allowed: %+v", c.name, label, errs)
			case !want && got:
				t.Errorf("%s: %s allowed (errors %+v, data %s), want FORBIDDEN with reason SCOPE", c.name, label, errs, data)
			case !want && data != "" && data != "null":
				t.Errorf("%s: %s refused but answered data %s", c.name, label, data)
			case !want && !strings.Contains(errs[0].Message, op.needs) && op.needs != "FULL":
				t.Errorf("%s: %s refused with %q, which does not name the scope %s", c.name, label, errs[0].Message, op.needs)
			}
			if got {
				allowed = append(allowed, label)
			} else {
				refused = append(refused, label)
			}
		}
		sort.Strings(allowed)
		table = append(table, fmt.Sprintf("%-17s allowed %2d, refused %2d: refused %s", c.name, len(allowed), len(refused), strings.Join(refused, " ")))
	}
	t.Logf("scope matrix (%d operations × %d credentials):\n%s", len(matrixOps), len(creds), strings.Join(table, "\n"))
}

// subscribeOnce starts a subscription over websocket and returns its
// errors, or nothing once the subscription is running.
func subscribeOnce(t *testing.T, s *heraldtest.Server, token, doc string) ([]heraldtest.Error, string) {
	t.Helper()
	c := dial(t, s, heraldtest.TransportWS, token)
	defer c.Close()
	if err := c.Subscribe("1", doc, nil); err != nil {
		t.Fatal(err)
	}
	// A refused subscription answers at once; a running one says nothing
	// until something happens, so ask the connection a question behind it
	// and take its answer as the sign that the subscription started.
	if err := c.Subscribe("2", `{ viewer { isAdmin } }`, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	var errs []heraldtest.Error
	var data string
	for {
		select {
		case m := <-c.Messages():
			switch {
			case m.ID == "1" && m.Type == "error":
				if err := json.Unmarshal(m.Payload, &errs); err != nil {
					t.Fatalf("bad error payload %s", m.Payload)
				}
			case m.ID == "1" && m.Type == "next":
				var p struct {
					Data   json.RawMessage
					Errors []heraldtest.Error
				}
				if err := json.Unmarshal(m.Payload, &p); err != nil {
					t.Fatalf("bad next payload %s", m.Payload)
				}
				errs, data = p.Errors, string(p.Data)
			case m.ID == "2" && m.Type == "next":
				return errs, data
			}
		case <-deadline:
			t.Fatalf("no answer on the websocket within 5s for %s", doc)
		}
	}
}
