package graph_test

// The API the web app needs besides the generated queries: every invalid
// field of an endpoint form in one answer, revealing a secret again,
// retrying a selection of deliveries, finding the app of an ID, and each
// app's figures at a glance for the operator's list of apps.

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// fields returns the extensions.field of every error, sorted.
func fields(r *heraldtest.Response) []string {
	var out []string
	for _, e := range r.Errors {
		f, _ := e.Extensions["field"].(string)
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

func TestCreateEndpoint_ReportsEveryInvalidFieldAtOnce(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	r := c.Do(createEndpointOp, map[string]any{"in": map[string]any{
		"name":        "x",
		"url":         "ftp://example.com/hook",
		"eventTypes":  []string{"Order"},
		"timeout":     "31s",
		"retryPolicy": map[string]any{"maxAttempts": 0},
		"headers":     []map[string]any{{"name": "Content-Type", "value": "text/plain"}},
		"filter":      map[string]any{"data.total": map[string]any{"$gtx": 1}},
		"rateLimit":   map[string]any{"requests": 0, "per": "1s"},
	}})
	want := []string{"input.eventTypes", "input.filter.data.total.$gtx", "input.headers[0].name", "input.name",
		"input.rateLimit.requests", "input.retryPolicy.maxAttempts", "input.timeout", "input.url"}
	if got := fields(r); !slices.Equal(got, want) {
		t.Errorf("error fields = %q, want %q\n%s", got, want, r.Body)
	}
	for _, e := range r.Errors {
		if e.Extensions["code"] != "BAD_USER_INPUT" || len(e.Path) == 0 {
			t.Errorf("error %+v: want BAD_USER_INPUT on the mutation's path", e)
		}
	}
	if string(r.Data) != "null" {
		t.Errorf("data = %s, want null", r.Data)
	}

	// Missing fields are each reported once, with what is there.
	r = c.Do(`mutation { createEndpoint(input: {name: "", url: "", eventTypes: []}) { secret } }`, nil)
	if got := fields(r); !slices.Equal(got, []string{"input.eventTypes", "input.name", "input.url"}) {
		t.Errorf("error fields of an empty form = %q\n%s", got, r.Body)
	}

	// A single invalid field is still one error.
	r = c.Do(createEndpointOp, map[string]any{"in": endpointInput(map[string]any{"url": "https://example.com/hook", "timeout": "31s"})})
	r.WantFault(t, "BAD_USER_INPUT", "input.timeout")
	if len(r.Errors) != 1 {
		t.Errorf("%d errors for one invalid field: %s", len(r.Errors), r.Body)
	}
}

func TestUpdateEndpoint_ReportsEveryInvalidFieldAtOnce(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	ep, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/hook"})

	r := c.Do(updateEndpointOp, map[string]any{"id": ep.ID, "in": map[string]any{
		"name": "x", "url": "not a url", "auth": map[string]any{"type": "BEARER"},
	}})
	if got := fields(r); !slices.Equal(got, []string{"input.auth.token", "input.name", "input.url"}) {
		t.Errorf("error fields = %q\n%s", got, r.Body)
	}
	if got := getEndpoint(t, c, ep.ID); got.Name != "hook" || got.URL != "https://example.com/hook" {
		t.Errorf("endpoint changed by an invalid update: %+v", got)
	}
}

func TestRevealEndpointSecret_ShowsTheCurrentSecretToThoseWhoManageIt(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	ep, secret := createEndpoint(t, c, map[string]any{"url": "https://example.com/hook"})
	const reveal = `mutation($id: ID!) { revealEndpointSecret(id: $id) { secret endpoint { id } } }`

	var out struct {
		RevealEndpointSecret struct {
			Secret   string
			Endpoint struct{ ID string }
		}
	}
	c.Must(&out, reveal, map[string]any{"id": ep.ID})
	if out.RevealEndpointSecret.Secret != secret || out.RevealEndpointSecret.Endpoint.ID != ep.ID {
		t.Errorf("revealed %+v, want the secret created with the endpoint", out.RevealEndpointSecret)
	}

	// After a rotation it is the new one.
	var rot struct{ RotateEndpointSecret struct{ Secret string } }
	c.Must(&rot, `mutation($id: ID!) { rotateEndpointSecret(id: $id) { secret } }`, map[string]any{"id": ep.ID})
	c.Must(&out, reveal, map[string]any{"id": ep.ID})
	if out.RevealEndpointSecret.Secret != rot.RotateEndpointSecret.Secret || out.RevealEndpointSecret.Secret == secret {
		t.Errorf("after rotating, revealed %q, want the new %q", out.RevealEndpointSecret.Secret, rot.RotateEndpointSecret.Secret)
	}

	// Reading endpoints is not enough; another app's endpoint is not found.
	var key struct{ CreateAPIKey struct{ Token string } }
	c.Must(&key, `mutation { createAPIKey(input: {name: "reader", scopes: [ENDPOINTS_READ]}) { token } }`, nil)
	r := s.As(t, key.CreateAPIKey.Token).Do(reveal, map[string]any{"id": ep.ID})
	r.WantError(t, "FORBIDDEN")
	wantNoSecret(t, "a reader's reveal", r.Body, strings.TrimPrefix(out.RevealEndpointSecret.Secret, "whsec_"))
	_, other := s.NewApp("other")
	r = s.As(t, other).Do(reveal, map[string]any{"id": ep.ID})
	r.WantError(t, "NOT_FOUND")
	wantNoSecret(t, "another app's reveal", r.Body, strings.TrimPrefix(out.RevealEndpointSecret.Secret, "whsec_"))
}

func TestRetryDeliveries_RetriesEachAndSaysWhyNotForTheRest(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	var status atomic.Int32
	status.Store(http.StatusBadRequest) // permanent: FAILED at once
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) })
	createEndpoint(t, c, map[string]any{"url": rc.Hook("/hook")})
	var failed, events []string
	for i := range 3 {
		ev := publish(t, c, "order.created", map[string]any{"i": i})
		events = append(events, ev)
		failed = append(failed, s.WaitDelivery(s.Token, ev, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" }).ID)
	}
	status.Store(http.StatusOK)

	const retry = `mutation($ids: [ID!]!) { retryDeliveries(ids: $ids) { count deliveries { id } notRetried { id code message } } }`
	var out struct {
		RetryDeliveries struct {
			Count      int
			Deliveries []struct{ ID string }
			NotRetried []struct{ ID, Code, Message string }
		}
	}
	unknown := "dlv_00000000000000000000000000"
	c.Must(&out, retry, map[string]any{"ids": []string{failed[0], unknown, failed[1], failed[0]}})
	got := out.RetryDeliveries
	if got.Count != 2 || len(got.Deliveries) != 2 || got.Deliveries[0].ID != failed[0] || got.Deliveries[1].ID != failed[1] {
		t.Errorf("retried %+v, want the two failed deliveries named, once each", got)
	}
	if len(got.NotRetried) != 1 || got.NotRetried[0].ID != unknown || got.NotRetried[0].Code != "NOT_FOUND" || got.NotRetried[0].Message == "" {
		t.Errorf("not retried %+v, want the unknown ID as NOT_FOUND", got.NotRetried)
	}
	for _, ev := range events[:2] {
		d := s.WaitDelivery(s.Token, ev, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
		if d.AttemptCount != 2 {
			t.Errorf("delivery %s succeeded after %d attempts, want 2", d.ID, d.AttemptCount)
		}
	}
	if n := len(rc.Requests()); n != 5 {
		t.Errorf("receiver got %d requests, want 3 first attempts and 2 retries", n)
	}

	c.Do(retry, map[string]any{"ids": []string{}}).WantFault(t, "BAD_USER_INPUT", "ids")
	many := make([]string, 101)
	for i := range many {
		many[i] = unknown
	}
	c.Do(retry, map[string]any{"ids": many}).WantFault(t, "BAD_USER_INPUT", "ids")

	// Another app's delivery is simply not found, and not retried.
	_, other := s.NewApp("other")
	var theirs struct{ RetryDeliveries struct{ Count int } }
	s.As(t, other).Must(&theirs, retry, map[string]any{"ids": []string{failed[2]}})
	if theirs.RetryDeliveries.Count != 0 {
		t.Errorf("another app's key retried %d deliveries", theirs.RetryDeliveries.Count)
	}
}

func TestLocate_FindsTheAppOfAnIDAcrossAppsForAdminKeys(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	appID, token := s.NewApp("Beta")
	rc := heraldtest.NewReceiver(t, nil)
	epID, _ := s.CreateEndpoint(token, map[string]any{"url": rc.Hook("/beta")})
	ev := s.Publish(token, "order.created", map[string]any{})
	d := s.WaitDelivery(token, ev, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })

	const locate = `query($id: ID!) { locate(id: $id) { id type app { id name } } }`
	for id, typ := range map[string]string{ev: "Event", d.ID: "Delivery", epID: "Endpoint"} {
		var out struct {
			Locate struct {
				ID, Type string
				App      struct{ ID, Name string }
			}
		}
		s.As(t, s.Token).Must(&out, locate, map[string]any{"id": id})
		if out.Locate.ID != id || out.Locate.Type != typ || out.Locate.App.ID != appID || out.Locate.App.Name != "Beta" {
			t.Errorf("locate(%s) = %+v, want the %s of app Beta", id, out.Locate, typ)
		}
		// The app's own key finds it in its app too.
		s.As(t, token).Must(&out, locate, map[string]any{"id": id})
		if out.Locate.App.ID != appID {
			t.Errorf("locate(%s) with the app's key = %+v", id, out.Locate)
		}
	}

	// Another app's plain key does not see it; IDs of no app are not found.
	_, third := s.NewApp("Gamma")
	s.As(t, third).Do(locate, map[string]any{"id": ev}).WantError(t, "NOT_FOUND")
	s.As(t, s.Token).Do(locate, map[string]any{"id": "evt_00000000000000000000000000"}).WantError(t, "NOT_FOUND")
	s.As(t, s.Token).Do(locate, map[string]any{"id": "ord_42"}).WantFault(t, "BAD_USER_INPUT", "id")
}

func TestApp_AdminKeysReadEveryAppsFiguresAtAGlance(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	appID, token := s.NewApp("Beta")
	ok := heraldtest.NewReceiver(t, nil)
	down := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	s.CreateEndpoint(token, map[string]any{"url": ok.Hook("/ok"), "eventTypes": []string{"order.*"}})
	s.CreateEndpoint(token, map[string]any{"url": down.Hook("/down"), "eventTypes": []string{"contact.*"},
		"retryPolicy": map[string]any{"initialDelay": "1h", "maxDelay": "1h"}})
	s.CreateEndpoint(token, map[string]any{"url": ok.Hook("/off"), "eventTypes": []string{"course.*"}, "isActive": false})
	s.Publish(token, "order.created", map[string]any{})
	s.Publish(token, "contact.created", map[string]any{})
	ok.WaitRequests(t, 1, 10*time.Second)
	down.WaitRequests(t, 1, 10*time.Second)

	const apps = `{ apps(first: 10, where: {nameContainsFold: "bet"}) { edges { node { id name
		stats { total { attempts { total succeeded } } } backlog { unfinished } endpointSummary { total needingAttention } } } } }`
	var out struct {
		Apps struct {
			Edges []struct {
				Node struct {
					ID, Name string
					Stats    struct {
						Total struct {
							Attempts struct{ Total, Succeeded int }
						}
					}
					Backlog         struct{ Unfinished int }
					EndpointSummary struct{ Total, NeedingAttention int }
				}
			}
		}
	}
	if !heraldtest.Eventually(10*time.Second, func() bool {
		s.As(t, s.Token).Must(&out, apps, nil)
		return len(out.Apps.Edges) == 1 && out.Apps.Edges[0].Node.Stats.Total.Attempts.Total == 2
	}) {
		t.Fatalf("apps = %+v, want Beta with its 2 attempts", out.Apps)
	}
	n := out.Apps.Edges[0].Node
	if n.ID != appID || n.Stats.Total.Attempts.Succeeded != 1 || n.Backlog.Unfinished != 1 ||
		n.EndpointSummary.Total != 3 || n.EndpointSummary.NeedingAttention != 2 {
		t.Errorf("Beta at a glance = %+v, want 1 of 2 attempts good, 1 retrying, 2 of 3 endpoints needing attention (failing, disabled)", n)
	}

	// An app's own key reads its own figures.
	_, third := s.NewApp("Gamma")
	var mine struct {
		Viewer struct {
			App struct{ EndpointSummary struct{ Total int } }
		}
	}
	s.As(t, third).Must(&mine, `{ viewer { app { endpointSummary { total } backlog { unfinished } stats { total { attempts { total } } } } } }`, nil)
	if mine.Viewer.App.EndpointSummary.Total != 0 {
		t.Errorf("Gamma's key reads %d endpoints of its app", mine.Viewer.App.EndpointSummary.Total)
	}
}
