package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

func TestPortalSession_AppKeyOpensItsOwnAppOnly(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	appKey, _ := newKey(t, s, "platform backend")
	otherApp, otherKey := s.NewApp("other")

	before := time.Now()
	sess := portalSession(t, s, appKey, map[string]any{"name": "Acme Inc."})
	if want := s.URL + "/portal/" + s.AppID + "#token=" + sess.Token; sess.URL != want {
		t.Errorf("url = %q, want %q", sess.URL, want)
	}
	if d := sess.ExpiresAt.Sub(before); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expiresAt is %s after creation, want the default 1h", d)
	}
	if sess.APIKey.Kind != "PORTAL_SESSION" || sess.ReadOnly ||
		strings.Join(sess.APIKey.Scopes, ",") != "CATALOG_READ,ENDPOINTS_READ,ENDPOINTS_WRITE,EVENTS_READ,DELIVERIES_WRITE" {
		t.Errorf("session = %+v", sess)
	}
	ro := portalSession(t, s, appKey, map[string]any{"readOnly": true, "expiresIn": "168h"})
	if !ro.ReadOnly || strings.Join(ro.APIKey.Scopes, ",") != "CATALOG_READ,ENDPOINTS_READ,EVENTS_READ" {
		t.Errorf("read-only session = %+v", ro)
	}

	// An app key cannot open another app's portal; an admin key can.
	s.As(t, appKey).Do(`mutation($a: ID!) { createPortalSession(input: {appId: $a}) { url } }`,
		map[string]any{"a": otherApp}).WantFault(t, "FORBIDDEN", "")
	other := portalSession(t, s, s.Token, map[string]any{"appId": otherApp})
	if !strings.Contains(other.URL, "/portal/"+otherApp+"#token=") {
		t.Errorf("admin's session of another app: url %q", other.URL)
	}
	s.As(t, appKey).Do(`mutation { createPortalSession(input: {expiresIn: "169h"}) { url } }`, nil).
		WantFault(t, "BAD_USER_INPUT", "input.expiresIn")

	// The token works in its app and nowhere else.
	var v struct {
		Viewer struct {
			IsAdmin bool
			App     struct{ ID string }
		}
	}
	s.As(t, sess.Token).Must(&v, `{ viewer { isAdmin app { id } } }`, nil)
	if v.Viewer.App.ID != s.AppID || v.Viewer.IsAdmin {
		t.Errorf("viewer of the session = %+v", v.Viewer)
	}
	s.As(t, sess.Token).WithHeader(server.HeaderApp, otherApp).Do(`{ viewer { app { id } } }`, nil).WantFault(t, "FORBIDDEN", "")
	otherEP, _ := s.CreateEndpoint(otherKey, map[string]any{"url": "https://example.com/hook"})
	r := s.As(t, sess.Token).Do(`query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": otherEP})
	if r.Code() != "NOT_FOUND" || string(r.Data) != `{"node":null}` {
		t.Errorf("node(other app's endpoint) with a portal token: %s", r.Body)
	}
	r = s.As(t, sess.Token).Do(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{otherEP, otherEP}})
	if string(r.Data) != `{"nodes":[null,null]}` {
		t.Errorf("nodes(other app's endpoints) with a portal token: %s", r.Body)
	}
	var eps struct{ Endpoints struct{ TotalCount int } }
	s.As(t, sess.Token).Must(&eps, `{ endpoints { totalCount } }`, nil)
	if eps.Endpoints.TotalCount != 0 {
		t.Errorf("the portal sees %d endpoints, want its app's 0", eps.Endpoints.TotalCount)
	}
	s.As(t, sess.Token).Do(`mutation($id: ID!) { updateEndpoint(id: $id, input: {name: "mine"}) { id } }`,
		map[string]any{"id": otherEP}).WantFault(t, "NOT_FOUND", "")
}

func TestPortalSession_NestedObjectsNeedTheirOwnScopes(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	publisher := scopedKey(t, s, "backend", []string{"EVENTS_PUBLISH"})
	reader := scopedKey(t, s, "log reader", []string{"EVENTS_READ"})

	// A publish-only key reads the event it published, nothing under it.
	var out struct{ PublishEvent struct{ ID string } }
	s.As(t, publisher).Must(&out, `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { id eventType } }`, nil)
	s.As(t, publisher).Do(`mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { id deliveries { totalCount } } }`, nil).
		WantFault(t, "FORBIDDEN", "")
	s.As(t, publisher).Do(`query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": out.PublishEvent.ID}).WantFault(t, "FORBIDDEN", "")
	// ... also through fragments.
	s.As(t, publisher).Do(`mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { ...E } }
		fragment E on Event { id deliveries { edges { node { id } } } }`, nil).WantFault(t, "FORBIDDEN", "")

	// The log reader sees deliveries, not the endpoints' configuration.
	s.WaitDelivery(s.Token, out.PublishEvent.ID, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	s.As(t, reader).Must(nil, `{ deliveries { edges { node { id status attempts { edges { node { responseStatus } } } } } } }`, nil)
	r := s.As(t, reader).Do(`{ deliveries { edges { node { id endpoint { url } } } } }`, nil)
	r.WantFault(t, "FORBIDDEN", "")
	if !strings.Contains(r.Errors[0].Message, "Endpoint.url") || !strings.Contains(r.Errors[0].Message, "ENDPOINTS_READ") {
		t.Errorf("refusal message %q does not say which field needs which scope", r.Errors[0].Message)
	}
	// Introspection stays open.
	s.As(t, reader).Must(nil, `{ __typename __schema { queryType { name } } }`, nil)
}

func TestPortalSession_ExpiryEndsItOverHTTPAndWebsocket(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	sess := portalSession(t, s, s.Token, map[string]any{"expiresIn": "1s"})
	c := dial(t, s, heraldtest.TransportWS, sess.Token)
	if err := c.Subscribe("1", deliverySubscription, nil); err != nil {
		t.Fatal(err)
	}
	waitSubscribed(t, s, 1)

	code, reason, ok := c.WaitClosed(10 * time.Second)
	if !ok || code != server.CloseUnauthorized || !strings.Contains(reason, "expired") {
		t.Fatalf("the session's websocket: closed=%v with %d %q, want %d once it expired", ok, code, reason, server.CloseUnauthorized)
	}
	r := s.As(t, sess.Token).Do(`{ viewer { app { id } } }`, nil)
	r.WantFault(t, "UNAUTHENTICATED", "")
	if r.Reason() != "EXPIRED" || !strings.Contains(r.Errors[0].Message, "ask for a new portal link") {
		t.Errorf("expired session: reason %q, message %q", r.Reason(), r.Errors[0].Message)
	}
	c2, _, err := s.DialWS(heraldtest.TransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Init(bearer(sess.Token)); err == nil {
		t.Error("connection_init with an expired session accepted")
	}

	// API keys may expire too.
	var k struct{ CreateAPIKey struct{ Token string } }
	s.Do(s.Token, `mutation { createAPIKey(input: {name: "ci", scopes: [EVENTS_PUBLISH], expiresIn: "1s"}) { token apiKey { expiresAt scopes } } }`, nil).Decode(t, &k)
	var last *heraldtest.Response
	if !heraldtest.Eventually(10*time.Second, func() bool {
		last = s.Do(k.CreateAPIKey.Token, `{ viewer { app { id } } }`, nil)
		return last.Code() == "UNAUTHENTICATED"
	}) {
		t.Fatalf("a key that expired after 1s still works: %s", last.Body)
	}
	if last.Reason() != "EXPIRED" || !strings.Contains(last.Errors[0].Message, "create a new key") {
		t.Errorf("expired key: %s", last.Body)
	}
}

func TestPortalSession_RevokingClosesItsConnections(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	appKey, keyID := newKey(t, s, "platform backend")
	one := portalSession(t, s, appKey, map[string]any{})
	a, b := portalSession(t, s, appKey, map[string]any{}), portalSession(t, s, appKey, map[string]any{"readOnly": true})
	_, otherKey := s.NewApp("other")
	foreign := portalSession(t, s, otherKey, map[string]any{})
	conns := map[string]*heraldtest.WS{}
	for name, tok := range map[string]string{"one": one.Token, "a": a.Token, "b": b.Token, "foreign": foreign.Token} {
		conns[name] = dial(t, s, heraldtest.TransportWS, tok)
	}
	wantClosed := func(name string) {
		t.Helper()
		code, _, ok := conns[name].WaitClosed(5 * time.Second)
		if !ok || code != server.CloseUnauthorized {
			t.Errorf("session %s's websocket: closed=%v code %d, want %d", name, ok, code, server.CloseUnauthorized)
		}
	}

	// One session.
	s.As(t, otherKey).Do(`mutation($id: ID!) { revokePortalSession(id: $id) { id } }`, map[string]any{"id": one.APIKey.ID}).WantFault(t, "NOT_FOUND", "")
	s.As(t, appKey).Do(`mutation($id: ID!) { revokePortalSession(id: $id) { id } }`, map[string]any{"id": keyID}).WantFault(t, "BAD_USER_INPUT", "id")
	s.As(t, appKey).Must(nil, `mutation($id: ID!) { revokePortalSession(id: $id) { id revokedAt } }`, map[string]any{"id": one.APIKey.ID})
	wantClosed("one")
	r := s.As(t, one.Token).Do(`{ viewer { app { id } } }`, nil)
	if r.Code() != "UNAUTHENTICATED" || r.Reason() != "REVOKED" {
		t.Errorf("revoked session: %s", r.Body)
	}

	// All of an app's sessions, and only those.
	var out struct{ RevokePortalSessions struct{ Count int } }
	s.As(t, appKey).Must(&out, `mutation { revokePortalSessions { count } }`, nil)
	if out.RevokePortalSessions.Count != 2 {
		t.Errorf("revokePortalSessions revoked %d sessions, want 2", out.RevokePortalSessions.Count)
	}
	wantClosed("a")
	wantClosed("b")
	if code, _ := conns["foreign"].CloseCode(); code != 0 {
		t.Errorf("another app's session was closed (%d)", code)
	}
	s.As(t, foreign.Token).Must(nil, `{ viewer { app { id } } }`, nil)
	s.As(t, appKey).Must(nil, `{ viewer { app { id } } }`, nil) // the key that opened them works on
}

func TestPortalSession_WebsocketStaysInItsAppAndScope(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	_, otherKey := s.NewApp("other")
	rcOther := heraldtest.NewReceiver(t, nil)
	otherEP, _ := s.CreateEndpoint(otherKey, map[string]any{"url": rcOther.URL})
	rc := heraldtest.NewReceiver(t, nil)
	ownEP, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	sess := portalSession(t, s, s.Token, map[string]any{"readOnly": true})

	for _, proto := range protocols {
		c := dial(t, s, proto, sess.Token)
		if err := c.Subscribe("other", deliverySubscription, map[string]any{"ep": otherEP}); err != nil {
			t.Fatal(err)
		}
		if r := c.Next(t, "other", 5*time.Second); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "NOT_FOUND" {
			t.Errorf("%s: subscribing to another app's endpoint: %+v", proto, r)
		}
		for name, doc := range map[string]string{
			"publish": `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { id } }`,
			"retry":   `mutation { retryDelivery(id: "` + fakeDLV + `") { id } }`,
			"apps":    `{ apps { totalCount } }`,
		} {
			if err := c.Subscribe(name, doc, nil); err != nil {
				t.Fatal(err)
			}
			if r := c.Next(t, name, 5*time.Second); !refusedByScope(r.Errors) {
				t.Errorf("%s: %s over websocket with a read-only portal session: %+v", proto, name, r)
			}
		}
		if err := c.Subscribe("feed", deliverySubscription, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitSubscribed(t, s, len(protocols))
	// Only the session's app reaches its feed: the other app's event is
	// published first, and the first update is about the app's own.
	c := dial(t, s, heraldtest.TransportWS, sess.Token)
	if err := c.Subscribe("1", deliverySubscription, map[string]any{"ep": ownEP}); err != nil {
		t.Fatal(err)
	}
	waitSubscribed(t, s, len(protocols)+1)
	other := s.Publish(otherKey, "order.created", map[string]any{})
	own := s.Publish(s.Token, "order.created", map[string]any{})
	if ch := nextChange(t, c, "1"); ch.EventID != own || ch.EndpointID != ownEP {
		t.Errorf("first update of the portal's feed = %+v, want one about %s (not the other app's %s)", ch, own, other)
	}
}

func TestPortalPage_FramingFollowsTheAppsAllowedOrigins(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	appKey, _ := newKey(t, s, "platform backend")
	page := func() http.Header {
		t.Helper()
		resp, err := http.Get(s.URL + "/portal/" + s.AppID)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /portal/%s: %d", s.AppID, resp.StatusCode)
		}
		return resp.Header
	}
	h := page()
	if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("portal without allowed origins: CSP %q, X-Frame-Options %q", h.Get("Content-Security-Policy"), h.Get("X-Frame-Options"))
	}

	// An app key sets its own app's portal settings.
	s.As(t, appKey).Do(`mutation { updatePortalSettings(input: {allowedOrigins: ["https://app.example.com/path"]}) { id } }`, nil).
		WantFault(t, "BAD_USER_INPUT", "input.allowedOrigins[0]")
	s.As(t, appKey).Do(`mutation { updatePortalSettings(input: {accentColor: "green"}) { id } }`, nil).
		WantFault(t, "BAD_USER_INPUT", "input.accentColor")
	var out struct {
		UpdatePortalSettings struct {
			Portal struct {
				DisplayName    string
				AccentColor    string
				Theme          string
				AllowedOrigins []string
			}
		}
	}
	s.As(t, appKey).Must(&out, `mutation { updatePortalSettings(input: {
		displayName: "Acme Webhooks", accentColor: "#0A7C5A", theme: DARK,
		allowedOrigins: ["https://App.Example.com", "http://localhost:3000", "https://*.acme.test"]}) {
		portal { displayName accentColor theme allowedOrigins } } }`, nil)
	p := out.UpdatePortalSettings.Portal
	if p.DisplayName != "Acme Webhooks" || p.AccentColor != "#0a7c5a" || p.Theme != "DARK" ||
		strings.Join(p.AllowedOrigins, " ") != "https://app.example.com http://localhost:3000 https://*.acme.test" {
		t.Errorf("portal settings = %+v", p)
	}
	h = page()
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors https://app.example.com http://localhost:3000 https://*.acme.test;") &&
		!strings.HasSuffix(csp, "frame-ancestors https://app.example.com http://localhost:3000 https://*.acme.test") {
		t.Errorf("portal with allowed origins: CSP %q", csp)
	}
	if h.Get("X-Frame-Options") != "" {
		t.Errorf("X-Frame-Options %q would refuse the allowed origins", h.Get("X-Frame-Options"))
	}
	// Another app's portal still refuses frames.
	other, _ := s.NewApp("other")
	resp, err := http.Get(s.URL + "/portal/" + other)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("another app's portal: CSP %q", resp.Header.Get("Content-Security-Policy"))
	}
	// A portal session reads the settings, and may not change them.
	sess := portalSession(t, s, appKey, map[string]any{})
	s.As(t, sess.Token).Do(`mutation { updatePortalSettings(input: {allowedOrigins: ["https://evil.example"]}) { id } }`, nil).WantFault(t, "FORBIDDEN", "")
}

func TestAPIKey_ScopesAreChecked(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	for _, tc := range []struct{ name, input, field string }{
		{"admin keys are never restricted", `{name: "x", admin: true, scopes: [EVENTS_READ]}`, "input.scopes"},
		{"an empty list", `{name: "x", scopes: []}`, "input.scopes"},
		{"a negative lifetime", `{name: "x", expiresIn: "-1h"}`, "input.expiresIn"},
	} {
		s.As(t, s.Token).Do(`mutation { createAPIKey(input: `+tc.input+`) { token } }`, nil).WantFault(t, "BAD_USER_INPUT", tc.field)
	}
	var k struct {
		CreateAPIKey struct {
			APIKey struct {
				Kind   string
				Scopes []string
			}
		}
	}
	s.As(t, s.Token).Must(&k, `mutation { createAPIKey(input: {name: "dash", scopes: [EVENTS_READ, CATALOG_READ, EVENTS_READ]}) { apiKey { kind scopes } } }`, nil)
	if k.CreateAPIKey.APIKey.Kind != "API_KEY" || strings.Join(k.CreateAPIKey.APIKey.Scopes, ",") != "CATALOG_READ,EVENTS_READ" {
		t.Errorf("restricted key = %+v", k.CreateAPIKey.APIKey)
	}
}
