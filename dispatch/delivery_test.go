package dispatch_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/signing"
)

// fastRetries is a retry policy for tests: attempts follow each other
// quickly.
func fastRetries(maxAttempts int) map[string]any {
	return map[string]any{"maxAttempts": maxAttempts, "initialDelay": "30ms", "backoffMultiplier": 1, "maxDelay": "1s"}
}

func TestDelivery_SendsSignedEnvelope(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	epID, secret := s.CreateEndpoint(s.Token, map[string]any{
		"url":        rc.Hook("/hooks/orders"),
		"eventTypes": []string{"order.*"},
		"headers":    []map[string]string{{"name": "X-Tenant", "value": "acme"}},
	})
	evID := s.Publish(s.Token, "order.created", map[string]any{"orderId": "ord_1", "total": 4990})

	req := rc.WaitRequests(t, 1, 5*time.Second)[0]
	if req.Method != http.MethodPost || req.Path != "/hooks/orders" {
		t.Fatalf("got %s %s, want POST /hooks/orders", req.Method, req.Path)
	}
	for name, want := range map[string]string{
		"Content-Type":        "application/json",
		"Webhook-Id":          evID,
		"X-Herald-Event-Type": "order.created",
		"X-Herald-Attempt":    "1",
		"X-Tenant":            "acme",
	} {
		if got := req.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if ua := req.Header.Get("User-Agent"); !strings.HasPrefix(ua, "Herald/") {
		t.Errorf("User-Agent = %q, want Herald/<version>", ua)
	}
	if err := signing.Verify(secret, req.Header, req.Body, 5*time.Minute, time.Now()); err != nil {
		t.Fatalf("signature does not verify with the endpoint secret: %v", err)
	}
	var env struct {
		ID        string
		Type      string
		Timestamp time.Time
		Data      map[string]any
	}
	if err := json.Unmarshal(req.Body, &env); err != nil {
		t.Fatalf("body is not the JSON envelope: %v: %s", err, req.Body)
	}
	if env.ID != evID || env.Type != "order.created" || env.Data["orderId"] != "ord_1" || env.Timestamp.IsZero() {
		t.Fatalf("envelope = %+v", env)
	}

	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	if d.EndpointID != epID || d.AttemptCount != 1 || d.LastResponseStatus == nil || *d.LastResponseStatus != 200 {
		t.Fatalf("delivery = %+v", d)
	}
	a := d.Attempts.Edges[0].Node
	if !a.Succeeded || a.Trigger != "SCHEDULED" || a.RequestURL != rc.Hook("/hooks/orders") {
		t.Fatalf("attempt = %+v", a)
	}
}

func TestDelivery_HeraldSignatureHeaderIsHexHMACOfBody(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	_, secret := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	s.Publish(s.Token, "contact.created", map[string]any{"contactId": "c1"})
	req := rc.WaitRequests(t, 1, 5*time.Second)[0]
	key, err := signing.DecodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	want := string(signing.NewSigner(key).AppendBodyHex(nil, req.Body))
	if got := req.Header.Get("X-Herald-Signature"); got != want {
		t.Fatalf("X-Herald-Signature = %q, want %q", got, want)
	}
}

func TestPublish_FansOutToMatchingActiveEndpoints(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	subscribed := map[string][]string{
		"all":            {"*"},
		"orders":         {"order.*"},
		"order-created":  {"order.created"},
		"contacts":       {"contact.*"},
		"order-refunded": {"order.refunded"},
	}
	want := map[string]bool{}
	for name, types := range subscribed {
		id, _ := s.CreateEndpoint(s.Token, map[string]any{"name": name, "url": rc.Hook("/" + name), "eventTypes": types})
		if name == "all" || name == "orders" || name == "order-created" {
			want[id] = true
		}
	}
	inactive, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "inactive", "url": rc.Hook("/inactive"), "isActive": false})

	var out struct {
		PublishEvent struct {
			ID            string
			DeliveryCount int
		}
	}
	s.Do(s.Token, `mutation { publishEvent(input: {eventType: "order.created", payload: {orderId: "o"}}) { id deliveryCount } }`, nil).Decode(t, &out)
	if out.PublishEvent.DeliveryCount != 3 {
		t.Fatalf("deliveryCount = %d, want 3", out.PublishEvent.DeliveryCount)
	}
	ds := s.Deliveries(s.Token, out.PublishEvent.ID)
	if len(ds) != 3 {
		t.Fatalf("got %d deliveries, want 3", len(ds))
	}
	for _, d := range ds {
		if !want[d.EndpointID] || d.EndpointID == inactive {
			t.Errorf("delivery to unexpected endpoint %s", d.EndpointID)
		}
	}
	rc.WaitRequests(t, 3, 5*time.Second)
}

func TestPublish_IdempotencyKeyReturnsOriginalWithoutNewDeliveries(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	publish := func(payload string) *heraldtest.Response {
		return s.Do(s.Token, `mutation($p: JSON!) { publishEvent(input: {eventType: "order.paid", payload: $p, idempotencyKey: "pay-42"}) { id } }`,
			map[string]any{"p": map[string]any{"v": payload}})
	}
	var out struct{ PublishEvent struct{ ID string } }
	publish("a").Decode(t, &out)
	first := out.PublishEvent.ID
	publish("a").Decode(t, &out)
	if out.PublishEvent.ID != first {
		t.Fatalf("second publish with the same key returned %s, want the original %s", out.PublishEvent.ID, first)
	}
	// A batch repeating the key (and repeating it inside the batch) adds
	// nothing either.
	var batch struct{ PublishEvents []struct{ ID string } }
	s.Do(s.Token, `mutation { publishEvents(input: [
		{eventType: "order.paid", payload: {v: "a"}, idempotencyKey: "pay-42"},
		{eventType: "order.paid", payload: {}, idempotencyKey: "pay-43"},
		{eventType: "order.paid", payload: {}, idempotencyKey: "pay-43"}]) { id } }`, nil).Decode(t, &batch)
	ids := batch.PublishEvents
	if len(ids) != 3 || ids[0].ID != first || ids[1].ID != ids[2].ID || ids[1].ID == first {
		t.Fatalf("batch ids = %+v (first %s)", ids, first)
	}
	rc.WaitRequests(t, 2, 5*time.Second)
	var events struct{ Events struct{ TotalCount int } }
	s.Do(s.Token, `{ events { totalCount } }`, nil).Decode(t, &events)
	if events.Events.TotalCount != 2 {
		t.Fatalf("stored %d events, want 2", events.Events.TotalCount)
	}
	if n := len(s.Deliveries(s.Token, first)); n != 1 {
		t.Fatalf("event %s has %d deliveries, want 1", first, n)
	}
	time.Sleep(100 * time.Millisecond) // give a duplicate delivery a chance to show up
	if n := len(rc.Requests()); n != 2 {
		t.Fatalf("receiver got %d requests, want 2", n)
	}
}

func TestPublish_IdempotencyKeyReusedForAnotherEventIsConflict(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	publish := func(typ string, payload any) *heraldtest.Response {
		return s.Do(s.Token, `mutation($t: String!, $p: JSON!) { publishEvent(input: {eventType: $t, payload: $p, idempotencyKey: "k-1"}) { id } }`,
			map[string]any{"t": typ, "p": payload})
	}
	publish("order.paid", map[string]any{"orderId": "o1", "total": 10}).Decode(t, nil)
	// The same event again, keys in another order: the original.
	publish("order.paid", map[string]any{"total": 10, "orderId": "o1"}).Decode(t, nil)
	for _, tc := range []struct {
		name    string
		typ     string
		payload any
	}{
		{"other payload", "order.paid", map[string]any{"orderId": "o2", "total": 10}},
		{"other type", "order.created", map[string]any{"orderId": "o1", "total": 10}},
	} {
		r := publish(tc.typ, tc.payload)
		r.WantError(t, "CONFLICT")
		if r.Errors[0].Extensions["reason"] != "IDEMPOTENCY_KEY_REUSED" || !strings.Contains(r.Errors[0].Message, "k-1") {
			t.Errorf("%s: error = %s", tc.name, r.Body)
		}
	}
	var events struct{ Events struct{ TotalCount int } }
	s.Do(s.Token, `{ events { totalCount } }`, nil).Decode(t, &events)
	if events.Events.TotalCount != 1 {
		t.Fatalf("stored %d events, want 1", events.Events.TotalCount)
	}
}

// Concurrent publishes share one transaction and one statement per kind
// of row; one refused among them (a key reused for another event) fails
// alone, and the others are stored once each.
func TestPublish_RefusedPublishFailsAloneInASharedCommit(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store func(*serverConfig)) {
		s := heraldtest.Start(t, store)
		rc := heraldtest.NewReceiver(t, nil)
		s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
		publish := func(key string, v int) *heraldtest.Response {
			return s.Do(s.Token, `mutation($k: String!, $v: Int!) { publishEvent(input: {eventType: "order.paid", payload: {v: $v}, idempotencyKey: $k}) { id } }`,
				map[string]any{"k": key, "v": v})
		}
		var orig struct{ PublishEvent struct{ ID string } }
		publish("taken", 0).Decode(t, &orig)
		const n = 48
		newEvents := map[string]bool{}
		for round := 0; ; round++ {
			ids := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var out struct{ PublishEvent struct{ ID string } }
					switch {
					case i%6 == 0: // reused for another payload
						publish("taken", 1).WantError(t, "CONFLICT")
					case i%6 == 1: // the original again
						publish("taken", 0).Decode(t, &out)
						if out.PublishEvent.ID != orig.PublishEvent.ID {
							t.Errorf("repeated publish returned %s, want the original %s", out.PublishEvent.ID, orig.PublishEvent.ID)
						}
					default:
						publish(fmt.Sprintf("r%d-%d", round, i), i).Decode(t, &out)
						ids[i] = out.PublishEvent.ID
					}
				}()
			}
			wg.Wait()
			for _, id := range ids {
				if id != "" {
					newEvents[id] = true
				}
			}
			if t.Failed() {
				return
			}
			if shared := sharedCommits(t, s); shared > 0 {
				break
			}
			if round == 9 {
				t.Fatal("no two publishes shared a commit in 10 rounds")
			}
		}
		want := len(newEvents) + 1
		reqs := rc.WaitRequests(t, want, 20*time.Second)
		time.Sleep(100 * time.Millisecond) // give a duplicate a chance to show up
		if got := len(rc.Requests()); got != want {
			t.Fatalf("receiver got %d requests, want %d", got, want)
		}
		seen := map[string]bool{}
		for _, r := range reqs {
			seen[r.Header.Get("Webhook-Id")] = true
		}
		for id := range newEvents {
			if !seen[id] {
				t.Fatalf("event %s was not delivered", id)
			}
		}
		var events struct{ Events struct{ TotalCount int } }
		s.Do(s.Token, `{ events { totalCount } }`, nil).Decode(t, &events)
		if events.Events.TotalCount != want {
			t.Fatalf("stored %d events, want %d", events.Events.TotalCount, want)
		}
	})
}

// sharedCommits returns how many of the publisher's commits stored more
// than one request.
func sharedCommits(t *testing.T, s *heraldtest.Server) uint64 {
	t.Helper()
	h := histogram(t, s, "herald_publisher_batch_size")
	for _, b := range h.Bucket {
		if b.GetUpperBound() == 1 {
			return h.GetSampleCount() - b.GetCumulativeCount()
		}
	}
	t.Fatal("herald_publisher_batch_size has no bucket le=1")
	return 0
}

// histogram returns a histogram of the server's /metrics (one without
// labels), failing the test if there is none.
func histogram(t *testing.T, s *heraldtest.Server, name string) *dto.Histogram {
	t.Helper()
	f := s.Metrics()[name]
	if f == nil || len(f.Metric) == 0 || f.Metric[0].Histogram == nil {
		t.Fatalf("/metrics has no histogram %s", name)
	}
	return f.Metric[0].Histogram
}

func TestPublish_RejectsBadEvents(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.MaxPayloadBytes = 1024 })
	s.Do(s.Token, `mutation { createEventType(input: {name: "invoice.paid", jsonSchema: {type: "object", required: ["amount"], properties: {amount: {type: "integer"}}}}) { id } }`, nil).Decode(t, nil)
	var archived struct{ CreateEventType struct{ ID string } }
	s.Do(s.Token, `mutation { createEventType(input: {name: "invoice.voided"}) { id } }`, nil).Decode(t, &archived)
	s.Do(s.Token, `mutation($id: ID!) { archiveEventType(id: $id) { id } }`, map[string]any{"id": archived.CreateEventType.ID}).Decode(t, nil)

	cases := []struct {
		name      string
		eventType string
		payload   any
		field     string
		mention   string
	}{
		{"unknown type", "invoice.created", map[string]any{}, "input.eventType", "unknown event type"},
		{"archived type", "invoice.voided", map[string]any{}, "input.eventType", "archived"},
		{"malformed type", "Invoice Paid", map[string]any{}, "input.eventType", "not a valid event type"},
		{"reserved type", "webhook.failed", map[string]any{}, "input.eventType", "reserved"},
		{"payload not an object", "order.created", []int{1, 2}, "input.payload", "JSON object"},
		{"payload too large", "order.created", map[string]any{"blob": strings.Repeat("x", 2000)}, "input.payload", "limit"},
		{"schema violation", "invoice.paid", map[string]any{"amount": "ten"}, "input.payload", "JSON Schema"},
		{"schema missing field", "invoice.paid", map[string]any{}, "input.payload", "amount"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(s.Token, `mutation($t: String!, $p: JSON!) { publishEvent(input: {eventType: $t, payload: $p}) { id } }`,
				map[string]any{"t": c.eventType, "p": c.payload})
			r.WantError(t, "BAD_USER_INPUT")
			if r.Field() != c.field || !strings.Contains(r.Errors[0].Message, c.mention) {
				t.Fatalf("error = %q (field %q), want field %q mentioning %q", r.Errors[0].Message, r.Field(), c.field, c.mention)
			}
		})
	}
	s.Do(s.Token, `mutation { publishEvent(input: {eventType: "invoice.paid", payload: {amount: 10}}) { id } }`, nil).Decode(t, nil)

	t.Run("batch names the index", func(t *testing.T) {
		r := s.Do(s.Token, `mutation { publishEvents(input: [{eventType: "order.created", payload: {}}, {eventType: "nope.nope", payload: {}}]) { id } }`, nil)
		r.WantError(t, "BAD_USER_INPUT")
		if r.Field() != "input[1].eventType" {
			t.Fatalf("field = %q, want input[1].eventType", r.Field())
		}
	})
	t.Run("batch over 100", func(t *testing.T) {
		in := make([]map[string]any, 101)
		for i := range in {
			in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{}}
		}
		s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).WantError(t, "BAD_USER_INPUT")
	})
}

func TestPublish_AppMayAcceptUnknownTypes(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	s.Do(s.Token, `mutation($id: ID!) { updateApp(id: $id, input: {acceptUnknownEventTypes: true}) { id } }`, map[string]any{"id": s.AppID}).Decode(t, nil)
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "eventTypes": []string{"shipment.*"}})
	s.Publish(s.Token, "shipment.delayed", map[string]any{"id": "s1"})
	rc.WaitRequests(t, 1, 5*time.Second)
}

// TestDelivery_EachEventArrivesOnceUnderLoad publishes from many callers at
// once, so deliveries reach the scheduler both by hand-off and by claims,
// and checks that no event is sent twice when nothing fails.
func TestDelivery_EachEventArrivesOnceUnderLoad(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) {
		c.PerEndpoint = 4
		c.PollInterval = time.Millisecond // claims race the hand-offs constantly
	})
	var mu sync.Mutex
	seen := map[string]int{}
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Webhook-Id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	const callers, each = 8, 40
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := s.Do(s.Token, `mutation($p: JSON!) { publishEvent(input: {eventType: "order.created", payload: $p}) { id } }`,
					map[string]any{"p": map[string]any{"c": c, "i": i}})
				if len(r.Errors) > 0 {
					t.Errorf("publish: %s", r.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
	rc.WaitRequests(t, callers*each, 20*time.Second)
	time.Sleep(200 * time.Millisecond) // a late duplicate would arrive by now
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != callers*each {
		t.Fatalf("receiver saw %d distinct events, want %d", len(seen), callers*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
	}
}
