package graph_test

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/signing"
)

func TestCreateEndpoint_ReturnsSecretAndDefaults(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	ep, secret := createEndpoint(t, c, map[string]any{
		"name": "  Orders  ", "url": "https://example.com/hooks", "eventTypes": []string{"order.*", "contact.created", "order.*"},
	})

	enc, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		t.Fatalf("secret %q does not start with whsec_", secret)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) < 24 {
		t.Fatalf("secret %q: want standard base64 of at least 24 bytes, got %d bytes, err %v", secret, len(key), err)
	}
	if !strings.HasPrefix(ep.ID, "ep_") {
		t.Errorf("id = %q, want an ep_ ID", ep.ID)
	}
	if ep.Name != "Orders" {
		t.Errorf("name = %q, want it trimmed to %q", ep.Name, "Orders")
	}
	if ep.URL != "https://example.com/hooks" {
		t.Errorf("url = %q", ep.URL)
	}
	if want := []string{"order.*", "contact.created"}; !slices.Equal(ep.EventTypes, want) {
		t.Errorf("eventTypes = %q, want %q (duplicates dropped)", ep.EventTypes, want)
	}
	rp := ep.RetryPolicy
	if rp.MaxAttempts != 8 || rp.InitialDelay != "5s" || rp.BackoffMultiplier != 6 || rp.MaxDelay != "12h" {
		t.Errorf("retryPolicy = %+v, want maxAttempts 8, initialDelay 5s, backoffMultiplier 6, maxDelay 12h", rp)
	}
	if ep.Timeout != "10s" {
		t.Errorf("timeout = %q, want 10s", ep.Timeout)
	}
	if !ep.IsActive || ep.DisabledReason != nil || ep.DisabledAt != nil {
		t.Errorf("isActive = %v, disabledReason = %v, disabledAt = %v; want an active endpoint", ep.IsActive, ep.DisabledReason, ep.DisabledAt)
	}
	if ep.Health != "SETUP" {
		t.Errorf("health = %q, want SETUP", ep.Health)
	}
	if ep.Auth.Type != "NONE" || len(ep.Headers) != 0 || ep.ConsecutiveFailures != 0 || ep.PreviousSecretExpiresAt != nil {
		t.Errorf("auth = %+v, headers = %+v, consecutiveFailures = %d, previousSecretExpiresAt = %v; want none",
			ep.Auth, ep.Headers, ep.ConsecutiveFailures, ep.PreviousSecretExpiresAt)
	}

	// The stored endpoint reads back the same.
	if got := getEndpoint(t, c, ep.ID); got.Name != ep.Name || got.Timeout != ep.Timeout || got.RetryPolicy != ep.RetryPolicy {
		t.Errorf("node(%s) = %+v, want %+v", ep.ID, got, ep)
	}
}

func TestCreateEndpoint_AcceptsBoundaryValues(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	for i, in := range []map[string]any{
		{"name": "ab", "timeout": "100ms", "retryPolicy": map[string]any{"maxAttempts": 1, "initialDelay": "0s", "backoffMultiplier": 1, "maxDelay": "0s"}},
		{"name": strings.Repeat("n", 255), "timeout": "30s", "retryPolicy": map[string]any{"maxAttempts": 50, "initialDelay": "168h", "backoffMultiplier": 100, "maxDelay": "168h"}},
		{"auth": map[string]any{"type": "HMAC", "secret": "0123456789abcdef"}, "headers": []map[string]any{{"name": "X-A", "value": ""}}},
	} {
		in["url"] = "https://example.com/" + string(rune('a'+i))
		ep, _ := createEndpoint(t, c, in)
		if in["timeout"] != nil && ep.Timeout != in["timeout"] {
			t.Errorf("timeout = %q, want %q", ep.Timeout, in["timeout"])
		}
		if rp, ok := in["retryPolicy"].(map[string]any); ok && ep.RetryPolicy.MaxAttempts != rp["maxAttempts"] {
			t.Errorf("maxAttempts = %d, want %v", ep.RetryPolicy.MaxAttempts, rp["maxAttempts"])
		}
	}
}

func TestCreateEndpoint_CreatedInactiveIsDisabled(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	ep, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/hooks", "isActive": false})
	if ep.IsActive || ep.DisabledReason == nil || ep.Health != "ATTENTION" {
		t.Fatalf("endpoint created with isActive false: isActive %v, disabledReason %v, health %s", ep.IsActive, ep.DisabledReason, ep.Health)
	}
	var out struct{ PublishEvent struct{ DeliveryCount int } }
	c.Must(&out, `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { deliveryCount } }`, nil)
	if out.PublishEvent.DeliveryCount != 0 {
		t.Errorf("inactive endpoint got %d deliveries, want 0", out.PublishEvent.DeliveryCount)
	}
}

func TestCreateEndpoint_SecretIsNeverReadableAgain(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)

	ep, secret := createEndpoint(t, c, map[string]any{"url": rc.Hook("/hook")})
	evID := publish(t, c, "order.created", map[string]any{"orderId": "ord_1"})
	s.WaitDelivery(s.Token, evID, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	key := strings.TrimPrefix(secret, "whsec_")

	queries := map[string]string{
		"endpoints":           `{ endpoints { edges { node { ` + endpointFields + ` } } } }`,
		"node":                `query($id: ID!) { node(id: $id) { ... on Endpoint { ` + endpointFields + ` } } }`,
		"nodes":               `query($id: ID!) { nodes(ids: [$id]) { ... on Endpoint { ` + endpointFields + ` } } }`,
		"delivery endpoint":   `{ deliveries { edges { node { endpoint { ` + endpointFields + ` } attempts(first: 5) { edges { node { requestHeaders { name value } } } } } } } }`,
		"endpoint deliveries": `query($id: ID!) { node(id: $id) { ... on Endpoint { deliveries { edges { node { endpoint { ` + endpointFields + ` } } } } } } }`,
		"events":              `{ events { edges { node { payload deliveries { edges { node { endpoint { id auth { secret token } } } } } } } } }`,
	}
	for name, q := range queries {
		r := c.Do(q, map[string]any{"id": ep.ID})
		r.Decode(t, nil)
		if !strings.Contains(string(r.Body), ep.ID) {
			t.Errorf("%s: response does not mention the endpoint, so it proves nothing: %s", name, r.Body)
		}
		wantNoSecret(t, name, r.Body, key)
	}

	// The schema has no field that could return it.
	var schema struct {
		Type struct{ Fields []struct{ Name string } } `json:"__type"`
	}
	c.Must(&schema, `{ __type(name: "Endpoint") { fields { name } } }`, nil)
	for _, f := range schema.Type.Fields {
		if n := strings.ToLower(f.Name); strings.Contains(n, "secret") && n != "previoussecretexpiresat" {
			t.Errorf("Endpoint has a field %q", f.Name)
		}
	}

	// Nor does the delivery carry it.
	for _, req := range rc.Requests() {
		for name, vs := range req.Header {
			wantNoSecret(t, "delivery header "+name, []byte(strings.Join(vs, " ")), key)
		}
		wantNoSecret(t, "delivery body", req.Body, key)
	}
}

func TestCreateEndpoint_MasksAuthSecrets(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)

	tests := []struct {
		name       string
		auth       map[string]any
		field      string // the masked field of EndpointAuth
		secret     string
		wantMasked string
		wantHeader string // headerName after defaults, if any
	}{
		{"bearer", map[string]any{"type": "BEARER", "token": "tok_live_abcdefghijklmnop"}, "token", "tok_live_abcdefghijklmnop", "****mnop", ""},
		{"short bearer", map[string]any{"type": "BEARER", "token": "tok_short"}, "token", "tok_short", "****", ""},
		{"basic", map[string]any{"type": "BASIC", "username": "ada", "password": "correct-horse-battery"}, "password", "correct-horse-battery", "****tery", ""},
		{"api key", map[string]any{"type": "API_KEY", "headerName": "X-Api-Key", "headerValue": "key_abcdefghijklmnop"}, "headerValue", "key_abcdefghijklmnop", "****mnop", "X-Api-Key"},
		{"hmac", map[string]any{"type": "HMAC", "secret": "hmac-secret-0123456789"}, "secret", "hmac-secret-0123456789", "****6789", "X-Signature-256"},
		{"signature", map[string]any{"type": "SIGNATURE", "secret": "sig-secret-0123456789", "headerName": "X-Sig"}, "secret", "sig-secret-0123456789", "****6789", "X-Sig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := s.As(t, s.Token)
			url := "https://example.com/" + strings.ReplaceAll(tt.name, " ", "-")
			r := c.Do(createEndpointOp, map[string]any{"in": endpointInput(map[string]any{"url": url, "auth": tt.auth})})
			var out struct{ CreateEndpoint struct{ Endpoint endpoint } }
			r.Decode(t, &out)
			bodies := map[string][]byte{"createEndpoint": r.Body}
			id := out.CreateEndpoint.Endpoint.ID
			bodies["node"] = c.Do(`query($id: ID!) { node(id: $id) { ... on Endpoint { `+endpointFields+` } } }`, map[string]any{"id": id}).Body
			bodies["endpoints"] = c.Do(`query($u: String!) { endpoints(where: {url: $u}) { edges { node { `+endpointFields+` } } } }`, map[string]any{"u": url}).Body
			bodies["updateEndpoint"] = c.Do(updateEndpointOp, map[string]any{"id": id, "in": map[string]any{"name": "renamed " + tt.name}}).Body
			for what, body := range bodies {
				wantNoSecret(t, what, body, tt.secret)
			}

			ep := getEndpoint(t, c, id)
			got := map[string]*string{
				"token": ep.Auth.Token, "password": ep.Auth.Password, "headerValue": ep.Auth.HeaderValue, "secret": ep.Auth.Secret,
			}[tt.field]
			if got == nil || *got != tt.wantMasked {
				t.Errorf("auth.%s = %v, want %q", tt.field, deref(got), tt.wantMasked)
			}
			if tt.wantHeader != "" && deref(ep.Auth.HeaderName) != tt.wantHeader {
				t.Errorf("auth.headerName = %q, want %q", deref(ep.Auth.HeaderName), tt.wantHeader)
			}
			if tt.auth["username"] != nil && deref(ep.Auth.Username) != tt.auth["username"] {
				t.Errorf("auth.username = %q, want it shown as %q", deref(ep.Auth.Username), tt.auth["username"])
			}
		})
	}
}

func TestCreateEndpoint_SendsUnmaskedCredentials(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)

	ep, _ := createEndpoint(t, c, map[string]any{
		"url":     rc.Hook("/hook"),
		"auth":    map[string]any{"type": "BEARER", "token": "tok_live_abcdefghijklmnop"},
		"headers": []map[string]any{{"name": "x-api-key", "value": "key_0123456789abcdef"}},
	})
	var out struct{ TestEndpoint struct{ Delivered bool } }
	c.Must(&out, `mutation($id: ID!) { testEndpoint(id: $id) { delivered } }`, map[string]any{"id": ep.ID})
	if !out.TestEndpoint.Delivered {
		t.Fatalf("test delivery failed")
	}
	req := rc.Requests()[0]
	if got := req.Header.Get("Authorization"); got != "Bearer tok_live_abcdefghijklmnop" {
		t.Errorf("Authorization = %q, want the real token", got)
	}
	if got := req.Header.Get("X-Api-Key"); got != "key_0123456789abcdef" {
		t.Errorf("X-Api-Key = %q, want the real value", got)
	}
}

func TestCreateEndpoint_MasksCredentialHeaders(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	headers := []map[string]any{
		{"name": "x-api-key", "value": "key_0123456789abcdef"},
		{"name": "X-Auth-Token", "value": "tok_0123456789abcdef"},
		{"name": "X-Client-Secret", "value": "sec_0123456789abcdef"},
		{"name": "Cookie", "value": "session=0123456789abcdef"},
		{"name": "Webhook-Secret", "value": "whk_0123456789abcdef"},
		{"name": "X-Password", "value": "pw"},
		{"name": "x-tenant", "value": "acme-corporation"},
	}
	want := []struct{ Name, Value string }{
		{"X-Api-Key", "****cdef"},
		{"X-Auth-Token", "****cdef"},
		{"X-Client-Secret", "****cdef"},
		{"Cookie", "****cdef"},
		{"Webhook-Secret", "****cdef"},
		{"X-Password", "****"},
		{"X-Tenant", "acme-corporation"},
	}
	r := c.Do(createEndpointOp, map[string]any{"in": endpointInput(map[string]any{"url": "https://example.com/h", "headers": headers})})
	var out struct{ CreateEndpoint struct{ Endpoint endpoint } }
	r.Decode(t, &out)
	ep := getEndpoint(t, c, out.CreateEndpoint.Endpoint.ID)
	if len(ep.Headers) != len(want) {
		t.Fatalf("headers = %+v, want %+v", ep.Headers, want)
	}
	for i, h := range ep.Headers {
		if h != want[i] {
			t.Errorf("headers[%d] = %+v, want %+v", i, h, want[i])
		}
	}
	wantNoSecret(t, "createEndpoint", r.Body, "0123456789abcdef")
}

func TestCreateEndpoint_RejectsInvalidInput(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)

	bearer := map[string]any{"type": "BEARER", "token": "tok_0123456789"}
	tests := []struct {
		name  string
		input map[string]any
		field string
	}{
		{"name too short", map[string]any{"name": "a"}, "input.name"},
		{"name blank", map[string]any{"name": "    "}, "input.name"},
		{"name too long", map[string]any{"name": strings.Repeat("n", 256)}, "input.name"},
		{"url empty", map[string]any{"url": ""}, "input.url"},
		{"url not absolute", map[string]any{"url": "example.com/hook"}, "input.url"},
		{"url path only", map[string]any{"url": "/hook"}, "input.url"},
		{"url ftp", map[string]any{"url": "ftp://example.com/hook"}, "input.url"},
		{"url with credentials", map[string]any{"url": "https://user:pw@example.com/hook"}, "input.url"},
		{"url with fragment", map[string]any{"url": "https://example.com/hook#x"}, "input.url"},
		{"url too long", map[string]any{"url": "https://example.com/" + strings.Repeat("a", 2100)}, "input.url"},
		{"no event types", map[string]any{"eventTypes": []string{}}, "input.eventTypes"},
		{"upper-case pattern", map[string]any{"eventTypes": []string{"Order.Created"}}, "input.eventTypes"},
		{"one segment", map[string]any{"eventTypes": []string{"order"}}, "input.eventTypes"},
		{"trailing dot", map[string]any{"eventTypes": []string{"order."}}, "input.eventTypes"},
		{"suffix wildcard", map[string]any{"eventTypes": []string{"*.created"}}, "input.eventTypes"},
		{"double star", map[string]any{"eventTypes": []string{"order.**"}}, "input.eventTypes"},
		{"empty pattern", map[string]any{"eventTypes": []string{"order.created", ""}}, "input.eventTypes"},
		{"unknown event type", map[string]any{"eventTypes": []string{"order.shipped"}}, "input.eventTypes"},
		{"bearer without token", map[string]any{"auth": map[string]any{"type": "BEARER"}}, "input.auth.token"},
		{"bearer blank token", map[string]any{"auth": map[string]any{"type": "BEARER", "token": "   "}}, "input.auth.token"},
		{"basic without username", map[string]any{"auth": map[string]any{"type": "BASIC", "password": "pw"}}, "input.auth.username"},
		{"basic without password", map[string]any{"auth": map[string]any{"type": "BASIC", "username": "ada"}}, "input.auth.password"},
		{"basic username with colon", map[string]any{"auth": map[string]any{"type": "BASIC", "username": "a:b", "password": "pw"}}, "input.auth.username"},
		{"api key without header name", map[string]any{"auth": map[string]any{"type": "API_KEY", "headerValue": "v"}}, "input.auth.headerName"},
		{"api key without header value", map[string]any{"auth": map[string]any{"type": "API_KEY", "headerName": "X-Key"}}, "input.auth.headerValue"},
		{"api key in reserved header", map[string]any{"auth": map[string]any{"type": "API_KEY", "headerName": "Content-Type", "headerValue": "v"}}, "input.auth.headerName"},
		{"hmac without secret", map[string]any{"auth": map[string]any{"type": "HMAC"}}, "input.auth.secret"},
		{"hmac short secret", map[string]any{"auth": map[string]any{"type": "HMAC", "secret": "too-short"}}, "input.auth.secret"},
		{"signature without secret", map[string]any{"auth": map[string]any{"type": "SIGNATURE", "headerName": "X-Sig"}}, "input.auth.secret"},
		{"reserved header webhook-signature", map[string]any{"headers": []map[string]any{{"name": "webhook-signature", "value": "v1,x"}}}, "input.headers[0].name"},
		{"reserved header content-type", map[string]any{"headers": []map[string]any{{"name": "Content-Type", "value": "text/plain"}}}, "input.headers[0].name"},
		{"reserved header x-herald", map[string]any{"headers": []map[string]any{{"name": "X-Tenant", "value": "a"}, {"name": "X-Herald-Attempt", "value": "1"}}}, "input.headers[1].name"},
		{"invalid header name", map[string]any{"headers": []map[string]any{{"name": "X Tenant", "value": "a"}}}, "input.headers[0].name"},
		{"header value with line break", map[string]any{"headers": []map[string]any{{"name": "X-Tenant", "value": "a\r\nX-Evil: 1"}}}, "input.headers[0].value"},
		{"duplicate header", map[string]any{"headers": []map[string]any{{"name": "X-Tenant", "value": "a"}, {"name": "x-tenant", "value": "b"}}}, "input.headers[1].name"},
		{"header colliding with bearer auth", map[string]any{"auth": bearer, "headers": []map[string]any{{"name": "authorization", "value": "x"}}}, "input.headers[0].name"},
		{"header colliding with api key auth", map[string]any{
			"auth":    map[string]any{"type": "API_KEY", "headerName": "X-Api-Key", "headerValue": "v"},
			"headers": []map[string]any{{"name": "x-api-key", "value": "x"}}}, "input.headers[0].name"},
		{"header colliding with hmac default header", map[string]any{
			"auth":    map[string]any{"type": "HMAC", "secret": "0123456789abcdef"},
			"headers": []map[string]any{{"name": "X-Signature-256", "value": "x"}}}, "input.headers[0].name"},
		{"max attempts 0", map[string]any{"retryPolicy": map[string]any{"maxAttempts": 0}}, "input.retryPolicy.maxAttempts"},
		{"max attempts 51", map[string]any{"retryPolicy": map[string]any{"maxAttempts": 51}}, "input.retryPolicy.maxAttempts"},
		{"max delay below initial delay", map[string]any{"retryPolicy": map[string]any{"initialDelay": "1m", "maxDelay": "30s"}}, "input.retryPolicy.maxDelay"},
		{"max delay over a week", map[string]any{"retryPolicy": map[string]any{"maxDelay": "169h"}}, "input.retryPolicy.maxDelay"},
		{"negative initial delay", map[string]any{"retryPolicy": map[string]any{"initialDelay": "-1s"}}, "input.retryPolicy.initialDelay"},
		{"backoff below 1", map[string]any{"retryPolicy": map[string]any{"backoffMultiplier": 0.5}}, "input.retryPolicy.backoffMultiplier"},
		{"backoff over 100", map[string]any{"retryPolicy": map[string]any{"backoffMultiplier": 101}}, "input.retryPolicy.backoffMultiplier"},
		{"timeout 50ms", map[string]any{"timeout": "50ms"}, "input.timeout"},
		{"timeout 31s", map[string]any{"timeout": "31s"}, "input.timeout"},
		{"timeout not a duration", map[string]any{"timeout": "5 parsecs"}, "input.timeout"},
		{"initial delay not a duration", map[string]any{"retryPolicy": map[string]any{"initialDelay": "soon"}}, "input.retryPolicy.initialDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := s.As(t, s.Token)
			in := endpointInput(map[string]any{"url": "https://example.com/hook"})
			for k, v := range tt.input {
				in[k] = v
			}
			r := c.Do(createEndpointOp, map[string]any{"in": in})
			r.WantFault(t, "BAD_USER_INPUT", tt.field)
			if string(r.Data) != "null" {
				t.Errorf("data = %s, want null", r.Data)
			}
		})
	}
	t.Cleanup(func() {
		var out struct{ Endpoints struct{ TotalCount int } }
		s.Do(s.Token, `{ endpoints { totalCount } }`, nil).Decode(t, &out)
		if out.Endpoints.TotalCount != 0 {
			t.Errorf("%d endpoints were created by invalid inputs", out.Endpoints.TotalCount)
		}
	})
}

func TestCreateEndpoint_RejectsPrivateURLWithoutAllowList(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.AllowHTTP = false; c.AllowPrivateDestinations = false })

	for _, url := range []string{
		"http://example.com/hook",
		"https://127.0.0.1/hook",
		"https://127.0.0.1:8443/hook",
		"https://169.254.169.254/latest/meta-data/",
		"https://localhost/hook",
		"https://api.localhost/hook",
		"https://10.1.2.3/hook",
		"https://192.168.0.10/hook",
		"https://[::1]/hook",
		"https://2130706433/hook",
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			c := s.As(t, s.Token)
			c.Do(createEndpointOp, map[string]any{"in": endpointInput(map[string]any{"url": url})}).WantFault(t, "BAD_USER_INPUT", "input.url")

			// Moving an existing endpoint there is refused too.
			ep, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/" + base64.RawURLEncoding.EncodeToString([]byte(url))})
			c.Do(updateEndpointOp, map[string]any{"id": ep.ID, "in": map[string]any{"url": url}}).WantFault(t, "BAD_USER_INPUT", "input.url")
			if got := getEndpoint(t, c, ep.ID); got.URL != ep.URL {
				t.Errorf("url after the refused update = %q, want %q", got.URL, ep.URL)
			}
		})
	}
}

func TestCreateEndpoint_RejectsDuplicateURLWithOverlappingTypes(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)

	tests := []struct {
		name          string
		first, second []string
		conflict      bool
	}{
		{"same exact type", []string{"order.created"}, []string{"order.created"}, true},
		{"wildcard covers type", []string{"*"}, []string{"contact.created"}, true},
		{"type under wildcard", []string{"order.created"}, []string{"*"}, true},
		{"prefix covers type", []string{"order.*"}, []string{"order.paid"}, true},
		{"nested prefixes", []string{"subscription.*"}, []string{"subscription.*", "email.sent"}, true},
		{"one of several", []string{"order.paid", "email.sent"}, []string{"contact.created", "email.sent"}, true},
		{"disjoint types", []string{"order.created"}, []string{"order.paid"}, false},
		{"disjoint prefixes", []string{"order.*"}, []string{"contact.*"}, false},
		{"prefix is not a string prefix", []string{"course.*"}, []string{"course_x.*"}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := s.As(t, s.Token)
			url := "https://example.com/dup/" + string(rune('a'+i))
			first, _ := createEndpoint(t, c, map[string]any{"url": url, "eventTypes": tt.first})
			in := endpointInput(map[string]any{"url": url, "eventTypes": tt.second, "name": "second"})
			r := c.Do(createEndpointOp, map[string]any{"in": in})
			if !tt.conflict {
				r.Decode(t, nil)
				return
			}
			r.WantError(t, "CONFLICT")
			if r.Reason() != "WEBHOOK_EXISTS" {
				t.Errorf("reason = %q, want WEBHOOK_EXISTS: %s", r.Reason(), r.Body)
			}
			if !strings.Contains(r.Errors[0].Message, first.ID) {
				t.Errorf("message %q does not name the existing endpoint %s", r.Errors[0].Message, first.ID)
			}
			// The same URL written with a different host case is the same URL.
			in["url"] = strings.Replace(url, "example.com", "Example.COM", 1)
			c.Do(createEndpointOp, map[string]any{"in": in}).WantError(t, "CONFLICT")

			in["allowDuplicate"] = true
			c.Do(createEndpointOp, map[string]any{"in": in}).Decode(t, nil)
		})
	}
}

func TestCreateEndpoint_AllowsURLOfDeletedEndpoint(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	ep, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/hook"})
	c.Must(nil, `mutation($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`, map[string]any{"id": ep.ID})
	createEndpoint(t, c, map[string]any{"url": "https://example.com/hook"})
}

func TestUpdateEndpoint_RejectsDuplicateURLWithOverlappingTypes(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	a, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/a", "eventTypes": []string{"order.*"}})
	b, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/b", "eventTypes": []string{"order.created"}})
	d, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/a", "eventTypes": []string{"contact.*"}})

	r := c.Do(updateEndpointOp, map[string]any{"id": b.ID, "in": map[string]any{"url": "https://example.com/a"}})
	r.WantError(t, "CONFLICT")
	if r.Reason() != "WEBHOOK_EXISTS" || !strings.Contains(r.Errors[0].Message, a.ID) {
		t.Errorf("moving b onto a's URL: reason %q, message %q; want WEBHOOK_EXISTS naming %s", r.Reason(), r.Errors[0].Message, a.ID)
	}
	if got := getEndpoint(t, c, b.ID); got.URL != "https://example.com/b" {
		t.Errorf("b's URL after the refused update = %q", got.URL)
	}

	// Widening d's types at a's URL overlaps a.
	r = c.Do(updateEndpointOp, map[string]any{"id": d.ID, "in": map[string]any{"eventTypes": []string{"contact.*", "order.paid"}}})
	r.WantError(t, "CONFLICT")
	if r.Reason() != "WEBHOOK_EXISTS" {
		t.Errorf("reason = %q, want WEBHOOK_EXISTS", r.Reason())
	}

	// An endpoint does not conflict with itself.
	updateEndpoint(t, c, a.ID, map[string]any{"url": "https://example.com/a", "eventTypes": []string{"order.*", "email.*"}})

	// allowDuplicate lets it through; later changes that leave URL and
	// types alone do not trip over the accepted duplicate.
	got := updateEndpoint(t, c, b.ID, map[string]any{"url": "https://example.com/a", "allowDuplicate": true})
	if got.URL != "https://example.com/a" {
		t.Errorf("url = %q after an allowed duplicate update", got.URL)
	}
	updateEndpoint(t, c, b.ID, map[string]any{"name": "renamed"})
}

func TestUpdateEndpoint_ChangesOnlyGivenFields(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	before, _ := createEndpoint(t, c, map[string]any{
		"name": "Orders", "description": "all orders", "url": "https://example.com/orders",
		"eventTypes":  []string{"order.*"},
		"auth":        map[string]any{"type": "BASIC", "username": "ada", "password": "correct-horse-battery"},
		"headers":     []map[string]any{{"name": "X-Tenant", "value": "acme"}},
		"retryPolicy": map[string]any{"maxAttempts": 3, "initialDelay": "1s", "backoffMultiplier": 2, "maxDelay": "1m"},
		"timeout":     "2s",
	})

	after := updateEndpoint(t, c, before.ID, map[string]any{"name": "Orders v2"})
	if after.Name != "Orders v2" {
		t.Errorf("name = %q, want Orders v2", after.Name)
	}
	after.Name = before.Name
	if diff := diffEndpoints(before, after); diff != "" {
		t.Errorf("updating the name changed other fields: %s", diff)
	}

	// A partial retry policy keeps the fields it omits.
	after = updateEndpoint(t, c, before.ID, map[string]any{"retryPolicy": map[string]any{"maxAttempts": 5}})
	if rp := after.RetryPolicy; rp.MaxAttempts != 5 || rp.InitialDelay != "1s" || rp.BackoffMultiplier != 2 || rp.MaxDelay != "1m" {
		t.Errorf("retryPolicy after setting maxAttempts = %+v", rp)
	}

	// headers replace; auth replaces.
	after = updateEndpoint(t, c, before.ID, map[string]any{
		"headers": []map[string]any{},
		"auth":    map[string]any{"type": "NONE"},
	})
	if len(after.Headers) != 0 || after.Auth.Type != "NONE" || after.Auth.Username != nil || after.Auth.Password != nil {
		t.Errorf("headers %+v, auth %+v; want none", after.Headers, after.Auth)
	}
	if after.Timeout != "2s" || after.Description != "all orders" {
		t.Errorf("timeout %q, description %q changed", after.Timeout, after.Description)
	}

	// A refused update changes nothing.
	c.Do(updateEndpointOp, map[string]any{"id": before.ID, "in": map[string]any{"name": "ok name", "timeout": "1h"}}).WantFault(t, "BAD_USER_INPUT", "input.timeout")
	if got := getEndpoint(t, c, before.ID); got.Name != "Orders v2" {
		t.Errorf("name = %q after a refused update", got.Name)
	}
}

// diffEndpoints describes the differences between two endpoints, ignoring
// fields that change by themselves.
func diffEndpoints(a, b endpoint) string {
	var d []string
	add := func(name string, x, y any) { d = append(d, name+": "+toJSON(x)+" → "+toJSON(y)) }
	if a.Name != b.Name {
		add("name", a.Name, b.Name)
	}
	if a.Description != b.Description {
		add("description", a.Description, b.Description)
	}
	if a.URL != b.URL {
		add("url", a.URL, b.URL)
	}
	if !slices.Equal(a.EventTypes, b.EventTypes) {
		add("eventTypes", a.EventTypes, b.EventTypes)
	}
	if a.IsActive != b.IsActive {
		add("isActive", a.IsActive, b.IsActive)
	}
	if a.Timeout != b.Timeout {
		add("timeout", a.Timeout, b.Timeout)
	}
	if a.RetryPolicy != b.RetryPolicy {
		add("retryPolicy", a.RetryPolicy, b.RetryPolicy)
	}
	if toJSON(a.Auth) != toJSON(b.Auth) {
		add("auth", a.Auth, b.Auth)
	}
	if toJSON(a.Headers) != toJSON(b.Headers) {
		add("headers", a.Headers, b.Headers)
	}
	return strings.Join(d, "; ")
}

func TestUpdateEndpoint_KeepsSecretWhenURLAndTypesChange(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	old := heraldtest.NewReceiver(t, nil)
	moved := heraldtest.NewReceiver(t, nil)

	ep, secret := createEndpoint(t, c, map[string]any{"url": old.Hook("/hook"), "eventTypes": []string{"order.created"}})
	got := updateEndpoint(t, c, ep.ID, map[string]any{"url": moved.Hook("/moved"), "eventTypes": []string{"contact.created"}})
	if got.URL != moved.Hook("/moved") || !slices.Equal(got.EventTypes, []string{"contact.created"}) {
		t.Fatalf("after update: url %q, eventTypes %q", got.URL, got.EventTypes)
	}

	publish(t, c, "order.created", map[string]any{"orderId": "ord_1"})
	publish(t, c, "contact.created", map[string]any{"contactId": "con_1"})
	req := moved.WaitRequests(t, 1, 10*time.Second)[0]
	if req.Path != "/moved" {
		t.Errorf("request path = %q", req.Path)
	}
	if err := signing.Verify(secret, req.Header, req.Body, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("delivery after changing URL and types does not verify with the original secret: %v", err)
	}
	if !strings.Contains(string(req.Body), `"type":"contact.created"`) {
		t.Errorf("moved endpoint got %s, want the contact.created event", req.Body)
	}
	if n := len(old.Requests()); n != 0 {
		t.Errorf("old URL got %d requests after the move", n)
	}
}

func TestUpdateEndpoint_DeactivatingStopsDeliveries(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)

	ep, _ := createEndpoint(t, c, map[string]any{"url": rc.Hook("/hook")})
	got := updateEndpoint(t, c, ep.ID, map[string]any{"isActive": false})
	if got.IsActive || got.DisabledReason == nil || got.DisabledAt == nil || got.Health != "ATTENTION" {
		t.Fatalf("after isActive false: isActive %v, disabledReason %v, disabledAt %v, health %s",
			got.IsActive, got.DisabledReason, got.DisabledAt, got.Health)
	}
	var out struct{ PublishEvent struct{ DeliveryCount int } }
	c.Must(&out, `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { deliveryCount } }`, nil)
	if out.PublishEvent.DeliveryCount != 0 {
		t.Errorf("disabled endpoint got %d deliveries", out.PublishEvent.DeliveryCount)
	}

	got = updateEndpoint(t, c, ep.ID, map[string]any{"isActive": true})
	if !got.IsActive || got.DisabledReason != nil || got.DisabledAt != nil {
		t.Errorf("after isActive true: isActive %v, disabledReason %v, disabledAt %v", got.IsActive, got.DisabledReason, got.DisabledAt)
	}
	c.Must(&out, `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { deliveryCount } }`, nil)
	if out.PublishEvent.DeliveryCount != 1 {
		t.Errorf("re-enabled endpoint got %d deliveries, want 1", out.PublishEvent.DeliveryCount)
	}
}

func TestUpdateEndpoint_ReenablingResetsConsecutiveFailures(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.DisableAfter = 2 })
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })

	ep, _ := createEndpoint(t, c, map[string]any{"url": rc.Hook("/hook"), "eventTypes": []string{"order.*"}})
	publish(t, c, "order.created", map[string]any{})
	publish(t, c, "order.paid", map[string]any{})
	var got endpoint
	if !heraldtest.Eventually(10*time.Second, func() bool { got = getEndpoint(t, c, ep.ID); return !got.IsActive }) {
		t.Fatalf("endpoint was not disabled after failing deliveries: %+v", got)
	}
	if got.ConsecutiveFailures < 2 || got.DisabledReason == nil {
		t.Fatalf("disabled endpoint: consecutiveFailures %d, disabledReason %v", got.ConsecutiveFailures, got.DisabledReason)
	}

	got = updateEndpoint(t, c, ep.ID, map[string]any{"isActive": true})
	if !got.IsActive || got.ConsecutiveFailures != 0 || got.DisabledReason != nil || got.DisabledAt != nil {
		t.Errorf("re-enabled: isActive %v, consecutiveFailures %d, disabledReason %v, disabledAt %v",
			got.IsActive, got.ConsecutiveFailures, got.DisabledReason, got.DisabledAt)
	}
}

func TestEndpointMutations_UnknownIDIsNotFound(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)

	ops := map[string]string{
		"updateEndpoint":       `mutation($id: ID!) { updateEndpoint(id: $id, input: {name: "x2"}) { id } }`,
		"deleteEndpoint":       `mutation($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`,
		"rotateEndpointSecret": `mutation($id: ID!) { rotateEndpointSecret(id: $id) { secret } }`,
		"testEndpoint":         `mutation($id: ID!) { testEndpoint(id: $id) { delivered } }`,
		"replayDeliveries":     `mutation($id: ID!) { replayDeliveries(endpointId: $id, since: "2020-01-01T00:00:00Z") { count } }`,
	}
	for name, op := range ops {
		for _, id := range []string{"ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8", "nonsense", "evt_01JDZ6Q4W8X3M5N7P9R2T4V6X8", ""} {
			t.Run(name+"/"+id, func(t *testing.T) {
				t.Parallel()
				s.As(t, s.Token).Do(op, map[string]any{"id": id}).WantError(t, "NOT_FOUND")
			})
		}
	}
}

func TestDeleteEndpoint_SoftDeletesAndKeepsLogs(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)

	ep, _ := createEndpoint(t, c, map[string]any{"name": "Doomed", "url": rc.Hook("/hook")})
	evID := publish(t, c, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })

	var del struct{ DeleteEndpoint struct{ DeletedID string } }
	c.Must(&del, `mutation($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`, map[string]any{"id": ep.ID})
	if del.DeleteEndpoint.DeletedID != ep.ID {
		t.Errorf("deletedId = %q, want %q", del.DeleteEndpoint.DeletedID, ep.ID)
	}

	var list struct{ Endpoints connection }
	c.Must(&list, `{ endpoints { `+connectionFields+` } }`, nil)
	if list.Endpoints.TotalCount != 0 || len(list.Endpoints.Edges) != 0 {
		t.Errorf("endpoints after delete: %+v", list.Endpoints)
	}
	r := c.Do(`query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": ep.ID})
	r.WantError(t, "NOT_FOUND")
	other, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/other", "isActive": false})
	r = c.Do(`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{other.ID, ep.ID}})
	if want := `{"nodes":[{"id":"` + other.ID + `"},null]}`; string(r.Data) != want {
		t.Errorf("nodes([live, deleted]) = %s, want %s", r.Body, want)
	}
	r.WantError(t, "NOT_FOUND")
	for name, op := range map[string]string{
		"updateEndpoint":       `mutation($id: ID!) { updateEndpoint(id: $id, input: {name: "back"}) { id } }`,
		"deleteEndpoint":       `mutation($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`,
		"rotateEndpointSecret": `mutation($id: ID!) { rotateEndpointSecret(id: $id) { secret } }`,
		"testEndpoint":         `mutation($id: ID!) { testEndpoint(id: $id) { delivered } }`,
	} {
		if r := c.Do(op, map[string]any{"id": ep.ID}); r.Code() != "NOT_FOUND" {
			t.Errorf("%s of a deleted endpoint: want NOT_FOUND, got %s", name, r.Body)
		}
	}

	// The delivery stays, and still names its endpoint.
	var logs struct {
		Node struct {
			Status     string
			EndpointID string
			Endpoint   struct {
				ID, Name  string
				DeletedAt *time.Time
				IsActive  bool
			}
		}
	}
	c.Must(&logs, `query($id: ID!) { node(id: $id) { ... on Delivery { status endpointID endpoint { id name deletedAt isActive } } } }`, map[string]any{"id": d.ID})
	if e := logs.Node.Endpoint; e.ID != ep.ID || e.Name != "Doomed" || e.DeletedAt == nil || e.IsActive || logs.Node.Status != "SUCCEEDED" {
		t.Errorf("delivery of the deleted endpoint: %+v", logs.Node)
	}
	var all struct{ Deliveries connection }
	c.Must(&all, `{ deliveries { `+connectionFields+` } }`, nil)
	if all.Deliveries.TotalCount != 1 {
		t.Errorf("deliveries after delete: %d, want 1", all.Deliveries.TotalCount)
	}

	// Nothing more is sent to it.
	var pub struct{ PublishEvent struct{ DeliveryCount int } }
	c.Must(&pub, `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { deliveryCount } }`, nil)
	if pub.PublishEvent.DeliveryCount != 0 {
		t.Errorf("deleted endpoint got %d deliveries", pub.PublishEvent.DeliveryCount)
	}
}

func TestDeleteEndpoint_CancelsQueuedDeliveries(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })

	ep, _ := createEndpoint(t, c, map[string]any{"url": rc.Hook("/hook"), "retryPolicy": map[string]any{"initialDelay": "1h", "maxDelay": "2h"}})
	evID := publish(t, c, "order.created", map[string]any{})
	s.WaitDelivery(s.Token, evID, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "RETRYING" })

	c.Must(nil, `mutation($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`, map[string]any{"id": ep.ID})
	d := s.Deliveries(s.Token, evID)[0]
	if d.Status != "FAILED" || d.LastError == nil || !strings.Contains(*d.LastError, "deleted") || d.NextAttemptAt != nil {
		t.Errorf("queued delivery after delete: status %s, lastError %v, nextAttemptAt %v; want FAILED for the deletion", d.Status, deref(d.LastError), d.NextAttemptAt)
	}
	c.Do(`mutation($id: ID!) { retryDelivery(id: $id) { id } }`, map[string]any{"id": d.ID}).WantError(t, "CONFLICT")
}

func TestRotateEndpointSecret_ReplacesSecretWithOverlap(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)

	ep, oldSecret := createEndpoint(t, c, map[string]any{"url": rc.Hook("/hook")})
	const rotate = `mutation($id: ID!, $in: RotateEndpointSecretInput) {
		rotateEndpointSecret(id: $id, input: $in) { secret endpoint { id previousSecretExpiresAt } } }`
	type rotated struct {
		RotateEndpointSecret struct {
			Secret   string
			Endpoint endpoint
		}
	}

	var out rotated
	before := time.Now()
	c.Must(&out, rotate, map[string]any{"id": ep.ID})
	newSecret := out.RotateEndpointSecret.Secret
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("new secret %q (old %q): want a different whsec_ secret", newSecret, oldSecret)
	}
	exp := out.RotateEndpointSecret.Endpoint.PreviousSecretExpiresAt
	if exp == nil || exp.Before(before.Add(24*time.Hour-time.Minute)) || exp.After(time.Now().Add(24*time.Hour+time.Minute)) {
		t.Errorf("previousSecretExpiresAt = %v, want about now+24h", exp)
	}

	// During the overlap deliveries verify with either secret.
	var test struct{ TestEndpoint struct{ Delivered bool } }
	c.Must(&test, `mutation($id: ID!) { testEndpoint(id: $id) { delivered } }`, map[string]any{"id": ep.ID})
	req := rc.WaitRequests(t, 1, 5*time.Second)[0]
	for name, sec := range map[string]string{"old": oldSecret, "new": newSecret} {
		if err := signing.Verify(sec, req.Header, req.Body, 5*time.Minute, time.Now()); err != nil {
			t.Errorf("delivery during the overlap does not verify with the %s secret: %v", name, err)
		}
	}

	// Overlap 0s ends the old secret at once.
	c.Must(&out, rotate, map[string]any{"id": ep.ID, "in": map[string]any{"overlap": "0s"}})
	third := out.RotateEndpointSecret.Secret
	if out.RotateEndpointSecret.Endpoint.PreviousSecretExpiresAt != nil {
		t.Errorf("previousSecretExpiresAt = %v after overlap 0s, want null", out.RotateEndpointSecret.Endpoint.PreviousSecretExpiresAt)
	}
	c.Must(&test, `mutation($id: ID!) { testEndpoint(id: $id) { delivered } }`, map[string]any{"id": ep.ID})
	req = rc.WaitRequests(t, 2, 5*time.Second)[1]
	if err := signing.Verify(third, req.Header, req.Body, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("delivery does not verify with the current secret: %v", err)
	}
	if err := signing.Verify(newSecret, req.Header, req.Body, 5*time.Minute, time.Now()); err == nil {
		t.Errorf("delivery after a 0s-overlap rotation still verifies with the replaced secret")
	}

	// Out-of-range overlaps are refused and change nothing.
	for _, overlap := range []string{"200h", "-1s"} {
		c.Do(rotate, map[string]any{"id": ep.ID, "in": map[string]any{"overlap": overlap}}).WantFault(t, "BAD_USER_INPUT", "input.overlap")
	}
	c.Do(rotate, map[string]any{"id": ep.ID, "in": map[string]any{"overlap": "a day"}}).WantFault(t, "BAD_USER_INPUT", "input.overlap")
	c.Must(&test, `mutation($id: ID!) { testEndpoint(id: $id) { delivered } }`, map[string]any{"id": ep.ID})
	req = rc.WaitRequests(t, 3, 5*time.Second)[2]
	if err := signing.Verify(third, req.Header, req.Body, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("a refused rotation changed the secret: %v", err)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func TestNodes_MissingIDIsNullEntry(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	r := c.Do(`{ nodes(ids: ["ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8"]) { id } }`, nil)
	if string(r.Data) != `{"nodes":[null]}` {
		t.Errorf("nodes([unknown]) = %s, want data {\"nodes\":[null]}", r.Body)
	}
	r.WantError(t, "NOT_FOUND")
}

func TestCreateEndpoint_AcceptsNamesOf255Characters(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	for i, name := range []string{strings.Repeat("n", 255), strings.Repeat("é", 200), strings.Repeat("日", 255)} {
		ep, _ := createEndpoint(t, c, map[string]any{"name": name, "url": "https://example.com/" + string(rune('a'+i))})
		if ep.Name != name {
			t.Errorf("name = %q, want %q", ep.Name, name)
		}
	}
}

func TestUpdateEndpoint_MaskedValuesSentBackKeepTheCredentials(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)
	ep, _ := createEndpoint(t, c, map[string]any{
		"url":     rc.URL,
		"auth":    map[string]any{"type": "BEARER", "token": "tok_live_abcdefghijkl"},
		"headers": []map[string]string{{"name": "X-Api-Key", "value": "key-0123456789"}, {"name": "X-Tenant", "value": "acme"}},
	})
	// A client reads the endpoint and sends everything back as it got it,
	// masks included, changing only the name.
	headers := make([]map[string]string, len(ep.Headers))
	for i, h := range ep.Headers {
		headers[i] = map[string]string{"name": h.Name, "value": h.Value}
	}
	if *ep.Auth.Token == "tok_live_abcdefghijkl" || headers[0]["value"] == "key-0123456789" {
		t.Fatalf("credentials not masked in the read: %+v", ep)
	}
	updateEndpoint(t, c, ep.ID, map[string]any{
		"name":    "renamed",
		"auth":    map[string]any{"type": "BEARER", "token": *ep.Auth.Token},
		"headers": headers,
	})
	s.Publish(s.Token, "order.created", map[string]any{})
	req := rc.WaitRequests(t, 1, 5*time.Second)[0]
	if got := req.Header.Get("Authorization"); got != "Bearer tok_live_abcdefghijkl" {
		t.Errorf("Authorization after the round trip = %q, want the original token", got)
	}
	if got := req.Header.Get("X-Api-Key"); got != "key-0123456789" {
		t.Errorf("X-Api-Key after the round trip = %q, want the original value", got)
	}
	// A new value does replace the old one.
	updateEndpoint(t, c, ep.ID, map[string]any{"auth": map[string]any{"type": "BEARER", "token": "tok_live_newnewnewnew"}})
	s.Publish(s.Token, "order.created", map[string]any{})
	if got := rc.WaitRequests(t, 2, 5*time.Second)[1].Header.Get("Authorization"); got != "Bearer tok_live_newnewnewnew" {
		t.Errorf("Authorization after a real change = %q", got)
	}
}
