package e2e_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

func TestTransformation_ReshapesAddsAHeaderChangesThePathAndSkips(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	_, secret := s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/hooks"),
		"transformation": `function handler(webhook) {
  if (webhook.payload.data.total === 0) return null;
  webhook.payload = {text: "Order " + webhook.payload.data.id + ": " + webhook.payload.data.total};
  webhook.headers["X-Slack-Style"] = "1";
  webhook.url = webhook.url + "/" + webhook.eventType;
  return webhook;
}`})
	kept := s.Publish(s.Token, "order.created", map[string]any{"id": "o-1", "total": 42})
	skipped := s.Publish(s.Token, "order.created", map[string]any{"id": "o-2", "total": 0})
	reqs := rc.WaitRequests(t, 1, 30*time.Second)
	r := reqs[0]
	if string(r.Body) != `{"text":"Order o-1: 42"}` || r.Header.Get("X-Slack-Style") != "1" || r.Path != "/hooks/order.created" {
		t.Fatalf("request = %s %s %v", r.Path, r.Body, r.Header)
	}
	wh, _ := standardwebhooks.NewWebhook(secret)
	if err := wh.Verify(r.Body, r.Header); err != nil {
		t.Fatalf("the transformed body's signature does not verify: %v", err)
	}
	d := s.WaitDelivery(s.Token, kept, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	a := d.Attempts.Edges[0].Node
	if !strings.HasSuffix(a.RequestURL, "/hooks/order.created") || !hasHeader(a.RequestHeaders, "X-Slack-Style", "1") {
		t.Fatalf("attempt = %+v: it should record what the receiver got", a)
	}
	sd := s.WaitDelivery(s.Token, skipped, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	if b := sd.Attempts.Edges[0].Node.ResponseBody; !strings.Contains(b, "skipped") {
		t.Fatalf("skipped delivery's attempt says %q", b)
	}
	if n := len(rc.Requests()); n != 1 {
		t.Fatalf("the receiver got %d requests, want only the one not skipped", n)
	}
}

func hasHeader(hs []struct{ Name, Value string }, name, value string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) && h.Value == value {
			return true
		}
	}
	return false
}

func TestTransformation_RunawayScriptsFailAlone(t *testing.T) {
	// Each of the 30 looping deliveries fails: with the default
	// (disabled after 20 failed deliveries in a row) the last ones would
	// find the endpoint turned off, or not, depending on the machine's
	// speed. Auto-disable is not what this test is about.
	s := heraldtest.Start(t, func(c *server.Config) { c.DisableAfter = 1000 })
	good := heraldtest.NewReceiver(t, nil)
	bad := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": good.URL, "eventTypes": []string{"order.*"}})
	loop, _ := s.CreateEndpoint(s.Token, map[string]any{"url": bad.Hook("/loop"), "eventTypes": []string{"order.created"}, "allowDuplicate": true,
		"retryPolicy": map[string]any{"maxAttempts": 1},
		// A loop that holds nothing: only its time budget stops it,
		// however much the rest of the server allocates meanwhile (the
		// memory budget once counted every allocation of the process, and
		// a loaded CI run stopped this loop for memory).
		"transformation": "function handler(w) {\n  let n = 0;\n  while (n < 1) { n = 0 }\n}"})
	alloc, _ := s.CreateEndpoint(s.Token, map[string]any{"url": bad.Hook("/alloc"), "eventTypes": []string{"order.paid"}, "allowDuplicate": true,
		"retryPolicy":    map[string]any{"maxAttempts": 1},
		"transformation": "function handler(w) {\n  // 100 MB in one go\n  w.payload = \"y\".repeat(100 * 1024 * 1024);\n  return w;\n}"})
	// The looping script first (each run burns its whole time budget),
	// then the allocating one, while the plain endpoint gets every event.
	var ids []string
	for i := range 30 {
		ids = append(ids, s.Publish(s.Token, "order.created", map[string]any{"n": i}))
	}
	good.WaitRequests(t, 30, 60*time.Second)
	for _, id := range ids {
		waitFinished(t, s, id)
	}
	for i := range 10 {
		ids = append(ids, s.Publish(s.Token, "order.paid", map[string]any{"n": i}))
	}
	good.WaitRequests(t, 40, 60*time.Second)
	want := map[string]string{loop: "time budget exceeded", alloc: "memory limit"}
	for _, id := range ids {
		for _, d := range waitFinished(t, s, id) {
			w, isBad := want[d.EndpointID]
			if !isBad {
				if d.Status != "SUCCEEDED" {
					t.Fatalf("delivery %+v to the plain endpoint failed", d)
				}
				continue
			}
			if d.Status != "FAILED" || d.LastError == nil || !strings.Contains(*d.LastError, w) || !strings.Contains(*d.LastError, "line 3") {
				t.Fatalf("delivery to %s = %s %v, want FAILED saying %q at line 3", d.EndpointID, d.Status, deref(d.LastError), w)
			}
		}
	}
	if n := len(bad.Requests()); n != 0 {
		t.Fatalf("the runaway scripts' endpoints got %d requests", n)
	}
	var ep struct{ Node struct{ Health string } }
	s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { health } } }`, map[string]any{"id": loop}).Decode(t, &ep)
	if ep.Node.Health != "ATTENTION" {
		t.Fatalf("health = %s, want ATTENTION", ep.Node.Health)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// waitFinished waits until every delivery of an event has finished.
func waitFinished(t *testing.T, s *heraldtest.Server, eventID string) []heraldtest.Delivery {
	t.Helper()
	var ds []heraldtest.Delivery
	ok := heraldtest.Eventually(60*time.Second, func() bool {
		ds = s.Deliveries(s.Token, eventID)
		for _, d := range ds {
			if d.Status != "SUCCEEDED" && d.Status != "FAILED" {
				return false
			}
		}
		return len(ds) > 0
	})
	if !ok {
		t.Fatalf("deliveries of %s did not finish: %+v", eventID, ds)
	}
	return ds
}

func TestTestTransformation_ShowsTheResultOrTheError(t *testing.T) {
	s := heraldtest.Start(t)
	ev := s.Publish(s.Token, "order.created", map[string]any{"id": "o-9", "total": 5})
	const q = `query($s: String!, $p: JSON, $e: ID, $u: String) { testTransformation(script: $s, payload: $p, eventType: "order.created", eventId: $e, url: $u) {
		skipped body headers { name value } method url error line column durationMs } }`
	type result struct {
		TestTransformation struct {
			Skipped      bool
			Body, Method *string
			URL, Error   *string
			Line, Column *int
			Headers      []struct{ Name, Value string }
		}
	}
	var out result
	s.Do(s.Token, q, map[string]any{"s": `function handler(w) { w.payload = {id: w.payload.data.id}; w.headers.A = "b"; w.method = "PUT"; return w }`,
		"e": ev, "u": "https://example.com/x"}).Decode(t, &out)
	r := out.TestTransformation
	if r.Body == nil || *r.Body != `{"id":"o-9"}` || deref(r.Method) != "PUT" || len(r.Headers) != 1 || r.Error != nil {
		t.Fatalf("result = %+v", r)
	}
	out = result{}
	s.Do(s.Token, q, map[string]any{"s": "function handler(w) {\n  return w.payload.missing.x;\n}", "p": json.RawMessage(`{"a":1}`)}).Decode(t, &out)
	r = out.TestTransformation
	if r.Error == nil || !strings.Contains(*r.Error, "TypeError") || r.Line == nil || *r.Line != 2 {
		t.Fatalf("result = %+v, want a TypeError at line 2", r)
	}
	res := s.Do(s.Token, `mutation($in: CreateEndpointInput!) { createEndpoint(input: $in) { secret } }`, map[string]any{"in": map[string]any{
		"name": "bad script", "url": "https://example.com/h", "eventTypes": []string{"*"}, "transformation": "function handler(w) {\n  return w.;\n}"}})
	res.WantError(t, "BAD_USER_INPUT")
	if res.Field() != "input.transformation" || !strings.Contains(res.Errors[0].Message, "line 2") {
		t.Fatalf("error = %s", res.Body)
	}
	_ = http.MethodPut
}

// TestTransformation_SkippedEventsCountInNoStatistic: an event the
// transformation skips ends SUCCEEDED, its attempt saying why, but it was
// no request to the endpoint: it is not a successful attempt in the
// endpoint's count, its statistics or its health, like an event its
// filter does not match.
func TestTransformation_SkippedEventsCountInNoStatistic(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	id, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/hooks"),
		"transformation": `function handler(w) { return w.payload.data.total === 0 ? null : w }`})
	var ids []string
	for _, total := range []int{0, 42, 0, 0} {
		ids = append(ids, s.Publish(s.Token, "order.created", map[string]any{"total": total}))
	}
	waitAll(t, s, ids, 30*time.Second)
	var out struct {
		Node struct {
			SuccessCount, FailureCount int
			Stats                      struct {
				Total struct {
					Attempts   struct{ Total, Succeeded int }
					Deliveries struct{ Total, Succeeded int }
				}
			}
		}
	}
	ok := heraldtest.Eventually(10*time.Second, func() bool {
		s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { successCount failureCount
			stats(window: "1h", bucket: "1h") { total { attempts { total succeeded } deliveries { total succeeded } } } } } }`,
			map[string]any{"id": id}).Decode(t, &out)
		return out.Node.Stats.Total.Attempts.Total > 0
	})
	n := out.Node
	if !ok || n.SuccessCount != 1 || n.FailureCount != 0 || n.Stats.Total.Attempts.Total != 1 || n.Stats.Total.Attempts.Succeeded != 1 ||
		n.Stats.Total.Deliveries.Total != 1 || n.Stats.Total.Deliveries.Succeeded != 1 {
		t.Fatalf("endpoint figures = %+v, want the one event sent, and the 3 skipped ones in none", n)
	}
	if got := len(rc.Requests()); got != 1 {
		t.Fatalf("the receiver got %d requests, want 1", got)
	}
}

// TestTransformation_AURLItChangesIsCheckedByThePolicy: the destination
// policy allows the receiver's address only; a script that sends the
// webhook elsewhere (another port on loopback, the cloud metadata
// address) fails the attempt saying so, and nothing reaches the other
// address, while a script that only changes the path is sent.
func TestTransformation_AURLItChangesIsCheckedByThePolicy(t *testing.T) {
	rc := heraldtest.NewReceiver(t, nil)
	other := heraldtest.NewReceiver(t, nil)
	s := heraldtest.Start(t, func(c *server.Config) {
		c.AllowPrivateDestinations = false
		c.AllowDestinations = strings.TrimPrefix(rc.URL, "http://")
	})
	script := func(url string) string {
		return "function handler(w) {\n  w.url = " + strconv.Quote(url) + ";\n  return w;\n}"
	}
	tests := []struct{ name, url, says string }{
		{"same address, another path", rc.Hook("/elsewhere"), ""},
		{"another loopback port", other.Hook("/stolen"), "the url it returned is refused"},
		{"metadata address", "http://169.254.169.254/latest/meta-data/", "the url it returned is refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/hook"), "eventTypes": []string{"order.created"}, "allowDuplicate": true,
				"retryPolicy": map[string]any{"maxAttempts": 1}, "transformation": script(tt.url)})
			id := s.Publish(s.Token, "order.created", map[string]any{"n": 1})
			var d heraldtest.Delivery
			for _, x := range waitFinished(t, s, id) {
				if x.EndpointID == ep {
					d = x
				}
			}
			if tt.says == "" {
				if d.Status != "SUCCEEDED" || !strings.HasSuffix(d.Attempts.Edges[0].Node.RequestURL, "/elsewhere") {
					t.Fatalf("want it sent to the new path:\n%v", d)
				}
				return
			}
			if d.Status != "FAILED" || d.LastError == nil || !strings.Contains(*d.LastError, tt.says) {
				t.Fatalf("want the changed url refused:\n%v", d)
			}
		})
	}
	if n := len(other.Requests()); n != 0 {
		t.Fatalf("the address the policy refuses got %d requests", n)
	}
}
