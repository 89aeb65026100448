package server_test

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

var protocols = []string{heraldtest.TransportWS, heraldtest.LegacyWS}

func bearer(token string) map[string]any { return map[string]any{"Authorization": "Bearer " + token} }

// dial opens an initialised websocket connection.
func dial(t *testing.T, s *heraldtest.Server, proto, token string) *heraldtest.WS {
	t.Helper()
	c, _, err := s.DialWS(proto, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", proto, err)
	}
	t.Cleanup(c.Close)
	if err := c.Init(bearer(token)); err != nil {
		t.Fatalf("init %s: %v", proto, err)
	}
	return c
}

type deliveryChange struct {
	Kind           string
	DeliveryID     string
	EventID        string
	EndpointID     string
	EventType      string
	Status         string
	AttemptNumber  *int
	AttemptID      *string
	ResponseStatus *int
	DurationMs     *int
	Error          *string
	NextAttemptAt  *time.Time
	Delivery       *struct{ ID, Status string }
}

func nextChange(t *testing.T, c *heraldtest.WS, id string) deliveryChange {
	t.Helper()
	r := c.Next(t, id, 5*time.Second)
	if r.Complete || len(r.Errors) > 0 {
		t.Fatalf("subscription %s ended: complete=%v errors=%+v", id, r.Complete, r.Errors)
	}
	var out struct{ DeliveryUpdated deliveryChange }
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
	return out.DeliveryUpdated
}

const deliverySubscription = `subscription($ep: ID, $t: String, $s: DeliveryStatus) {
	deliveryUpdated(endpointId: $ep, eventType: $t, status: $s) {
		kind deliveryId eventId endpointId eventType status attemptNumber attemptId responseStatus durationMs error nextAttemptAt
		delivery { id status }
	}
}`

func TestSubscription_StreamsDeliveryLifecycle(t *testing.T) {
	t.Parallel()
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := heraldtest.Start(t)
			rc := heraldtest.NewReceiver(t, nil)
			epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
			c := dial(t, s, proto, s.Token)
			if err := c.Subscribe("1", deliverySubscription, nil); err != nil {
				t.Fatal(err)
			}
			waitSubscribed(t, s, 1)
			evID := s.Publish(s.Token, "order.created", map[string]any{"orderId": "o1"})

			created := nextChange(t, c, "1")
			if created.Kind != "CREATED" || created.Status != "PENDING" || created.EventID != evID || created.EndpointID != epID || created.EventType != "order.created" {
				t.Fatalf("first update = %+v", created)
			}
			started := nextChange(t, c, "1")
			if started.Kind != "ATTEMPT_STARTED" || started.Status != "SENDING" || *started.AttemptNumber != 1 {
				t.Fatalf("second update = %+v", started)
			}
			finished := nextChange(t, c, "1")
			if finished.Kind != "ATTEMPT_FINISHED" || finished.Status != "SUCCEEDED" || *finished.ResponseStatus != 200 ||
				finished.DurationMs == nil || finished.AttemptID == nil || finished.Delivery == nil || finished.Delivery.Status != "SUCCEEDED" {
				t.Fatalf("third update = %+v", finished)
			}
		})
	}
}

func TestSubscription_ReportsRetryScheduleAndFailure(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": map[string]any{"maxAttempts": 2, "initialDelay": "50ms", "backoffMultiplier": 1, "maxDelay": "1s"}})
	c := dial(t, s, heraldtest.TransportWS, s.Token)
	c.Subscribe("f", deliverySubscription, map[string]any{"s": "RETRYING"})
	c.Subscribe("g", deliverySubscription, map[string]any{"s": "FAILED"})
	waitSubscribed(t, s, 2)
	s.Publish(s.Token, "order.created", map[string]any{})
	retry := nextChange(t, c, "f")
	if retry.NextAttemptAt == nil || retry.Error == nil || *retry.ResponseStatus != 503 || *retry.AttemptNumber != 1 {
		t.Fatalf("RETRYING update = %+v", retry)
	}
	failed := nextChange(t, c, "g")
	if failed.Kind != "ATTEMPT_FINISHED" || *failed.AttemptNumber != 2 || failed.NextAttemptAt != nil {
		t.Fatalf("FAILED update = %+v", failed)
	}
}

func waitSubscribed(t *testing.T, s *heraldtest.Server, n int) {
	t.Helper()
	if !heraldtest.Eventually(5*time.Second, func() bool { _, subs := s.LiveStats(); return subs >= n }) {
		_, subs := s.LiveStats()
		t.Fatalf("%d subscriptions active, want %d", subs, n)
	}
}

func TestSubscription_Filters(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	a, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "ep a", "url": rc.Hook("/a")})
	b, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "ep b", "url": rc.Hook("/b")})
	c := dial(t, s, heraldtest.TransportWS, s.Token)
	c.Subscribe("ep", deliverySubscription, map[string]any{"ep": b})
	c.Subscribe("type", deliverySubscription, map[string]any{"t": "contact.*"})
	c.Subscribe("status", deliverySubscription, map[string]any{"s": "SUCCEEDED", "ep": a})
	waitSubscribed(t, s, 3)
	s.Publish(s.Token, "order.created", map[string]any{})
	s.Publish(s.Token, "contact.created", map[string]any{})

	for i := 0; i < 6; i++ { // two events × three changes, endpoint b only
		if got := nextChange(t, c, "ep"); got.EndpointID != b {
			t.Fatalf("endpoint filter let through %+v", got)
		}
	}
	for i := 0; i < 6; i++ { // one contact event × two endpoints × three changes
		if got := nextChange(t, c, "type"); got.EventType != "contact.created" {
			t.Fatalf("event type filter let through %+v", got)
		}
	}
	for i := 0; i < 2; i++ { // two events succeed at endpoint a
		if got := nextChange(t, c, "status"); got.Status != "SUCCEEDED" || got.EndpointID != a {
			t.Fatalf("status filter let through %+v", got)
		}
	}
	// Bad arguments are refused with a code.
	c.Subscribe("bad", deliverySubscription, map[string]any{"t": "Not A Type"})
	if r := c.Next(t, "bad", 5*time.Second); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
		t.Fatalf("bad pattern: %+v", r)
	}
}

func TestSubscription_EndpointAndEventFeeds(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	c := dial(t, s, heraldtest.LegacyWS, s.Token)
	c.Subscribe("ep", `subscription($id: ID) { endpointUpdated(endpointId: $id) { endpointId reason endpoint { health successCount } } }`, map[string]any{"id": epID})
	c.Subscribe("ev", `subscription { eventPublished(eventType: "order.*") { eventId eventType deliveryCount event { id } } }`, nil)
	waitSubscribed(t, s, 2)
	evID := s.Publish(s.Token, "order.paid", map[string]any{})

	r := c.Next(t, "ev", 5*time.Second)
	var ev struct {
		EventPublished struct {
			EventID       string
			DeliveryCount int
			Event         struct{ ID string }
		}
	}
	if err := json.Unmarshal(r.Data, &ev); err != nil || ev.EventPublished.EventID != evID || ev.EventPublished.DeliveryCount != 1 || ev.EventPublished.Event.ID != evID {
		t.Fatalf("eventPublished = %s (%v)", r.Data, err)
	}
	var ep struct {
		EndpointUpdated struct {
			EndpointID string
			Reason     string
			Endpoint   struct {
				Health       string
				SuccessCount int
			}
		}
	}
	r = c.Next(t, "ep", 5*time.Second)
	if err := json.Unmarshal(r.Data, &ep); err != nil || ep.EndpointUpdated.EndpointID != epID || ep.EndpointUpdated.Endpoint.Health != "LIVE" || ep.EndpointUpdated.Endpoint.SuccessCount != 1 {
		t.Fatalf("endpointUpdated = %s (%v)", r.Data, err)
	}
	// Disabling the endpoint is announced too.
	s.Do(s.Token, `mutation($id: ID!) { updateEndpoint(id: $id, input: {isActive: false}) { id } }`, map[string]any{"id": epID}).Decode(t, nil)
	r = c.Next(t, "ep", 5*time.Second)
	if err := json.Unmarshal(r.Data, &ep); err != nil || ep.EndpointUpdated.Endpoint.Health != "ATTENTION" {
		t.Fatalf("endpointUpdated after disabling = %s (%v)", r.Data, err)
	}
}

func TestSubscription_AuthFailureClosesWithUnauthorized(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	for _, proto := range protocols {
		for name, payload := range map[string]map[string]any{
			"no key":      {},
			"garbage key": {"Authorization": "Bearer not-a-key"},
			"unknown key": {"Authorization": "Bearer hrld_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		} {
			t.Run(proto+"/"+name, func(t *testing.T) {
				c, _, err := s.DialWS(proto, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := c.Init(payload); err == nil {
					t.Fatal("connection_init accepted")
				}
				code, reason, ok := c.WaitClosed(5 * time.Second)
				if !ok || code != server.CloseUnauthorized || reason == "" {
					t.Fatalf("closed with %d %q (closed: %v), want %d with a reason", code, reason, ok, server.CloseUnauthorized)
				}
			})
		}
	}
	t.Run("key in the upgrade request header", func(t *testing.T) {
		c, _, err := s.DialWS(heraldtest.TransportWS, http.Header{"Authorization": {"Bearer " + s.Token}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Init(nil); err != nil {
			t.Fatalf("init with the key in the upgrade header: %v", err)
		}
	})
}

func TestSubscription_AppsAreIsolated(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	_, tokenB := s.NewApp("other")
	rc := heraldtest.NewReceiver(t, nil)
	epA, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})

	cB := dial(t, s, heraldtest.TransportWS, tokenB)
	cB.Subscribe("all", deliverySubscription, nil)
	cB.Subscribe("events", `subscription { eventPublished { eventId } }`, nil)
	cB.Subscribe("theirs", deliverySubscription, map[string]any{"ep": epA})
	if r := cB.Next(t, "theirs", 5*time.Second); len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "NOT_FOUND" {
		t.Fatalf("subscribing to another app's endpoint: %+v", r)
	}
	cA := dial(t, s, heraldtest.TransportWS, s.Token)
	cA.Subscribe("mine", deliverySubscription, nil)
	waitSubscribed(t, s, 3)
	s.Publish(s.Token, "order.created", map[string]any{})
	for i := 0; i < 3; i++ {
		nextChange(t, cA, "mine")
	}
	timeout := time.After(300 * time.Millisecond)
	for {
		select {
		case m := <-cB.Messages():
			if m.Type == "next" || m.Type == "data" {
				t.Fatalf("app B saw app A's update: %+v", m)
			}
		case <-timeout:
			return
		}
	}
}

func TestSubscription_SlowConsumerIsToldAndDisconnected(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.SubscriberBuffer = 4 })
	s.CreateEndpoint(s.Token, map[string]any{"url": heraldtest.NewReceiver(t, nil).URL})
	c := dial(t, s, heraldtest.TransportWS, s.Token)
	c.Subscribe("1", `subscription { deliveryUpdated { kind } }`, nil)
	waitSubscribed(t, s, 1)
	in := make([]map[string]any, 100)
	for i := range in {
		in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"i": i}}
	}
	// A burst of 100 deliveries created in one transaction overflows a
	// buffer of 4 before the subscriber can read.
	s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, nil)
	var last heraldtest.Result
	for i := 0; i < 200; i++ {
		last = c.Next(t, "1", 5*time.Second)
		if len(last.Errors) > 0 || last.Complete {
			break
		}
	}
	if len(last.Errors) == 0 || last.Errors[0].Extensions["reason"] != "SUBSCRIBER_LAGGED" || !strings.Contains(last.Errors[0].Message, "fell too far behind") {
		t.Fatalf("slow subscriber ended with %+v, want a SUBSCRIBER_LAGGED error", last)
	}
	if !heraldtest.Eventually(5*time.Second, func() bool { _, subs := s.LiveStats(); return subs == 0 }) {
		t.Fatal("lagged subscription still registered")
	}
	// The connection itself stays usable.
	c.Subscribe("2", `subscription { eventPublished { eventId } }`, nil)
	waitSubscribed(t, s, 1)
	s.Publish(s.Token, "order.created", map[string]any{})
	if r := c.Next(t, "2", 5*time.Second); len(r.Errors) > 0 || r.Complete {
		t.Fatalf("resubscribing after lag: %+v", r)
	}
}

func TestSubscription_VanishingClientsLeaveNothingBehind(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	// Warm up pools so they do not count as leaks.
	s.Publish(s.Token, "order.created", map[string]any{})
	rc.WaitRequests(t, 1, 5*time.Second)
	baseline := runtime.NumGoroutine()

	var clients []*heraldtest.WS
	for i := 0; i < 10; i++ {
		c := dial(t, s, protocols[i%2], s.Token)
		c.Subscribe("a", deliverySubscription, nil)
		c.Subscribe("b", `subscription { endpointUpdated { reason } }`, nil)
		clients = append(clients, c)
	}
	waitSubscribed(t, s, 20)
	s.Publish(s.Token, "order.created", map[string]any{})
	for _, c := range clients {
		c.Close() // no close handshake, no complete messages
	}
	if !heraldtest.Eventually(10*time.Second, func() bool {
		conns, subs := s.LiveStats()
		return conns == 0 && subs == 0
	}) {
		conns, subs := s.LiveStats()
		t.Fatalf("after clients vanished: %d connections and %d subscriptions remain", conns, subs)
	}
	if !heraldtest.Eventually(10*time.Second, func() bool { return runtime.NumGoroutine() <= baseline+2 }) {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines: %d before, %d after the clients vanished\n%s", baseline, runtime.NumGoroutine(), buf[:n])
	}
}

// TestSubscription_ConnectionLeavesTheHTTPServersGoroutine proves that a
// websocket connection's read loop runs on a goroutine of its own once
// upgraded, not at the bottom of the HTTP server's and every middleware's
// frames, which the garbage collector would scan at every cycle for every
// live connection.
func TestSubscription_ConnectionLeavesTheHTTPServersGoroutine(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	for _, proto := range protocols {
		c := dial(t, s, proto, s.Token)
		if err := c.Subscribe("a", deliverySubscription, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitSubscribed(t, s, len(protocols))
	buf := make([]byte, 8<<20)
	stacks := strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
	loops := 0
	for _, st := range stacks {
		if !strings.Contains(st, "(*wsConnection).run(") {
			continue
		}
		loops++
		if strings.Contains(st, "net/http.(*conn).serve(") {
			t.Errorf("a websocket read loop runs inside the HTTP server's goroutine:\n%s", st)
		}
	}
	if loops < len(protocols) {
		t.Fatalf("found %d websocket read loops, want %d (this test reads goroutine stacks by gqlgen's names)", loops, len(protocols))
	}
}

func TestSubscription_Limits(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) {
		c.MaxSubscriptionsPerConnection = 2
		c.MaxConnectionsPerKey = 2
	})
	c := dial(t, s, heraldtest.TransportWS, s.Token)
	c.Subscribe("1", `subscription { eventPublished { eventId } }`, nil)
	c.Subscribe("2", `subscription { eventPublished { eventId } }`, nil)
	waitSubscribed(t, s, 2)
	c.Subscribe("3", `subscription { eventPublished { eventId } }`, nil)
	if r := c.Next(t, "3", 5*time.Second); len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "limit") {
		t.Fatalf("third subscription on a connection: %+v", r)
	}
	dial(t, s, heraldtest.LegacyWS, s.Token)
	third, _, err := s.DialWS(heraldtest.TransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if err := third.Init(bearer(s.Token)); err == nil {
		t.Fatal("third connection for the key accepted")
	}
	if code, _, _ := third.WaitClosed(5 * time.Second); code != server.CloseTooManyConnections {
		t.Fatalf("third connection closed with %d, want %d", code, server.CloseTooManyConnections)
	}
	// Another key is not affected.
	_, other := s.NewApp("other")
	dial(t, s, heraldtest.TransportWS, other)
}

func TestSubscription_KeepAlive(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.KeepAlive = 50 * time.Millisecond })
	for _, proto := range protocols {
		c := dial(t, s, proto, s.Token)
		want := map[string]string{heraldtest.TransportWS: "ping", heraldtest.LegacyWS: "ka"}[proto]
		deadline := time.After(3 * time.Second)
	wait:
		for {
			select {
			case m := <-c.Messages():
				if m.Type == want {
					break wait
				}
			case <-deadline:
				t.Fatalf("%s: no %q keep-alive within 3s", proto, want)
			}
		}
	}
}

func TestWebsocket_OriginCheck(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.CORSOrigins = []string{"https://console.example"} })
	for origin, ok := range map[string]bool{
		"https://evil.example":    false,
		"https://console.example": true,
		s.URL:                     true, // same origin
	} {
		c, resp, err := s.DialWS(heraldtest.TransportWS, http.Header{"Origin": {origin}})
		if ok != (err == nil) {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Errorf("origin %s: dial error %v (HTTP %d), want allowed=%v", origin, err, status, ok)
		}
		if c != nil {
			c.Close()
		}
	}
}

func TestSubscription_DeliveryEndpointIsReadAfreshForEachUpdate(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "before", "url": rc.URL})
	c := dial(t, s, heraldtest.TransportWS, s.Token)
	c.Subscribe("1", `subscription { deliveryUpdated(status: SUCCEEDED) { delivery { endpoint { id name } } } }`, nil)
	waitSubscribed(t, s, 1)
	next := func() (id, name string) {
		t.Helper()
		r := c.Next(t, "1", 5*time.Second)
		var out struct {
			DeliveryUpdated struct {
				Delivery struct{ Endpoint struct{ ID, Name string } }
			}
		}
		if err := json.Unmarshal(r.Data, &out); err != nil || len(r.Errors) > 0 {
			t.Fatalf("update: %s %+v (%v)", r.Data, r.Errors, err)
		}
		e := out.DeliveryUpdated.Delivery.Endpoint
		return e.ID, e.Name
	}
	s.Publish(s.Token, "order.created", map[string]any{})
	if id, name := next(); id != epID || name != "before" {
		t.Fatalf("first update shows endpoint %s %q", id, name)
	}
	s.Do(s.Token, `mutation($id: ID!) { updateEndpoint(id: $id, input: {name: "after"}) { id } }`, map[string]any{"id": epID}).Decode(t, nil)
	s.Publish(s.Token, "order.created", map[string]any{})
	if id, name := next(); id != epID || name != "after" {
		t.Fatalf("update after the rename shows endpoint %s %q: a loader outlived its update", id, name)
	}
}
