package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/client/webhook"
	"github.com/heraldhq/herald/internal/heraldtest"
)

func TestMain(m *testing.M) { heraldtest.Main(m) }

func newClient(t testing.TB, url, key string, live ...client.LiveConfig) *client.Client {
	t.Helper()
	cfg := client.Config{URL: url, APIKey: key}
	if len(live) > 0 {
		cfg.Live = live[0]
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func ptr[T any](v T) *T { return &v }

func TestClient_PublishesAndReadsEventsBack(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := newClient(t, s.URL, s.Token)
	v, err := c.Viewer(ctx(t))
	if err != nil || v.AppID != s.AppID || !v.IsAdmin {
		t.Fatalf("viewer %+v, %v", v, err)
	}
	ev, err := c.Publish(ctx(t), client.PublishEventInput{
		EventType: "order.created", Payload: json.RawMessage(`{"id":"ord_1","total":12}`),
		IdempotencyKey: ptr("k1"), OrderingKey: ptr("ord_1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Publish(ctx(t), client.PublishEventInput{EventType: "order.created", Payload: json.RawMessage(`{"id":"ord_1","total":12}`), IdempotencyKey: ptr("k1")})
	if err != nil || again.ID != ev.ID {
		t.Fatalf("idempotent publish gave %+v, %v; want event %s", again, err, ev.ID)
	}
	_, err = c.Publish(ctx(t), client.PublishEventInput{EventType: "order.created", Payload: json.RawMessage(`{}`), IdempotencyKey: ptr("k1")})
	if !client.IsCode(err, client.CodeConflict) {
		t.Fatalf("reusing a key for another payload: %v, want CONFLICT", err)
	}
	batch, err := c.PublishMany(ctx(t), []client.PublishEventInput{
		{EventType: "order.updated", Payload: json.RawMessage(`{"n":1}`)},
		{EventType: "order.updated", Payload: json.RawMessage(`{"n":2}`)},
	})
	if err != nil || len(batch) != 2 {
		t.Fatalf("PublishMany: %v, %v", batch, err)
	}
	got, err := c.Event(ctx(t), ev.ID)
	if err != nil || got.EventType != "order.created" || *got.OrderingKey != "ord_1" {
		t.Fatalf("Event: %+v, %v", got, err)
	}
	var payload map[string]any
	if err := json.Unmarshal(got.Payload, &payload); err != nil || payload["total"] != 12.0 {
		t.Fatalf("payload %s", got.Payload)
	}
	page, err := c.Events(ctx(t), client.EventQuery{EventType: "order.*", First: 2})
	if err != nil || len(page.Items) != 2 || page.TotalCount != 3 || !page.HasNextPage {
		t.Fatalf("Events page: %+v, %v", page, err)
	}
	next, err := c.Events(ctx(t), client.EventQuery{EventType: "order.*", First: 2, After: page.EndCursor})
	if err != nil || len(next.Items) != 1 || next.Items[0].ID != ev.ID {
		t.Fatalf("second page: %+v, %v (want the oldest, %s)", next, err, ev.ID)
	}
	if _, err := c.Event(ctx(t), "evt_missing"); !client.IsCode(err, client.CodeNotFound) || !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("missing event: %v", err)
	}
	et, err := c.EventType(ctx(t), "order.created")
	if err != nil || et.Name != "order.created" {
		t.Fatalf("EventType: %+v %v", et, err)
	}
}

func TestClient_ErrorsSayWhatFailed(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	bad := newClient(t, s.URL, "hrld_wrong")
	_, err := bad.Viewer(ctx(t))
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeUnauthenticated || e.Message == "" {
		t.Fatalf("wrong key: %v", err)
	}
	c := newClient(t, s.URL, s.Token)
	_, err = c.Publish(ctx(t), client.PublishEventInput{EventType: "no.such.type", Payload: json.RawMessage(`{}`)})
	if !client.IsCode(err, client.CodeBadUserInput) {
		t.Fatalf("unknown type: %v", err)
	}
	_, _, err = c.CreateEndpoint(ctx(t), client.CreateEndpointInput{Name: "x", Url: client.Ptr("ftp://nope"), EventTypes: []string{"*"}})
	if !errors.As(err, &e) || e.Code != client.CodeBadUserInput || e.Field == "" {
		t.Fatalf("bad endpoint: %v (field %q)", err, e.Field)
	}
	down := newClient(t, "http://127.0.0.1:1", s.Token)
	_, err = down.Viewer(ctx(t))
	var ne *client.NetError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable server: %v", err)
	}
	notHerald := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>nope</html>", http.StatusNotFound)
	})
	_, err = newClient(t, notHerald.URL, s.Token).Viewer(ctx(t))
	if !errors.As(err, &e) || e.Code != client.CodeHTTP || e.HTTPStatus != 404 {
		t.Fatalf("not a herald server: %v", err)
	}
	for _, cfg := range []client.Config{{APIKey: "k"}, {URL: "localhost:8080", APIKey: "k"}, {URL: "http://h"}} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestClient_ManagesEndpointsAndVerifiesTheirDeliveries(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := newClient(t, s.URL, s.Token)
	var mu sync.Mutex
	var verified []string
	var verifier *webhook.Verifier
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		v := verifier
		mu.Unlock()
		msg, err := v.VerifyRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		verified = append(verified, msg.Type)
		mu.Unlock()
	})
	ep, secret, err := c.CreateEndpoint(ctx(t), client.CreateEndpointInput{
		Name: "orders", Url: client.Ptr(rc.Hook("/orders")), EventTypes: []string{"order.*"},
		RateLimit: &client.RateLimitInput{Requests: 100, Per: "1s"},
	})
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("CreateEndpoint: %v %q", err, secret)
	}
	if verifier, err = webhook.NewVerifier(secret); err != nil {
		t.Fatal(err)
	}
	got, err := c.Endpoint(ctx(t), ep.ID)
	if err != nil || got.URL != rc.Hook("/orders") || got.RateLimit == nil || got.RateLimit.Requests != 100 || !got.IsActive {
		t.Fatalf("Endpoint: %+v %v", got, err)
	}
	list, err := c.Endpoints(ctx(t), client.EndpointQuery{})
	if err != nil || list.TotalCount != 1 || list.Items[0].ID != ep.ID {
		t.Fatalf("Endpoints: %+v %v", list, err)
	}
	up, err := c.UpdateEndpoint(ctx(t), ep.ID, client.UpdateEndpointInput{Name: ptr("orders v2"), Filter: ptr(json.RawMessage(`{"data.total":{"$gte":10}}`))})
	if err != nil || up.Name != "orders v2" || up.Filter == nil || up.RateLimit == nil {
		t.Fatalf("UpdateEndpoint: %+v %v (the rate limit must stay)", up, err)
	}
	if up, err = c.ClearEndpointFilter(ctx(t), ep.ID); err != nil || up.Filter != nil {
		t.Fatalf("ClearEndpointFilter: %+v %v", up, err)
	}
	if up, err = c.ClearEndpointRateLimit(ctx(t), ep.ID); err != nil || up.RateLimit != nil {
		t.Fatalf("ClearEndpointRateLimit: %+v %v", up, err)
	}
	tr, err := c.TestEndpoint(ctx(t), ep.ID, "", nil)
	if err != nil || !tr.Delivered || *tr.StatusCode != 200 || tr.Attempt.Trigger != client.AttemptTriggerTest {
		t.Fatalf("TestEndpoint: %+v %v", tr, err)
	}
	ev, err := c.Publish(ctx(t), client.PublishEventInput{EventType: "order.created", Payload: json.RawMessage(`{"total":5}`)})
	if err != nil {
		t.Fatal(err)
	}
	s.WaitDelivery(s.Token, ev.ID, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })

	// After a rotation without overlap, only the new secret verifies.
	_, newSecret, err := c.RotateEndpointSecret(ctx(t), ep.ID, "0s")
	if err != nil || newSecret == secret {
		t.Fatalf("RotateEndpointSecret: %v", err)
	}
	mu.Lock()
	verifier, _ = webhook.NewVerifier(secret)
	mu.Unlock()
	ev2, _ := c.Publish(ctx(t), client.PublishEventInput{EventType: "order.paid", Payload: json.RawMessage(`{}`)})
	d := s.WaitDelivery(s.Token, ev2.ID, 30*time.Second, func(d heraldtest.Delivery) bool { return d.AttemptCount >= 1 })
	if d.LastResponseStatus == nil || *d.LastResponseStatus != 401 {
		t.Fatalf("a delivery signed only with the new secret passed the old one: %+v", d)
	}
	mu.Lock()
	verifier, _ = webhook.NewVerifier(newSecret)
	mu.Unlock()
	if _, err := c.RetryDelivery(ctx(t), d.ID); err != nil {
		t.Fatal(err)
	}
	s.WaitDelivery(s.Token, ev2.ID, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })

	if ep2, err := c.DisableEndpoint(ctx(t), ep.ID); err != nil || ep2.IsActive {
		t.Fatalf("DisableEndpoint: %+v %v", ep2, err)
	}
	if ep2, err := c.EnableEndpoint(ctx(t), ep.ID); err != nil || !ep2.IsActive {
		t.Fatalf("EnableEndpoint: %+v %v", ep2, err)
	}
	if err := c.DeleteEndpoint(ctx(t), ep.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteEndpoint(ctx(t), ep.ID); !client.IsCode(err, client.CodeNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(verified, ",") != "test.ping,order.created,order.paid" {
		t.Fatalf("verified deliveries %v", verified)
	}
}

func TestClient_RetriesAndReplaysDeliveries(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := newClient(t, s.URL, s.Token)
	var mu sync.Mutex
	status := http.StatusInternalServerError
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	})
	ep, _, err := c.CreateEndpoint(ctx(t), client.CreateEndpointInput{Name: "flaky", Url: client.Ptr(rc.URL), EventTypes: []string{"*"},
		RetryPolicy: &client.RetryPolicyInput{MaxAttempts: ptr(1)}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Minute)
	var ids []string
	for range 3 {
		ev, err := c.Publish(ctx(t), client.PublishEventInput{EventType: "order.created", Payload: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	for _, id := range ids {
		s.WaitDelivery(s.Token, id, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	}
	page, err := c.Deliveries(ctx(t), client.DeliveryQuery{EndpointID: ep.ID, Status: client.DeliveryStatusFailed})
	if err != nil || page.TotalCount != 3 {
		t.Fatalf("failed deliveries: %+v %v", page, err)
	}
	detail, err := c.Delivery(ctx(t), page.Items[0].ID)
	if err != nil || len(detail.Attempts) != 1 || *detail.Attempts[0].ResponseStatus != 500 {
		t.Fatalf("Delivery: %+v %v", detail, err)
	}
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	n, err := c.ReplayDeliveries(ctx(t), ep.ID, start, "")
	if err != nil || n != 3 {
		t.Fatalf("ReplayDeliveries: %d %v", n, err)
	}
	for _, id := range ids {
		s.WaitDelivery(s.Token, id, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	}
	// Two at once by ID; one that does not exist is refused with its code.
	retried, refused, err := c.RetryDeliveries(ctx(t), []string{page.Items[0].ID, "dlv_missing", page.Items[1].ID})
	if err != nil || len(retried) != 2 || retried[0].ID != page.Items[0].ID || retried[1].ID != page.Items[1].ID ||
		len(refused) != 1 || refused[0].ID != "dlv_missing" || refused[0].Code != "NOT_FOUND" || refused[0].Message == "" {
		t.Fatalf("RetryDeliveries: %+v, refused %+v, %v", retried, refused, err)
	}
	if !heraldtest.Eventually(30*time.Second, func() bool { return len(rc.Requests()) == 8 }) {
		t.Fatalf("the receiver got %d requests, want 3 failures, 3 replays and 2 retries", len(rc.Requests()))
	}
	if _, err := c.Delivery(ctx(t), "dlv_missing"); !client.IsCode(err, client.CodeNotFound) {
		t.Fatalf("missing delivery: %v", err)
	}
}

func TestClient_OpensAndRevokesPortalSessions(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := newClient(t, s.URL, s.Token)
	ps, err := c.CreatePortalSession(ctx(t), client.CreatePortalSessionInput{ExpiresIn: ptr("10m"), ReadOnly: ptr(true), Name: ptr("Acme")})
	if err != nil || !strings.Contains(ps.URL, "#token="+ps.Token) || !ps.ReadOnly || time.Until(ps.ExpiresAt) > 11*time.Minute {
		t.Fatalf("CreatePortalSession: %+v %v", ps, err)
	}
	portal := newClient(t, s.URL, ps.Token)
	if _, err := portal.Endpoints(ctx(t), client.EndpointQuery{}); err != nil {
		t.Fatalf("the session cannot read: %v", err)
	}
	if err := c.RevokePortalSession(ctx(t), ps.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := portal.Endpoints(ctx(t), client.EndpointQuery{}); !client.IsCode(err, client.CodeUnauthenticated) {
		t.Fatalf("a revoked session still works: %v", err)
	}
	// Every session of the app at once.
	var sessions []*client.Client
	for range 2 {
		ps, err := c.CreatePortalSession(ctx(t), client.CreatePortalSessionInput{})
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, newClient(t, s.URL, ps.Token))
	}
	if n, err := c.RevokePortalSessions(ctx(t), ""); err != nil || n != 2 {
		t.Fatalf("RevokePortalSessions: %d, %v; want the 2 working sessions", n, err)
	}
	for _, p := range sessions {
		if _, err := p.Endpoints(ctx(t), client.EndpointQuery{}); !client.IsCode(err, client.CodeUnauthenticated) {
			t.Fatalf("a revoked session still works: %v", err)
		}
	}
}

func TestClient_ManagesTheCatalog(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := newClient(t, s.URL, s.Token)
	et, err := c.CreateEventType(ctx(t), client.CreateEventTypeInput{
		Name: "invoice.paid", Description: ptr("An invoice was paid."),
		Example:    ptr(json.RawMessage(`{"invoiceId":"inv_1","amount":990}`)),
		JsonSchema: ptr(json.RawMessage(`{"type":"object","required":["invoiceId"]}`)),
	})
	if err != nil || et.Name != "invoice.paid" || et.Description != "An invoice was paid." || et.ArchivedAt != nil {
		t.Fatalf("CreateEventType: %+v, %v", et, err)
	}
	if got, err := c.EventType(ctx(t), "invoice.paid"); err != nil || got.ID != et.ID || got.Example == nil || !strings.Contains(string(*got.Example), `"invoiceId":"inv_1"`) {
		t.Fatalf("EventType: %+v, %v", got, err)
	}
	if _, err := c.CreateEventType(ctx(t), client.CreateEventTypeInput{Name: "invoice.paid"}); !client.IsCode(err, client.CodeConflict) {
		t.Fatalf("the same name again: %v, want CONFLICT", err)
	}
	// Its schema is enforced on publish.
	if _, err := c.Publish(ctx(t), client.PublishEventInput{EventType: "invoice.paid", Payload: json.RawMessage(`{"amount":1}`)}); !client.IsCode(err, client.CodeBadUserInput) {
		t.Fatalf("a payload its schema refuses: %v, want BAD_USER_INPUT", err)
	}
	archived, err := c.ArchiveEventType(ctx(t), et.ID)
	if err != nil || archived.ArchivedAt == nil {
		t.Fatalf("ArchiveEventType: %+v, %v", archived, err)
	}
	if _, err := c.Publish(ctx(t), client.PublishEventInput{EventType: "invoice.paid", Payload: json.RawMessage(`{"invoiceId":"inv_2"}`)}); !client.IsCode(err, client.CodeBadUserInput) {
		t.Fatalf("publishing an archived type: %v, want BAD_USER_INPUT", err)
	}
	back, err := c.UnarchiveEventType(ctx(t), et.ID)
	if err != nil || back.ArchivedAt != nil {
		t.Fatalf("UnarchiveEventType: %+v, %v", back, err)
	}
	if _, err := c.Publish(ctx(t), client.PublishEventInput{EventType: "invoice.paid", Payload: json.RawMessage(`{"invoiceId":"inv_3"}`)}); err != nil {
		t.Fatalf("publishing it again: %v", err)
	}
}
