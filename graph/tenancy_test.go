package graph_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// This file holds the regression tests of the review of a hostile portal
// user (issue "Safe in front of untrusted customers"): each names the
// defect it proves fixed.

// portalSession opens a portal session of the default app with the admin
// key and returns its token.
func portalSession(t *testing.T, s *heraldtest.Server, input map[string]any) string {
	t.Helper()
	var out struct{ CreatePortalSession struct{ Token string } }
	s.As(t, s.Token).Must(&out, `mutation($in: CreatePortalSessionInput!) { createPortalSession(input: $in) { token } }`, map[string]any{"in": input})
	return out.CreatePortalSession.Token
}

// Defect 2: a literal first: null reached ent's eager loader unbounded.
func TestConnections_NullPageSizeIsTheDefaultPage(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)
	createEndpoint(t, c, map[string]any{"url": rc.URL})
	for i := range 25 {
		publish(t, c, "order.created", map[string]any{"n": i})
	}
	waitDeliveries(t, c, 25)
	count := func(query string, vars map[string]any) int {
		var out struct {
			Endpoints struct {
				Edges []struct {
					Node struct {
						Deliveries struct {
							Edges []struct{ Node struct{ ID string } }
						}
					}
				}
			}
		}
		c.Must(&out, query, vars)
		return len(out.Endpoints.Edges[0].Node.Deliveries.Edges)
	}
	for name, q := range map[string]struct {
		query string
		vars  map[string]any
	}{
		"literal null":              {`{ endpoints { edges { node { deliveries(first: null) { edges { node { id } } } } } } }`, nil},
		"literal nulls":             {`{ endpoints { edges { node { deliveries(first: null, last: null) { edges { node { id } } } } } } }`, nil},
		"null variable":             {`query($n: Int) { endpoints { edges { node { deliveries(first: $n) { edges { node { id } } } } } } }`, map[string]any{"n": nil}},
		"null variable and no last": {`query($n: Int, $m: Int) { endpoints { edges { node { deliveries(first: $n, last: $m) { edges { node { id } } } } } } }`, nil},
	} {
		if n := count(q.query, q.vars); n != 20 {
			t.Errorf("%s: %d deliveries, want the default page of 20", name, n)
		}
	}
	// Without a page size to fall back on, it is refused, not unbounded.
	c.Do(`query($m: Int) { endpoints { edges { node { deliveries(last: $m) { edges { node { id } } } } } } }`, nil).WantError(t, "BAD_USER_INPUT")
	// A nested page larger than the limit is refused before anything is
	// loaded, as a root one is.
	c.Do(`{ endpoints { edges { node { deliveries(first: 20000) { edges { node { id } } } } } } }`, nil).WantFault(t, "BAD_USER_INPUT", "first")
}

// Defect 6: nodes(ids: "key_…") with one value coerced to a list skipped
// the scope check; a read-only portal session read the app's admin key.
func TestScopes_NodeLookupsCheckWhatTheyResolve(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	var v viewer
	s.As(t, s.Token).Must(&v, viewerOp, nil)
	adminKey := v.Viewer.APIKey.ID
	session := s.As(t, portalSession(t, s, map[string]any{"readOnly": true}))
	for name, q := range map[string]string{
		"nodes with one value":   `{ nodes(ids: "` + adminKey + `") { id ... on APIKey { name admin } } }`,
		"nodes with a list":      `{ nodes(ids: ["` + adminKey + `"]) { id ... on APIKey { name admin } } }`,
		"node":                   `{ node(id: "` + adminKey + `") { id ... on APIKey { name admin } } }`,
		"nodes from a variable":  `query($ids: [ID!]!) { nodes(ids: $ids) { id ... on APIKey { name } } }`,
		"the app of another key": `{ nodes(ids: "` + s.AppID + `") { id } }`,
	} {
		r := session.Do(q, map[string]any{"ids": adminKey})
		if strings.Contains(string(r.Data), `"admin"`) || strings.Contains(string(r.Data), "Default admin") {
			t.Errorf("%s: a read-only portal session read a key record: %s", name, r.Body)
		}
		if len(r.Errors) == 0 {
			t.Errorf("%s: no error: %s", name, r.Body)
		}
	}
	// Its own key record stays readable through viewer.
	var own viewer
	session.Must(&own, `{ viewer { apiKey { id } } }`, nil)
	if own.Viewer.APIKey.ID == "" || own.Viewer.APIKey.ID == adminKey {
		t.Errorf("the session's own key = %q", own.Viewer.APIKey.ID)
	}
}

// Defect 7: a key scoped only to PORTAL_SESSIONS minted sessions with the
// whole portal's scopes. A credential never creates a session with more
// than it may do, unless its key says so in portalSessionScopes.
func TestPortalSessions_NeverGetMoreThanTheirCreatorMayGive(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	admin := s.As(t, s.Token)
	key := func(input map[string]any) string {
		var out createdKey
		admin.Must(&out, createAPIKeyOp, map[string]any{"in": input})
		return out.CreateAPIKey.Token
	}
	const sessionOp = `mutation($in: CreatePortalSessionInput!) { createPortalSession(input: $in) { token scopes readOnly apiKey { scopes } } }`
	type session struct {
		CreatePortalSession struct {
			Token    string
			Scopes   []string
			ReadOnly bool
		}
	}

	// Only PORTAL_SESSIONS: nothing to give.
	only := s.As(t, key(map[string]any{"name": "opener", "scopes": []string{"PORTAL_SESSIONS"}}))
	r := only.Do(sessionOp, map[string]any{"in": map[string]any{}})
	r.WantError(t, "FORBIDDEN")
	if !strings.Contains(string(r.Body), "portalSessionScopes") {
		t.Errorf("the refusal does not say how to allow it: %s", r.Body)
	}

	// Said in plain words on the key: those, and no more.
	opener := s.As(t, key(map[string]any{"name": "opener", "scopes": []string{"PORTAL_SESSIONS"},
		"portalSessionScopes": []string{"CATALOG_READ", "ENDPOINTS_READ", "EVENTS_READ"}}))
	var got session
	opener.Must(&got, sessionOp, map[string]any{"in": map[string]any{}})
	if want := "CATALOG_READ,ENDPOINTS_READ,EVENTS_READ"; strings.Join(got.CreatePortalSession.Scopes, ",") != want || !got.CreatePortalSession.ReadOnly {
		t.Errorf("session scopes %v (readOnly %v), want %s", got.CreatePortalSession.Scopes, got.CreatePortalSession.ReadOnly, want)
	}
	opener.Do(sessionOp, map[string]any{"in": map[string]any{"scopes": []string{"ENDPOINTS_WRITE"}}}).WantFault(t, "FORBIDDEN", "input.scopes")
	// The session cannot add a * endpoint.
	sess := s.As(t, got.CreatePortalSession.Token)
	sess.Do(`mutation { createEndpoint(input: {name: "all", url: "https://example.com/x", eventTypes: ["*"]}) { secret } }`, nil).WantError(t, "FORBIDDEN")

	// portalSessionScopes is refused where it means nothing.
	admin.Do(createAPIKeyOp, map[string]any{"in": map[string]any{"name": "x", "portalSessionScopes": []string{"EVENTS_READ"}}}).WantFault(t, "BAD_USER_INPUT", "input.portalSessionScopes")
	admin.Do(createAPIKeyOp, map[string]any{"in": map[string]any{"name": "x", "scopes": []string{"PORTAL_SESSIONS"}, "portalSessionScopes": []string{"EVENTS_PUBLISH"}}}).WantFault(t, "BAD_USER_INPUT", "input.portalSessionScopes")

	// A session never outlives the key that creates it.
	short := s.As(t, key(map[string]any{"name": "short", "scopes": []string{"PORTAL_SESSIONS", "EVENTS_READ"}, "expiresIn": "1h"}))
	short.Do(sessionOp, map[string]any{"in": map[string]any{"expiresIn": "48h"}}).WantFault(t, "BAD_USER_INPUT", "input.expiresIn")
}

// Defect 8: no quotas. Per-app limits, readable on App, settable by an
// admin, refused with FORBIDDEN and reason QUOTA; an operation may not
// have more than 20 root fields.
func TestQuota_LimitsAreReadableAndRefuseWhatGoesOver(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	admin := s.As(t, s.Token)
	admin.Must(nil, `mutation($id: ID!) { updateApp(id: $id, input: {limits: [{name: ENDPOINTS, limit: 3}, {name: FILTER_BYTES, limit: 64}, {name: HEADERS_PER_ENDPOINT, limit: 1}]}) { id } }`,
		map[string]any{"id": s.AppID})
	session := s.As(t, portalSession(t, s, map[string]any{}))
	for i := range 3 {
		createEndpoint(t, session, map[string]any{"url": fmt.Sprintf("https://example.com/%d", i)})
	}
	r := session.Do(createEndpointOp, map[string]any{"in": endpointInput(map[string]any{"url": "https://example.com/4"})})
	r.WantError(t, "FORBIDDEN")
	if r.Reason() != "QUOTA" || !strings.Contains(string(r.Body), "ENDPOINTS is 3") {
		t.Errorf("over the endpoints limit: %s", r.Body)
	}
	var limits struct {
		Viewer struct {
			App struct {
				Limits []struct {
					Name           string
					Limit, Default int
					Used           *int
				}
			}
		}
	}
	session.Must(&limits, `{ viewer { app { limits { name limit default used } } } }`, nil)
	found := false
	for _, l := range limits.Viewer.App.Limits {
		if l.Name == "ENDPOINTS" {
			found = l.Limit == 3 && l.Default == 100 && l.Used != nil && *l.Used == 3
		}
	}
	if !found {
		t.Errorf("App.limits as the portal reads it: %+v", limits.Viewer.App.Limits)
	}
	// Deleting one makes room.
	var eps struct {
		Endpoints struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	session.Must(&eps, `{ endpoints { edges { node { id } } } }`, nil)
	session.Must(nil, `mutation($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`, map[string]any{"id": eps.Endpoints.Edges[0].Node.ID})
	ep, _ := createEndpoint(t, session, map[string]any{"url": "https://example.com/5"})
	// Bounds on one endpoint: its filter's size and its headers.
	session.Do(`mutation($id: ID!, $f: JSON) { updateEndpoint(id: $id, input: {filter: $f}) { id } }`,
		map[string]any{"id": ep.ID, "f": map[string]any{"data.a": map[string]any{"$in": []string{"aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc", "dddddddddd", "eeeeeeeeee"}}}}).
		WantFault(t, "FORBIDDEN", "input.filter")
	session.Do(`mutation($id: ID!) { updateEndpoint(id: $id, input: {headers: [{name: "X-A", value: "1"}, {name: "X-B", value: "2"}]}) { id } }`,
		map[string]any{"id": ep.ID}).WantFault(t, "FORBIDDEN", "input.headers")
	// Only admins set limits, within bounds.
	session.Do(`mutation($id: ID!) { updateApp(id: $id, input: {limits: [{name: ENDPOINTS, limit: 1000}]}) { id } }`, map[string]any{"id": s.AppID}).WantError(t, "FORBIDDEN")
	admin.Do(`mutation($id: ID!) { updateApp(id: $id, input: {limits: [{name: FILTER_BYTES, limit: 1000000}]}) { id } }`, map[string]any{"id": s.AppID}).
		WantFault(t, "BAD_USER_INPUT", "input.limits[0].limit")
	// 250 aliased mutations in one request are refused whole.
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range 250 {
		fmt.Fprintf(&b, ` e%d: createEventType(input: {name: "flood.t%d"}) { id }`, i, i)
	}
	b.WriteString("}")
	session.Do(b.String(), nil).WantError(t, "BAD_USER_INPUT")
}

// holdTheOnlyTurn starts a server whose requests wait a second for their
// turn, with an app "busy" limited to one request at a time and a test
// send of it holding that turn until free is called (held then gets its
// answer), and another app. It returns the server and the apps' keys.
func holdTheOnlyTurn(t *testing.T) (s *heraldtest.Server, busy, other string, free func(), held <-chan *heraldtest.Response) {
	t.Helper()
	s = heraldtest.Start(t, func(c *server.Config) { c.TurnWait = time.Second })
	busyApp, busy := s.NewApp("busy")
	_, other = s.NewApp("other")
	s.As(t, s.Token).Must(nil, `mutation($id: ID!) { updateApp(id: $id, input: {limits: [{name: CONCURRENT_REQUESTS, limit: 1}]}) { id } }`,
		map[string]any{"id": busyApp})
	release := make(chan struct{})
	var once sync.Once
	free = func() { once.Do(func() { close(release) }) }
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-release
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(free)
	ep, _ := s.CreateEndpoint(busy, map[string]any{"url": rc.URL, "name": "slow"})
	answer := make(chan *heraldtest.Response, 1)
	go func() {
		answer <- s.Do(busy, `mutation($id: ID!) { testEndpoint(id: $id) { attempt { responseStatus } } }`, map[string]any{"id": ep})
	}()
	rc.WaitRequests(t, 1, 10*time.Second) // the test send holds the app's one turn
	return s, busy, other, free, answer
}

// An app's requests take turns (its CONCURRENT_REQUESTS limit): with a
// limit of 1 and a test send holding the turn, the app's next request
// waits and, past the server's wait, is refused RATE_LIMITED, while another
// app's requests go through; once the turn is back, the app's requests
// run again.
func TestTurns_AnAppWaitsForItsOwnTurnsOnly(t *testing.T) {
	t.Parallel()
	s, busy, other, free, held := holdTheOnlyTurn(t)
	r := s.Do(busy, `{ viewer { app { id } } }`, nil)
	r.WantError(t, "FORBIDDEN")
	if r.Reason() != "RATE_LIMITED" || !strings.Contains(string(r.Body), "CONCURRENT_REQUESTS") {
		t.Errorf("a request past its app's turns: %s", r.Body)
	}
	s.As(t, other).Must(nil, `{ viewer { app { id } } }`, nil) // another app does not wait
	free()
	if r := <-held; len(r.Errors) > 0 {
		t.Fatalf("the test send: %s", r.Body)
	}
	s.As(t, busy).Must(nil, `{ viewer { app { id } } }`, nil)
}

// A large request (a big payload) waits for its app's heavy turn before
// its body is read and decoded: decoding costs about as much CPU as
// publishing, and an app's large requests decoding all at once took every
// core from the other apps. So with the app's one turn held, even a large
// body that is not JSON is refused RATE_LIMITED after the wait, not
// decoded; another app's same body is decoded (and refused as not JSON)
// at once.
func TestTurns_ALargeRequestWaitsForItsTurnBeforeItIsDecoded(t *testing.T) {
	t.Parallel()
	s, busy, other, free, held := holdTheOnlyTurn(t)

	large := `{"query": "{ viewer { app { id } } }", "variables": {"junk": [` + strings.Repeat("1,", 40<<10) + `]`
	post := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(large))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, io.LimitReader(resp.Body, 400)) // the start says enough
		return resp.StatusCode, b.String()
	}
	start := time.Now()
	if _, body := post(busy); !strings.Contains(body, "RATE_LIMITED") || time.Since(start) < 900*time.Millisecond {
		t.Errorf("a large request of the busy app, after %s: %s, want RATE_LIMITED after its wait", time.Since(start), body)
	}
	if _, body := post(other); strings.Contains(body, "RATE_LIMITED") || !strings.Contains(body, "json") {
		t.Errorf("another app's large request that is not JSON: %s, want refused as such", body)
	}
	free()
	if r := <-held; len(r.Errors) > 0 {
		t.Fatalf("the test send: %s", r.Body)
	}
}
