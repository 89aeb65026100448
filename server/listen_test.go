package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/client/webhook"
	"github.com/heraldhq/herald/internal/heraldtest"
)

const listenOp = `subscription($id: ID!) { listen(listenerId: $id) {
  kind waiting delivery { deliveryId eventId eventType attempt token body headers { name value } timeoutMs } } }`

const reportOp = `mutation($in: ListenerReportInput!) { reportListenerDelivery(input: $in) { deliveryId } }`

type listenMessage struct {
	Kind     string
	Waiting  *int
	Delivery *struct {
		DeliveryID, EventID, EventType, Token, Body string
		Attempt, TimeoutMs                          int
		Headers                                     []struct{ Name, Value string }
	}
}

func nextListen(t *testing.T, c *heraldtest.WS, id string) listenMessage {
	t.Helper()
	r := c.Next(t, id, 20*time.Second)
	if r.Complete || len(r.Errors) > 0 {
		t.Fatalf("listen ended: complete=%v errors=%+v", r.Complete, r.Errors)
	}
	var out struct{ Listen listenMessage }
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
	return out.Listen
}

// createListener opens a listener for eventTypes and returns its ID and
// secret.
func createListener(t *testing.T, s *heraldtest.Server, token string, input map[string]any) (id, secret string) {
	t.Helper()
	var out struct {
		CreateListener struct {
			Secret   string
			Endpoint struct{ ID, Type, URL string }
		}
	}
	s.Do(token, `mutation($in: CreateListenerInput!) { createListener(input: $in) { secret endpoint { id type url } } }`,
		map[string]any{"in": input}).Decode(t, &out)
	if out.CreateListener.Endpoint.Type != "LISTENER" {
		t.Fatalf("createListener made a %q endpoint", out.CreateListener.Endpoint.Type)
	}
	return out.CreateListener.Endpoint.ID, out.CreateListener.Secret
}

// A listen subscription says how many deliveries wait, pushes each signed
// as an HTTP endpoint gets it, and records the reported local answer as the
// attempt; a report whose attempt ended is refused.
func TestListen_PushesSignedDeliveriesAndRecordsReports(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	id, secret := createListener(t, s, s.Token, map[string]any{"eventTypes": []string{"order.*"}, "forwardTo": "http://localhost:3000/hooks"})
	early := s.Publish(s.Token, "order.created", map[string]any{"n": 1})

	c := dial(t, s, heraldtest.TransportWS, s.Token)
	if err := c.Subscribe("1", listenOp, map[string]any{"id": id}); err != nil {
		t.Fatal(err)
	}
	if m := nextListen(t, c, "1"); m.Kind != "CONNECTED" || m.Waiting == nil || *m.Waiting != 1 {
		t.Fatalf("first message %+v, want CONNECTED with 1 waiting", m)
	}
	m := nextListen(t, c, "1")
	if m.Kind != "DELIVERY" || m.Delivery.EventID != early || m.Delivery.Attempt != 1 {
		t.Fatalf("pushed %+v, want the waiting event's first attempt", m)
	}
	h := http.Header{}
	for _, x := range m.Delivery.Headers {
		h.Set(x.Name, x.Value)
	}
	if err := webhook.Verify(secret, h, []byte(m.Delivery.Body)); err != nil {
		t.Fatalf("the pushed delivery does not verify with the listener's secret: %v", err)
	}
	in := map[string]any{"listenerId": id, "deliveryId": m.Delivery.DeliveryID, "token": m.Delivery.Token, "status": 200, "body": "ok", "durationMs": 3}
	if err := c.Subscribe("2", reportOp, map[string]any{"in": in}); err != nil {
		t.Fatal(err)
	}
	if r := c.Next(t, "2", 10*time.Second); len(r.Errors) > 0 {
		t.Fatalf("report refused: %+v", r.Errors)
	}
	d := s.WaitDelivery(s.Token, early, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	if d.AttemptCount != 1 {
		t.Fatalf("delivery %+v", d)
	}
	// The same report again: its attempt ended.
	r := s.Do(s.Token, reportOp, map[string]any{"in": in})
	r.WantError(t, "CONFLICT")
	if r.Reason() != "STALE_REPORT" {
		t.Fatalf("stale report: reason %q", r.Reason())
	}
	var ep struct {
		Node struct {
			URL      string
			Listener struct {
				Connected bool
				TTL       string
			}
		}
	}
	s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { url listener { connected ttl } } } }`, map[string]any{"id": id}).Decode(t, &ep)
	if !ep.Node.Listener.Connected || ep.Node.Listener.TTL != "24h" || !strings.HasPrefix(ep.Node.URL, "http://localhost:3000") {
		t.Fatalf("listener %+v", ep.Node)
	}
}
