package graph_test

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

const createAPIKeyOp = `mutation($in: CreateAPIKeyInput!) { createAPIKey(input: $in) { token apiKey { id name prefix admin revokedAt app { id } } } }`

type createdKey struct {
	CreateAPIKey struct {
		Token  string
		APIKey struct {
			ID, Name, Prefix string
			Admin            bool
			RevokedAt        *string
			App              struct{ ID string }
		}
	}
}

type viewer struct {
	Viewer struct {
		IsAdmin bool
		App     struct{ ID, Name string }
		APIKey  struct{ ID string }
	}
}

const viewerOp = `{ viewer { isAdmin app { id name } apiKey { id } } }`

func TestCreateApp_RequiresAdminKey(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	_, appToken := s.NewApp("tenant")

	for _, op := range []string{
		`mutation { createApp(input: {name: "sneaky"}) { id } }`,
		`mutation($id: ID!) { updateApp(id: $id, input: {name: "sneaky"}) { id } }`,
	} {
		s.As(t, appToken).Do(op, map[string]any{"id": s.AppID}).WantError(t, "FORBIDDEN")
	}
	var apps struct {
		Apps struct {
			Edges []struct{ Node struct{ Name string } }
		}
	}
	s.As(t, s.Token).Must(&apps, `{ apps { edges { node { name } } } }`, nil)
	for _, e := range apps.Apps.Edges {
		if e.Node.Name == "sneaky" {
			t.Errorf("an app key created or renamed an app")
		}
	}
}

func TestCreateApp_JoinsTheDefaultCatalogAndAcceptsAdminOnly(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	var out struct {
		CreateApp struct {
			ID, Name                string
			AcceptUnknownEventTypes bool
		}
	}
	c.Must(&out, `mutation { createApp(input: {name: "  Shop  ", acceptUnknownEventTypes: true}) { id name acceptUnknownEventTypes } }`, nil)
	a := out.CreateApp
	if !strings.HasPrefix(a.ID, "app_") || a.Name != "Shop" || !a.AcceptUnknownEventTypes {
		t.Errorf("createApp = %+v", a)
	}
	inApp := c.WithHeader("X-Herald-App", a.ID)
	if got, want := listEventTypes(t, inApp), listEventTypes(t, c); len(got) != len(want) {
		t.Errorf("new app has %d event types, want the default catalog's %d", len(got), len(want))
	}
	// acceptUnknownEventTypes lets it publish types outside its catalog.
	publish(t, inApp, "invoice.voided", map[string]any{})

	for _, name := range []string{"", "   ", strings.Repeat("x", 256)} {
		c.Do(`mutation($n: String!) { createApp(input: {name: $n}) { id } }`, map[string]any{"n": name}).WantFault(t, "BAD_USER_INPUT", "input.name")
	}
	c.Do(`mutation($id: ID!) { updateApp(id: $id, input: {name: ""}) { id } }`, map[string]any{"id": a.ID}).WantFault(t, "BAD_USER_INPUT", "input.name")
	c.Do(`mutation { updateApp(id: "app_01JDZ6Q4W8X3M5N7P9R2T4V6X8", input: {name: "x"}) { id } }`, nil).WantError(t, "NOT_FOUND")
}

func TestCreateAPIKey_ReturnsTokenOnce(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	var out createdKey
	r := c.Do(createAPIKeyOp, map[string]any{"in": map[string]any{"name": "billing service"}})
	r.Decode(t, &out)
	k := out.CreateAPIKey
	if !strings.HasPrefix(k.Token, "hrld_") || len(k.Token) != len("hrld_")+43 {
		t.Fatalf("token %q: want hrld_ and 43 characters", k.Token)
	}
	if k.APIKey.Prefix != k.Token[:12] || k.APIKey.Name != "billing service" || k.APIKey.Admin || k.APIKey.App.ID != s.AppID {
		t.Errorf("apiKey = %+v (token %s)", k.APIKey, k.Token)
	}

	// Listed with its prefix, never its token.
	var list struct {
		APIKeys struct {
			Edges []struct{ Node struct{ ID, Prefix string } }
		}
	}
	lr := c.Do(`{ apiKeys { edges { node { id name prefix admin lastUsedAt revokedAt app { id } } } } }`, nil)
	lr.Decode(t, &list)
	found := false
	for _, e := range list.APIKeys.Edges {
		found = found || e.Node.ID == k.APIKey.ID && e.Node.Prefix == k.APIKey.Prefix
	}
	if !found {
		t.Errorf("apiKeys does not list the new key: %s", lr.Body)
	}
	wantNoSecret(t, "apiKeys", lr.Body, k.Token)
	wantNoSecret(t, "apiKeys", lr.Body, k.Token[12:])
	nr := c.Do(`query($id: ID!) { node(id: $id) { ... on APIKey { id prefix name } } }`, map[string]any{"id": k.APIKey.ID})
	nr.Decode(t, nil)
	wantNoSecret(t, "node", nr.Body, k.Token[12:])

	// The token works, as an app key of the app.
	var v viewer
	s.As(t, k.Token).Must(&v, viewerOp, nil)
	if v.Viewer.APIKey.ID != k.APIKey.ID || v.Viewer.IsAdmin || v.Viewer.App.ID != s.AppID {
		t.Errorf("viewer with the new token = %+v", v.Viewer)
	}

	// An admin key for another app.
	appID, _ := s.NewApp("other")
	c.Must(&out, createAPIKeyOp, map[string]any{"in": map[string]any{"name": "ops", "admin": true, "appId": appID}})
	s.As(t, out.CreateAPIKey.Token).Must(&v, viewerOp, nil)
	if !v.Viewer.IsAdmin || v.Viewer.App.ID != appID {
		t.Errorf("viewer with an admin key of app %s = %+v", appID, v.Viewer)
	}

	c.Do(createAPIKeyOp, map[string]any{"in": map[string]any{"name": ""}}).WantFault(t, "BAD_USER_INPUT", "input.name")
	c.Do(createAPIKeyOp, map[string]any{"in": map[string]any{"name": "x", "appId": "app_01JDZ6Q4W8X3M5N7P9R2T4V6X8"}}).WantFault(t, "BAD_USER_INPUT", "input.appId")
}

func TestRevokeAPIKey_TakesEffectImmediately(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	var out createdKey
	c.Must(&out, createAPIKeyOp, map[string]any{"in": map[string]any{"name": "short-lived"}})
	k := out.CreateAPIKey
	kc := s.As(t, k.Token)
	kc.Must(nil, viewerOp, nil) // now cached by the authenticator

	var rev struct {
		RevokeAPIKey struct{ ID, RevokedAt string }
	}
	c.Must(&rev, `mutation($id: ID!) { revokeAPIKey(id: $id) { id revokedAt } }`, map[string]any{"id": k.APIKey.ID})
	if rev.RevokeAPIKey.RevokedAt == "" {
		t.Errorf("revokedAt is empty after revoking")
	}
	kc.Do(viewerOp, nil).WantError(t, "UNAUTHENTICATED")
	kc.Do(`mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { id } }`, nil).WantError(t, "UNAUTHENTICATED")

	// Revoking again is harmless; unknown keys are not found.
	c.Must(nil, `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": k.APIKey.ID})
	c.Do(`mutation { revokeAPIKey(id: "key_01JDZ6Q4W8X3M5N7P9R2T4V6X8") { id } }`, nil).WantError(t, "NOT_FOUND")
}

func TestRevokeAPIKey_KeyCannotRevokeItself(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	var v viewer
	c.Must(&v, viewerOp, nil)
	// Only admin keys revoke keys, so this also keeps the last admin key.
	r := c.Do(`mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": v.Viewer.APIKey.ID})
	r.WantError(t, "FORBIDDEN")
	c.Must(nil, viewerOp, nil)
}

func TestAPIKeys_AppKeysCannotManageKeys(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	_, appToken := s.NewApp("tenant")
	ac := s.As(t, appToken)

	var v viewer
	ac.Must(&v, viewerOp, nil)
	ac.Do(createAPIKeyOp, map[string]any{"in": map[string]any{"name": "mine"}}).WantError(t, "FORBIDDEN")
	ac.Do(createAPIKeyOp, map[string]any{"in": map[string]any{"name": "mine", "admin": true}}).WantError(t, "FORBIDDEN")
	var admin viewer
	s.As(t, s.Token).Must(&admin, viewerOp, nil)
	for _, id := range []string{v.Viewer.APIKey.ID, admin.Viewer.APIKey.ID} {
		ac.Do(`mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": id}).WantError(t, "FORBIDDEN")
	}
	s.As(t, s.Token).Must(nil, viewerOp, nil)
	ac.Must(nil, viewerOp, nil)
}

func TestAuth_MissingKeyAllowsOnlyIntrospection(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	anon := s.As(t, "")

	var intro struct {
		Schema struct{ QueryType struct{ Name string } } `json:"__schema"`
	}
	anon.Must(&intro, `{ __schema { queryType { name } } }`, nil)
	if intro.Schema.QueryType.Name != "Query" {
		t.Errorf("introspection without a key: queryType %q", intro.Schema.QueryType.Name)
	}
	anon.Must(nil, `query Q { ...F } fragment F on Query { __type(name: "Endpoint") { name } }`, nil)

	for name, op := range map[string]string{
		"query":                   `{ endpoints { totalCount } }`,
		"viewer":                  `{ viewer { isAdmin } }`,
		"node":                    `{ node(id: "ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8") { id } }`,
		"mutation":                `mutation { createEndpoint(input: {name: "xx", url: "https://example.com", eventTypes: ["*"]}) { secret } }`,
		"introspection with data": `{ __typename endpoints { totalCount } }`,
		"data behind a fragment":  `query Q { ...F } fragment F on Query { apps { totalCount } }`,
		"data in inline fragment": `{ ... on Query { apiKeys { totalCount } } }`,
		"publish":                 `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { id } }`,
	} {
		r := anon.Do(op, nil)
		r.WantError(t, "UNAUTHENTICATED")
		if string(r.Data) != "null" && string(r.Data) != "" {
			t.Errorf("%s without a key returned data %s", name, r.Data)
		}
	}
	var out struct{ Endpoints struct{ TotalCount int } }
	s.As(t, s.Token).Must(&out, `{ endpoints { totalCount } }`, nil)
	if out.Endpoints.TotalCount != 0 {
		t.Errorf("an unauthenticated mutation created %d endpoints", out.Endpoints.TotalCount)
	}
}

func TestAuth_RejectsUnusableTokens(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)

	for name, authz := range map[string]string{
		"garbage":         "Bearer garbage",
		"unknown key":     "Bearer hrld_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"truncated key":   "Bearer " + s.Token[:20],
		"token plus junk": "Bearer " + s.Token + "x",
		"basic auth":      "Basic dXNlcjpwYXNz",
		"empty bearer":    "Bearer ",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := s.As(t, "").WithHeader("Authorization", authz)
			r := c.Do(`{ viewer { isAdmin } }`, nil)
			r.WantError(t, "UNAUTHENTICATED")
			if strings.Contains(string(r.Body), s.Token[5:]) {
				t.Errorf("response repeats the token: %s", r.Body)
			}
		})
	}
	// A bare token (no scheme) is accepted.
	s.As(t, "").WithHeader("Authorization", s.Token).Must(nil, viewerOp, nil)
}

func TestActAs_AdminKeyActsInAnotherApp(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	appID, appToken := s.NewApp("tenant")
	admin := s.As(t, s.Token).WithHeader(server.HeaderApp, appID)

	var v viewer
	admin.Must(&v, viewerOp, nil)
	if v.Viewer.App.ID != appID || !v.Viewer.IsAdmin {
		t.Fatalf("viewer with X-Herald-App = %+v, want app %s", v.Viewer, appID)
	}
	ep, _ := createEndpoint(t, admin, map[string]any{"url": "https://example.com/tenant"})
	// The endpoint belongs to the app, not to the admin key's own app.
	getEndpoint(t, s.As(t, appToken), ep.ID)
	s.As(t, s.Token).Do(`query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": ep.ID}).WantError(t, "NOT_FOUND")
	// Keys it creates default to that app.
	var k createdKey
	admin.Must(&k, createAPIKeyOp, map[string]any{"in": map[string]any{"name": "made for tenant"}})
	if k.CreateAPIKey.APIKey.App.ID != appID {
		t.Errorf("key created while acting in %s belongs to %s", appID, k.CreateAPIKey.APIKey.App.ID)
	}
	// Naming its own app is the same as not sending the header.
	s.As(t, s.Token).WithHeader(server.HeaderApp, s.AppID).Must(&v, viewerOp, nil)
	if v.Viewer.App.ID != s.AppID {
		t.Errorf("X-Herald-App naming the key's own app: viewer app %s", v.Viewer.App.ID)
	}
}

func TestActAs_AppKeyIsForbiddenAndUnknownAppNotFound(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	appA, tokenA := s.NewApp("a")
	appB, _ := s.NewApp("b")

	for name, tc := range map[string]struct {
		token, app, code string
	}{
		"app key in another app":     {tokenA, appB, "FORBIDDEN"},
		"app key in the default app": {tokenA, s.AppID, "FORBIDDEN"},
		"admin key in unknown app":   {s.Token, "app_01JDZ6Q4W8X3M5N7P9R2T4V6X8", "NOT_FOUND"},
		"admin key in garbage app":   {s.Token, "'; DROP TABLE apps; --", "NOT_FOUND"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := s.As(t, tc.token).WithHeader(server.HeaderApp, tc.app)
			c.Do(viewerOp, nil).WantError(t, tc.code)
			c.Do(`mutation { createEndpoint(input: {name: "xx", url: "https://example.com/x", eventTypes: ["*"]}) { secret } }`, nil).WantError(t, tc.code)
		})
	}
	// An app key naming its own app is fine.
	var v viewer
	s.As(t, tokenA).WithHeader(server.HeaderApp, appA).Must(&v, viewerOp, nil)
	if v.Viewer.App.ID != appA {
		t.Errorf("viewer = %+v", v.Viewer)
	}
}
