package dispatch_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/signing"
)

func TestRotation_BothSecretsVerifyDuringOverlapOnlyNewAfter(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	epID, oldSecret := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	var rot struct {
		RotateEndpointSecret struct {
			Secret   string
			Endpoint struct{ PreviousSecretExpiresAt *time.Time }
		}
	}
	s.Do(s.Token, `mutation($id: ID!) { rotateEndpointSecret(id: $id, input: {overlap: "1s"}) { secret endpoint { previousSecretExpiresAt } } }`,
		map[string]any{"id": epID}).Decode(t, &rot)
	newSecret := rot.RotateEndpointSecret.Secret
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, signing.SecretPrefix) {
		t.Fatalf("rotated secret %q (old %q)", newSecret, oldSecret)
	}
	until := rot.RotateEndpointSecret.Endpoint.PreviousSecretExpiresAt
	if until == nil || time.Until(*until) > 2*time.Second {
		t.Fatalf("previousSecretExpiresAt = %v, want about 1s from now", until)
	}

	s.Publish(s.Token, "order.created", map[string]any{"n": 1})
	during := rc.WaitRequests(t, 1, 5*time.Second)[0]
	if sigs := strings.Fields(during.Header.Get("Webhook-Signature")); len(sigs) != 2 {
		t.Fatalf("during the overlap webhook-signature = %q, want two signatures", during.Header.Get("Webhook-Signature"))
	}
	for name, sec := range map[string]string{"old": oldSecret, "new": newSecret} {
		if err := signing.Verify(sec, during.Header, during.Body, time.Minute, time.Now()); err != nil {
			t.Errorf("during the overlap the %s secret does not verify: %v", name, err)
		}
	}

	time.Sleep(time.Until(*until) + 50*time.Millisecond) // let the overlap end
	s.Publish(s.Token, "order.created", map[string]any{"n": 2})
	after := rc.WaitRequests(t, 2, 5*time.Second)[1]
	if err := signing.Verify(newSecret, after.Header, after.Body, time.Minute, time.Now()); err != nil {
		t.Fatalf("after the overlap the new secret does not verify: %v", err)
	}
	if err := signing.Verify(oldSecret, after.Header, after.Body, time.Minute, time.Now()); err == nil {
		t.Fatalf("after the overlap the old secret still verifies")
	}
}

func TestAutoDisable_AfterConsecutiveFailedDeliveries(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) {
		c.DisableAfter = 3
		c.MetaWindow = 300 * time.Millisecond
	})
	failing := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	watcher := heraldtest.NewReceiver(t, nil)
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "failing", "url": failing.URL, "eventTypes": []string{"*"}, "retryPolicy": fastRetries(2)})
	s.CreateEndpoint(s.Token, map[string]any{"name": "watcher", "url": watcher.URL, "eventTypes": []string{"webhook.*"}})

	for i := 0; i < 3; i++ {
		s.Publish(s.Token, "order.created", map[string]any{"n": i})
	}
	var ep struct {
		Node struct {
			IsActive            bool
			DisabledReason      *string
			ConsecutiveFailures int
			FailureCount        int
			Health              string
		}
	}
	query := `query($id: ID!) { node(id: $id) { ... on Endpoint { isActive disabledReason consecutiveFailures failureCount health } } }`
	if !heraldtest.Eventually(5*time.Second, func() bool {
		s.Do(s.Token, query, map[string]any{"id": epID}).Decode(t, &ep)
		return !ep.Node.IsActive
	}) {
		t.Fatalf("endpoint still active after 3 failed deliveries: %+v", ep.Node)
	}
	if ep.Node.DisabledReason == nil || !strings.Contains(*ep.Node.DisabledReason, "3 consecutive failed deliveries") ||
		ep.Node.ConsecutiveFailures != 3 || ep.Node.FailureCount != 6 || ep.Node.Health != "ATTENTION" {
		t.Fatalf("disabled endpoint = %+v", ep.Node)
	}

	// The watcher hears about the failed deliveries and the disabling: the
	// first failure at once, the next ones gathered into one report at the
	// end of the window. The failing endpoint never receives meta-events
	// about itself.
	failed, disabled := 0, 0
	if !heraldtest.Eventually(5*time.Second, func() bool {
		failed, disabled = 0, 0
		for _, r := range watcher.Requests() {
			var env struct {
				Type string
				Data struct {
					EndpointID       string
					FailedDeliveries int
					URL              string
				}
			}
			if err := json.Unmarshal(r.Body, &env); err != nil {
				t.Fatal(err)
			}
			if env.Data.EndpointID != epID || env.Data.URL != failing.URL {
				t.Errorf("%s event about endpoint %q at %q, want %s at %s", env.Type, env.Data.EndpointID, env.Data.URL, epID, failing.URL)
			}
			switch env.Type {
			case "webhook.failed":
				failed += env.Data.FailedDeliveries
			case "webhook.disabled":
				disabled++
			}
		}
		return failed == 3 && disabled == 1
	}) {
		t.Fatalf("watcher heard of %d failed deliveries and %d disablings, want 3 and 1", failed, disabled)
	}
	if n := len(watcher.Requests()); n > 3 {
		t.Fatalf("watcher got %d meta-events, want at most 3 (failures gathered within the window)", n)
	}
	for _, r := range failing.Requests() {
		if strings.Contains(string(r.Body), `"type":"webhook.`) {
			t.Fatalf("failing endpoint got a meta-event about itself: %s", r.Body)
		}
	}

	// A disabled endpoint receives nothing new.
	before := len(failing.Requests())
	evID := s.Publish(s.Token, "order.created", map[string]any{"n": "after"})
	if n := len(s.Deliveries(s.Token, evID)); n != 0 {
		t.Fatalf("event published after disabling has %d deliveries to the endpoint", n)
	}
	if len(failing.Requests()) != before {
		t.Fatalf("disabled endpoint still receives requests")
	}

	// Re-enabling resets the consecutive failures.
	s.Do(s.Token, `mutation($id: ID!) { updateEndpoint(id: $id, input: {isActive: true}) { id } }`, map[string]any{"id": epID}).Decode(t, nil)
	s.Do(s.Token, query, map[string]any{"id": epID}).Decode(t, &ep)
	if !ep.Node.IsActive || ep.Node.ConsecutiveFailures != 0 || ep.Node.DisabledReason != nil {
		t.Fatalf("re-enabled endpoint = %+v", ep.Node)
	}
}

func TestAutoDisable_QueuedDeliveriesStop(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.DisableAfter = 2; c.PerEndpoint = 1 })
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(20 * time.Millisecond) // a slow, broken receiver
		w.WriteHeader(http.StatusNotFound)
	})
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	in := make([]map[string]any, 20)
	for i := range in {
		in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"n": i}}
	}
	var out struct{ PublishEvents []struct{ ID string } }
	s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, &out)

	notAttempted := 0
	for _, ev := range out.PublishEvents {
		d := s.WaitDelivery(s.Token, ev.ID, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
		if d.AttemptCount == 0 {
			notAttempted++
			if d.LastError == nil || !strings.Contains(*d.LastError, "endpoint disabled") {
				t.Errorf("unattempted delivery %s has lastError %v", d.ID, d.LastError)
			}
		}
	}
	// Two failures disable the endpoint; at most the attempt in flight at
	// that moment may still go out.
	if sent := len(rc.Requests()); sent > 4 || notAttempted < 16 {
		t.Fatalf("receiver got %d of 20 deliveries (%d never attempted); queued deliveries did not stop", sent, notAttempted)
	}
	var ep struct{ Node struct{ IsActive bool } }
	s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { isActive } } }`, map[string]any{"id": epID}).Decode(t, &ep)
	if ep.Node.IsActive {
		t.Fatal("endpoint still active")
	}
}

func TestDisableEndpoint_ByUpdateStopsClaimedDeliveries(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.PerEndpoint = 1 })
	release := make(chan struct{})
	var once atomic.Bool
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if once.CompareAndSwap(false, true) {
			<-release // hold the first request until the endpoint is disabled
		}
		w.WriteHeader(http.StatusOK)
	})
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	in := make([]map[string]any, 5)
	for i := range in {
		in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"n": i}}
	}
	var out struct{ PublishEvents []struct{ ID string } }
	s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, &out)
	rc.WaitRequests(t, 1, 5*time.Second)
	s.Do(s.Token, `mutation($id: ID!) { updateEndpoint(id: $id, input: {isActive: false}) { id } }`, map[string]any{"id": epID}).Decode(t, nil)
	close(release)
	for _, ev := range out.PublishEvents[1:] {
		s.WaitDelivery(s.Token, ev.ID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" && d.AttemptCount == 0 })
	}
	s.WaitDelivery(s.Token, out.PublishEvents[0].ID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	if n := len(rc.Requests()); n != 1 {
		t.Fatalf("disabled endpoint received %d requests, want only the one in flight", n)
	}
}

func TestTestEndpoint_SendsNowEvenWhenInactive(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"received":true}`))
	})
	epID, secret := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "isActive": false})
	var out struct {
		TestEndpoint struct {
			Delivered    bool
			StatusCode   int
			ResponseBody string
			DurationMs   int
			Error        *string
			Attempt      struct {
				Trigger   string
				Succeeded bool
				Delivery  struct{ Status, EventType string }
			}
		}
	}
	s.Do(s.Token, `mutation($id: ID!) { testEndpoint(id: $id) { delivered statusCode responseBody durationMs error
		attempt { trigger succeeded delivery { status eventType } } } }`, map[string]any{"id": epID}).Decode(t, &out)
	got := out.TestEndpoint
	if !got.Delivered || got.StatusCode != 202 || got.ResponseBody != `{"received":true}` || got.Error != nil ||
		got.Attempt.Trigger != "TEST" || !got.Attempt.Succeeded || got.Attempt.Delivery.Status != "SUCCEEDED" || got.Attempt.Delivery.EventType != "test.ping" {
		t.Fatalf("testEndpoint = %+v (error %v)", got, deref(got.Error))
	}
	req := rc.Requests()[0]
	if err := signing.Verify(secret, req.Header, req.Body, time.Minute, time.Now()); err != nil {
		t.Fatalf("test delivery signature: %v", err)
	}
	if !strings.Contains(string(req.Body), `"type":"test.ping"`) {
		t.Fatalf("test body = %s", req.Body)
	}
}

func TestTestEndpoint_ReportsFailureWithoutCountingTowardDisable(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.DisableAfter = 1 })
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "nope", http.StatusInternalServerError)
	})
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	var out struct {
		TestEndpoint struct {
			Delivered  bool
			StatusCode int
			Error      *string
		}
	}
	for i := 0; i < 3; i++ {
		s.Do(s.Token, `mutation($id: ID!) { testEndpoint(id: $id, eventType: "order.created", payload: {orderId: "t"}) { delivered statusCode error } }`,
			map[string]any{"id": epID}).Decode(t, &out)
		if out.TestEndpoint.Delivered || out.TestEndpoint.StatusCode != 500 || out.TestEndpoint.Error == nil {
			t.Fatalf("testEndpoint = %+v", out.TestEndpoint)
		}
	}
	var ep struct {
		Node struct {
			IsActive            bool
			ConsecutiveFailures int
			FailureCount        int
			Health              string
		}
	}
	s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { isActive consecutiveFailures failureCount health } } }`,
		map[string]any{"id": epID}).Decode(t, &ep)
	if !ep.Node.IsActive || ep.Node.ConsecutiveFailures != 0 || ep.Node.FailureCount != 3 || ep.Node.Health != "ATTENTION" {
		t.Fatalf("endpoint after failed tests = %+v", ep.Node)
	}
	if !strings.Contains(string(rc.Requests()[0].Body), `"orderId":"t"`) {
		t.Fatalf("custom test payload not sent: %s", rc.Requests()[0].Body)
	}
}

func TestRetryDelivery_QueuesManualAttempt(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	var healthy atomic.Bool
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })

	healthy.Store(true)
	var out struct{ RetryDelivery struct{ Status string } }
	s.Do(s.Token, `mutation($id: ID!) { retryDelivery(id: $id) { status } }`, map[string]any{"id": d.ID}).Decode(t, &out)
	if out.RetryDelivery.Status != "RETRYING" {
		t.Fatalf("status after retryDelivery = %s, want RETRYING", out.RetryDelivery.Status)
	}
	d = s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	a := d.Attempts.Edges[1].Node
	if d.AttemptCount != 2 || a.AttemptNumber != 2 || a.Trigger != "MANUAL_RETRY" || !a.Succeeded {
		t.Fatalf("delivery = %+v", d)
	}
	// A finished delivery may be sent again; an unknown one is NOT_FOUND.
	s.Do(s.Token, `mutation($id: ID!) { retryDelivery(id: $id) { status } }`, map[string]any{"id": d.ID}).Decode(t, nil)
	s.Do(s.Token, `mutation { retryDelivery(id: "dlv_01JDZ6Q4W8X3M5N7P9R2T4V6X8") { status } }`, nil).WantError(t, "NOT_FOUND")
}

func TestRetryDelivery_RefusedWhileEndpointDisabled(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	s.Do(s.Token, `mutation($id: ID!) { updateEndpoint(id: $id, input: {isActive: false}) { id } }`, map[string]any{"id": epID}).Decode(t, nil)
	r := s.Do(s.Token, `mutation($id: ID!) { retryDelivery(id: $id) { status } }`, map[string]any{"id": d.ID})
	r.WantError(t, "CONFLICT")
	if !strings.Contains(r.Errors[0].Message, "isActive: true") {
		t.Fatalf("message %q does not say how to re-enable", r.Errors[0].Message)
	}
}

func TestReplayDeliveries_RequeuesFailedSince(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	var healthy atomic.Bool
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	since := time.Now().Add(-time.Second)
	var evs []string
	for i := 0; i < 3; i++ {
		evs = append(evs, s.Publish(s.Token, "order.created", map[string]any{"n": i}))
	}
	for _, ev := range evs {
		s.WaitDelivery(s.Token, ev, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	}
	healthy.Store(true)
	var out struct{ ReplayDeliveries struct{ Count int } }
	s.Do(s.Token, `mutation($ep: ID!, $since: Time!) { replayDeliveries(endpointId: $ep, since: $since) { count } }`,
		map[string]any{"ep": epID, "since": since.Format(time.RFC3339Nano)}).Decode(t, &out)
	if out.ReplayDeliveries.Count != 3 {
		t.Fatalf("replayed %d deliveries, want 3", out.ReplayDeliveries.Count)
	}
	for _, ev := range evs {
		s.WaitDelivery(s.Token, ev, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" && d.AttemptCount == 2 })
	}
	// Nothing is left to replay; a time after them matches nothing either.
	s.Do(s.Token, `mutation($ep: ID!, $since: Time!) { replayDeliveries(endpointId: $ep, since: $since) { count } }`,
		map[string]any{"ep": epID, "since": since.Format(time.RFC3339Nano)}).Decode(t, &out)
	if out.ReplayDeliveries.Count != 0 {
		t.Fatalf("second replay queued %d deliveries, want 0", out.ReplayDeliveries.Count)
	}
	s.Do(s.Token, `mutation($ep: ID!) { replayDeliveries(endpointId: $ep, since: "2020-01-01T00:00:00Z", status: PENDING) { count } }`,
		map[string]any{"ep": epID}).WantError(t, "BAD_USER_INPUT")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
