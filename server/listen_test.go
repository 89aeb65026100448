package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/client/webhook"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
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

// clock is a clock a test moves forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
func withClock(c *clock) func(*server.Config) {
	return func(cfg *server.Config) { cfg.EndpointsClock = c.Now; cfg.ListenerSweep = 50 * time.Millisecond }
}

// listenerOf reads a listener's state; found is false once it is gone.
func listenerOf(t *testing.T, s *heraldtest.Server, id string) (l struct {
	Connected             bool
	TTL                   string
	LastSeenAt, ExpiresAt *time.Time
}, found bool) {
	t.Helper()
	var out struct {
		Node *struct {
			Listener *struct {
				Connected             bool
				TTL                   string
				LastSeenAt, ExpiresAt *time.Time
			}
		}
	}
	r := s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { listener { connected ttl lastSeenAt expiresAt } } } }`,
		map[string]any{"id": id})
	if r.Code() == "NOT_FOUND" {
		return l, false
	}
	r.Decode(t, &out)
	if out.Node == nil || out.Node.Listener == nil {
		return l, false
	}
	return *out.Node.Listener, true
}

// A listener lives its TTL after its last session, then goes: its
// waiting deliveries fail, it leaves the endpoints list, its feed says it
// was deleted, and listening again is NOT_FOUND. A session pushes its
// expiry back.
func TestListen_ListenerVanishesAfterItsTTL(t *testing.T) {
	t.Parallel()
	var c clock
	s := heraldtest.Start(t, withClock(&c))
	short, _ := createListener(t, s, s.Token, map[string]any{"eventTypes": []string{"order.*"}, "ttl": "1h", "forwardTo": "http://localhost:3000/a"})
	long, _ := createListener(t, s, s.Token, map[string]any{"eventTypes": []string{"invoice.*"}, "ttl": "3h", "forwardTo": "http://localhost:3000/b"})
	created := time.Now()
	if l, ok := listenerOf(t, s, short); !ok || l.Connected || l.TTL != "1h" || l.ExpiresAt.Sub(created).Round(time.Minute) != time.Hour {
		t.Fatalf("new listener %+v (found %v), want not connected, expiring in 1h", l, ok)
	}

	feed := dial(t, s, heraldtest.TransportWS, s.Token)
	if err := feed.Subscribe("feed", `subscription($id: ID) { endpointUpdated(endpointId: $id) { endpointId reason } }`, map[string]any{"id": short}); err != nil {
		t.Fatal(err)
	}
	waitSubscribed(t, s, 1)
	waiting := s.Publish(s.Token, "order.created", map[string]any{"n": 1})

	// A session of the long one, two hours on, pushes its expiry back to
	// three hours from then; it ends an hour later.
	c.Advance(2 * time.Hour)
	ws := dial(t, s, heraldtest.TransportWS, s.Token)
	if err := ws.Subscribe("1", listenOp, map[string]any{"id": long}); err != nil {
		t.Fatal(err)
	}
	if m := nextListen(t, ws, "1"); m.Kind != "CONNECTED" {
		t.Fatalf("first message %+v", m)
	}
	// The short one is past its TTL: it goes.
	if !heraldtest.Eventually(20*time.Second, func() bool { _, ok := listenerOf(t, s, short); return !ok }) {
		t.Fatal("the listener outlived its TTL")
	}
	for {
		r := feed.Next(t, "feed", 10*time.Second)
		if strings.Contains(string(r.Data), `"reason":"deleted"`) {
			break
		}
	}
	d := s.WaitDelivery(s.Token, waiting, 20*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	if d.AttemptCount != 0 {
		t.Errorf("the expired listener's waiting delivery made %d attempts", d.AttemptCount)
	}
	s.Do(s.Token, `subscription($id: ID!) { listen(listenerId: $id) { kind } }`, map[string]any{"id": short}).WantError(t, "NOT_FOUND")
	var list struct {
		Endpoints struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.Do(s.Token, `{ endpoints(first: 10) { edges { node { id } } } }`, nil).Decode(t, &list)
	if len(list.Endpoints.Edges) != 1 || list.Endpoints.Edges[0].Node.ID != long {
		t.Fatalf("endpoints %+v, want only the long-lived listener", list.Endpoints.Edges)
	}

	if l, ok := listenerOf(t, s, long); !ok || !l.Connected {
		t.Fatalf("held listener %+v (found %v), want connected", l, ok)
	}
	ws.Close()
	if !heraldtest.Eventually(20*time.Second, func() bool { l, _ := listenerOf(t, s, long); return !l.Connected }) {
		t.Fatal("the listener still shows connected after its session closed")
	}
	// Its TTL counts from the session's end (two hours on): at four hours
	// it is still there, at five and a bit it goes.
	c.Advance(2 * time.Hour)
	if l, ok := listenerOf(t, s, long); !ok || l.ExpiresAt.Before(c.Now()) {
		t.Fatalf("listener %+v (found %v), want it there until three hours after its session", l, ok)
	}
	c.Advance(90 * time.Minute)
	if !heraldtest.Eventually(20*time.Second, func() bool { _, ok := listenerOf(t, s, long); return !ok }) {
		t.Fatal("the listener outlived its TTL after its session")
	}
}
