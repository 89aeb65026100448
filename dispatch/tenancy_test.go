package dispatch_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/signing"
)

// Regression tests of the review of a hostile portal user (issue "Safe in
// front of untrusted customers") that the engine answers.

// Defect 1: a portal session's filter ({"data.items.*": {"$in": [3,200
// numbers]}}) made one event of 100,000 elements take 12.6 s to publish,
// holding the writer. The filter now stops at its work budget: the
// publish answers at once, the endpoint gets a FAILED delivery that says
// why (and a retry sends it anyway), and other endpoints get the event.
func TestPublish_FilterOverItsBudgetFailsOnlyItsOwnDelivery(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.MaxPayloadBytes = 1 << 20 })
	s.Do(s.Token, `mutation($id: ID!) { updateApp(id: $id, input: {limits: [{name: FILTER_BYTES, limit: 16384}]}) { id } }`,
		map[string]any{"id": s.AppID}).Decode(t, nil)
	rc := heraldtest.NewReceiver(t, nil)
	list := make([]string, 1000)
	for i := range list {
		list[i] = strconv.Itoa(-i - 1)
	}
	var filter map[string]any
	if err := json.Unmarshal([]byte(`{"data.items.*": {"$in": [`+strings.Join(list, ",")+`]}}`), &filter); err != nil {
		t.Fatal(err)
	}
	heavy, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/heavy"), "filter": filter})
	plain, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/plain"), "allowDuplicate": true})
	items := make([]int, 100000)
	start := time.Now()
	evID := s.Publish(s.Token, "order.created", map[string]any{"items": items})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("publishing took %s", took)
	}
	ds := s.Deliveries(s.Token, evID)
	byEndpoint := map[string]heraldtest.Delivery{}
	for _, d := range ds {
		byEndpoint[d.EndpointID] = d
	}
	h := byEndpoint[heavy]
	if h.Status != "FAILED" || h.AttemptCount != 0 || h.LastError == nil || !strings.Contains(*h.LastError, "steps") {
		t.Fatalf("delivery to the endpoint whose filter ran out of budget = %+v (error %q)", h, deref(h.LastError))
	}
	if !heraldtest.Eventually(20*time.Second, func() bool {
		for _, d := range s.Deliveries(s.Token, evID) {
			if d.EndpointID == plain {
				return d.Status == "SUCCEEDED"
			}
		}
		return false
	}) {
		t.Fatalf("the endpoint without a filter did not get the event")
	}
	// A retry sends it anyway: the customer decides.
	s.Do(s.Token, `mutation($id: ID!) { retryDelivery(id: $id) { id } }`, map[string]any{"id": h.ID}).Decode(t, nil)
	if !heraldtest.Eventually(20*time.Second, func() bool {
		for _, r := range rc.Requests() {
			if r.Path == "/heavy" {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the retried delivery was not sent")
	}
	// testFilter says the same of the event.
	var tf struct {
		TestFilter struct {
			Results []struct {
				Matched bool
				Error   *string
			}
		}
	}
	s.Do(s.Token, `query($f: JSON!) { testFilter(filter: $f, recent: 1) { results { matched error } } }`, map[string]any{"f": filter}).Decode(t, &tf)
	if r := tf.TestFilter.Results; len(r) != 1 || r[0].Matched || r[0].Error == nil {
		t.Fatalf("testFilter on the event = %+v", r)
	}
}

// Defect 4: testEndpoint let a portal session make Herald sign any
// payload of any catalog type, stored as a normal event and sent past the
// endpoint's rate limit. A portal session now sends only the catalog's
// example (or test.ping), every test says "test": true under the
// signature, and tests wait for the endpoint's pace like any delivery.
func TestTestEndpoint_PortalTestsAreMarkedExamplesPacedLikeDeliveries(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	epID, secret := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "timeout": "1s",
		"rateLimit": map[string]any{"requests": 1, "per": "1h"}, "ordering": "STRICT"})
	var sess struct{ CreatePortalSession struct{ Token string } }
	s.Do(s.Token, `mutation { createPortalSession(input: {}) { token } }`, nil).Decode(t, &sess)
	portal := sess.CreatePortalSession.Token

	// No payload of its own.
	s.Do(portal, `mutation($id: ID!) { testEndpoint(id: $id, eventType: "invoice.paid", payload: {amount: 100000}) { delivered } }`,
		map[string]any{"id": epID}).WantError(t, "FORBIDDEN")

	// The first test goes out: marked, signed, the catalog's example.
	var out struct {
		TestEndpoint struct {
			Delivered bool
			Attempt   *struct{ Trigger string }
			Delivery  struct {
				ID, Status string
				Event      struct{ Test bool }
			}
			Error *string
		}
	}
	s.Do(portal, `mutation($id: ID!) { testEndpoint(id: $id, eventType: "order.created") { delivered attempt { trigger } delivery { id status event { test } } error } }`,
		map[string]any{"id": epID}).Decode(t, &out)
	if !out.TestEndpoint.Delivered || out.TestEndpoint.Attempt == nil || out.TestEndpoint.Attempt.Trigger != "TEST" || !out.TestEndpoint.Delivery.Event.Test {
		t.Fatalf("first test = %+v", out.TestEndpoint)
	}
	req := rc.WaitRequests(t, 1, 5*time.Second)[0]
	if err := signing.Verify(secret, req.Header, req.Body, time.Minute, time.Now()); err != nil {
		t.Fatalf("test signature: %v", err)
	}
	var env struct {
		Test bool
		Type string
		Data map[string]any
	}
	if err := json.Unmarshal(req.Body, &env); err != nil || !env.Test || env.Type != "order.created" || len(env.Data) == 0 {
		t.Fatalf("test envelope = %s (%v)", req.Body, err)
	}
	if req.Header.Get("X-Herald-Test") != "true" {
		t.Fatalf("X-Herald-Test = %q", req.Header.Get("X-Herald-Test"))
	}
	// Two more wait for the rate limit (1 an hour): neither reaches the
	// receiver, each answers with its delivery queued.
	for range 2 {
		s.Do(portal, `mutation($id: ID!) { testEndpoint(id: $id) { delivered attempt { trigger } delivery { id status event { test } } error } }`,
			map[string]any{"id": epID}).Decode(t, &out)
		if out.TestEndpoint.Delivered || out.TestEndpoint.Attempt != nil || out.TestEndpoint.Delivery.Status != "PENDING" || out.TestEndpoint.Error == nil {
			t.Fatalf("a test past the rate limit = %+v", out.TestEndpoint)
		}
	}
	if n := len(rc.Requests()); n != 1 {
		t.Fatalf("the receiver got %d requests; its limit is 1 an hour", n)
	}
}
