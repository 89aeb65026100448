package graph_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// The consistency pass moved the app of createAPIKey and
// createPortalSession to a top-level appId, testEndpoint's event to input
// and replayDeliveries' selection to input (docs/api-stability.md lists
// each change). The old shapes stay, deprecated, for a release; giving
// both at once is refused rather than guessed.

func TestMutationShapes_AppIsATopLevelArgumentAndInputAppIDStillWorks(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	admin := s.As(t, s.Token)
	other, _ := s.NewApp("other")

	type key struct {
		CreateAPIKey struct {
			APIKey struct{ App struct{ ID string } }
		}
	}
	var k key
	admin.Must(&k, `mutation($a: ID) { createAPIKey(appId: $a, input: {name: "top"}) { apiKey { app { id } } } }`, map[string]any{"a": other})
	if got := k.CreateAPIKey.APIKey.App.ID; got != other {
		t.Errorf("createAPIKey(appId:) made a key of app %s, want %s", got, other)
	}
	k = key{}
	admin.Must(&k, `mutation($a: ID) { createAPIKey(input: {appId: $a, name: "deprecated"}) { apiKey { app { id } } } }`, map[string]any{"a": other})
	if got := k.CreateAPIKey.APIKey.App.ID; got != other {
		t.Errorf("createAPIKey(input: {appId:}) made a key of app %s, want %s", got, other)
	}
	r := admin.Do(`mutation($a: ID, $b: ID) { createAPIKey(appId: $a, input: {appId: $b, name: "both"}) { token } }`, map[string]any{"a": other, "b": s.AppID})
	r.WantError(t, "BAD_USER_INPUT")
	if r.Field() != "input.appId" {
		t.Errorf("two different apps: field %q, want input.appId: %s", r.Field(), r.Body)
	}
	r = admin.Do(`mutation { createAPIKey(appId: "app_missing", input: {name: "x"}) { token } }`, nil)
	r.WantError(t, "BAD_USER_INPUT")
	if r.Field() != "appId" {
		t.Errorf("unknown app: field %q, want appId: %s", r.Field(), r.Body)
	}

	// A portal session needs nothing but the app.
	var sess struct{ CreatePortalSession struct{ Token string } }
	admin.Must(&sess, `mutation($a: ID) { createPortalSession(appId: $a) { token } }`, map[string]any{"a": other})
	var v viewer
	s.As(t, sess.CreatePortalSession.Token).Must(&v, viewerOp, nil)
	if v.Viewer.App.ID != other {
		t.Errorf("createPortalSession(appId:) opened app %s's portal, want %s", v.Viewer.App.ID, other)
	}
	_, appToken := s.NewApp("tenant")
	r = s.As(t, appToken).Do(`mutation($a: ID) { createPortalSession(appId: $a) { token } }`, map[string]any{"a": other})
	r.WantError(t, "FORBIDDEN")
}

func TestMutationShapes_TestEndpointTakesItsEventInInput(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	admin := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)
	ep, _ := createEndpoint(t, admin, map[string]any{"url": rc.URL})

	type result struct{ TestEndpoint struct{ Delivered bool } }
	for i, op := range []string{
		`mutation($id: ID!) { testEndpoint(id: $id, input: {eventType: "test.ping", payload: {n: 1}}) { delivered } }`,
		`mutation($id: ID!) { testEndpoint(id: $id, payload: {n: 2}) { delivered } }`,
	} {
		var out result
		admin.Must(&out, op, map[string]any{"id": ep.ID})
		if !out.TestEndpoint.Delivered {
			t.Fatalf("test %d not delivered", i+1)
		}
		got := rc.WaitRequests(t, i+1, 10*time.Second)[i]
		var env struct {
			Type string
			Data struct{ N int }
		}
		if err := json.Unmarshal(got.Body, &env); err != nil || env.Type != "test.ping" || env.Data.N != i+1 {
			t.Errorf("test %d sent %s (%v), want test.ping with n=%d", i+1, got.Body, err, i+1)
		}
	}
	r := admin.Do(`mutation($id: ID!) { testEndpoint(id: $id, input: {}, eventType: "test.ping") { delivered } }`, map[string]any{"id": ep.ID})
	r.WantError(t, "BAD_USER_INPUT")

	// An error about the input names the input's field.
	token := portalSession(t, s, map[string]any{})
	r = s.As(t, token).Do(`mutation($id: ID!) { testEndpoint(id: $id, input: {payload: {forged: true}}) { delivered } }`, map[string]any{"id": ep.ID})
	r.WantError(t, "FORBIDDEN")
	if r.Field() != "input.payload" {
		t.Errorf("portal payload: field %q, want input.payload: %s", r.Field(), r.Body)
	}
}

func TestMutationShapes_ReplayDeliveriesTakesItsSelectionInInput(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	admin := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)
	ep, _ := createEndpoint(t, admin, map[string]any{"url": rc.URL})
	var out struct{ TestEndpoint struct{ Delivered bool } }
	admin.Must(&out, `mutation($id: ID!) { testEndpoint(id: $id) { delivered } }`, map[string]any{"id": ep.ID})
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)

	type replay struct{ ReplayDeliveries struct{ Count int } }
	succeeded := func() bool {
		var d struct{ Deliveries struct{ TotalCount int } }
		admin.Must(&d, `{ deliveries(where: {status: SUCCEEDED}) { totalCount } }`, nil)
		return d.Deliveries.TotalCount == 1
	}
	for i, op := range []string{
		`mutation($id: ID!, $s: Time!) { replayDeliveries(endpointId: $id, input: {since: $s, status: SUCCEEDED}) { count } }`,
		`mutation($id: ID!, $s: Time!) { replayDeliveries(endpointId: $id, since: $s, status: SUCCEEDED) { count } }`,
	} {
		if !heraldtest.Eventually(10*time.Second, succeeded) {
			t.Fatalf("replay %d: the delivery did not succeed", i+1)
		}
		var got replay
		admin.Must(&got, op, map[string]any{"id": ep.ID, "s": since})
		if got.ReplayDeliveries.Count != 1 {
			t.Errorf("replay %d: replayed %d deliveries, want the 1 that succeeded", i+1, got.ReplayDeliveries.Count)
		}
		rc.WaitRequests(t, i+2, 10*time.Second)
	}
	// The default status is FAILED, in input as it was before.
	var none replay
	admin.Must(&none, `mutation($id: ID!, $s: Time!) { replayDeliveries(endpointId: $id, input: {since: $s}) { count } }`, map[string]any{"id": ep.ID, "s": since})
	if none.ReplayDeliveries.Count != 0 {
		t.Errorf("default status replayed %d succeeded deliveries, want 0", none.ReplayDeliveries.Count)
	}
	for name, tc := range map[string]struct{ op, field string }{
		"no since": {`mutation($id: ID!) { replayDeliveries(endpointId: $id) { count } }`, "input.since"},
		"both":     {`mutation($id: ID!) { replayDeliveries(endpointId: $id, input: {since: "2026-01-01T00:00:00Z"}, since: "2026-01-01T00:00:00Z") { count } }`, "since"},
	} {
		r := admin.Do(tc.op, map[string]any{"id": ep.ID})
		r.WantError(t, "BAD_USER_INPUT")
		if r.Field() != tc.field {
			t.Errorf("%s: field %q, want %s: %s", name, r.Field(), tc.field, r.Body)
		}
	}
}
