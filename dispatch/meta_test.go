package dispatch_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// metaEvent is a webhook.* event as a receiver gets it.
type metaEvent struct {
	Type string
	Data struct {
		EndpointID       string
		URL              string
		DeliveryID       string
		FailedDeliveries int
		Deliveries       []struct{ DeliveryID string }
		Reason           string
	}
}

func metaEvents(t *testing.T, rc *heraldtest.Receiver) []metaEvent {
	t.Helper()
	var out []metaEvent
	for _, r := range rc.Requests() {
		var ev metaEvent
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(ev.Type, "webhook.") {
			out = append(out, ev)
		}
	}
	return out
}

// Endpoints subscribed to "*" get the app's events, not Herald's reports
// about other endpoints: N endpoints failing together must not send each
// other N² meta-deliveries that count toward each other's auto-disable.
func TestMetaEvents_WildcardSubscribersDoNotGetThem(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.DisableAfter = 2 })
	failing := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	everything := heraldtest.NewReceiver(t, nil)
	named := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"name": "failing", "url": failing.URL, "eventTypes": []string{"order.*"}})
	s.CreateEndpoint(s.Token, map[string]any{"name": "everything", "url": everything.URL, "eventTypes": []string{"*"}})
	s.CreateEndpoint(s.Token, map[string]any{"name": "named", "url": named.URL, "eventTypes": []string{"webhook.failed", "webhook.disabled"}})
	for i := range 2 {
		s.Publish(s.Token, "order.created", map[string]any{"n": i})
	}
	if !heraldtest.Eventually(5*time.Second, func() bool {
		kinds := map[string]bool{}
		for _, ev := range metaEvents(t, named) {
			kinds[ev.Type] = true
		}
		return kinds["webhook.failed"] && kinds["webhook.disabled"]
	}) {
		t.Fatalf("an endpoint naming webhook.failed and webhook.disabled got %d meta-events, want both kinds", len(metaEvents(t, named)))
	}
	everything.WaitRequests(t, 2, 5*time.Second)
	if evs := metaEvents(t, everything); len(evs) > 0 {
		t.Fatalf("an endpoint subscribed to \"*\" got Herald's %s about another endpoint", evs[0].Type)
	}
	// And "*" does not overlap the reserved names when checking for
	// duplicate endpoints.
	s.CreateEndpoint(s.Token, map[string]any{"name": "named again", "url": everything.URL, "eventTypes": []string{"webhook.*"}})
}

// Meta-events go to other endpoints, so the URL they report loses its
// query string, which often holds a token. (URLs with credentials are
// refused when an endpoint is saved.)
func TestMetaEvents_ReportURLsWithoutQuery(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.DisableAfter = 1 })
	failing := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	watcher := heraldtest.NewReceiver(t, nil)
	secretURL := failing.URL + "/hook?token=s3cr3t"
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": secretURL, "eventTypes": []string{"order.*"}})
	s.CreateEndpoint(s.Token, map[string]any{"url": watcher.URL, "eventTypes": []string{"webhook.*"}})
	s.Publish(s.Token, "order.created", map[string]any{})
	if !heraldtest.Eventually(5*time.Second, func() bool { return len(metaEvents(t, watcher)) == 2 }) {
		t.Fatalf("watcher got %d meta-events, want webhook.failed and webhook.disabled", len(metaEvents(t, watcher)))
	}
	for _, r := range watcher.Requests() {
		if strings.Contains(string(r.Body), "s3cr3t") {
			t.Fatalf("meta-event leaks the endpoint's credentials: %s", r.Body)
		}
	}
	for _, ev := range metaEvents(t, watcher) {
		if ev.Data.EndpointID != epID || ev.Data.URL != failing.URL+"/hook" {
			t.Fatalf("%s reports endpoint %s at %q, want %s at %s/hook", ev.Type, ev.Data.EndpointID, ev.Data.URL, epID, failing.URL)
		}
	}
}

// An outage of one endpoint is reported at once and then at most once per
// window, however many of its deliveries fail.
func TestMetaEvents_FailuresOfOneEndpointAreCoalesced(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.MetaWindow = 2 * time.Second; c.DisableAfter = -1 })
	failing := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	watcher := heraldtest.NewReceiver(t, nil)
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": failing.URL, "eventTypes": []string{"order.*"}})
	s.CreateEndpoint(s.Token, map[string]any{"url": watcher.URL, "eventTypes": []string{"webhook.failed"}})
	const n = 30
	in := make([]map[string]any, n)
	for i := range in {
		in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"n": i}}
	}
	s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, nil)
	failing.WaitRequests(t, n, 5*time.Second)
	total := 0
	if !heraldtest.Eventually(10*time.Second, func() bool {
		total = 0
		for _, ev := range metaEvents(t, watcher) {
			total += ev.Data.FailedDeliveries
		}
		return total == n
	}) {
		t.Fatalf("webhook.failed events reported %d failed deliveries, want %d", total, n)
	}
	evs := metaEvents(t, watcher)
	if len(evs) > 2 {
		t.Fatalf("%d failed deliveries made %d webhook.failed events, want at most 2 (the first, then the rest of the window)", n, len(evs))
	}
	for _, ev := range evs {
		if ev.Data.EndpointID != epID || len(ev.Data.Deliveries) == 0 || len(ev.Data.Deliveries) > 10 || ev.Data.DeliveryID == "" {
			t.Fatalf("webhook.failed = %+v", ev.Data)
		}
	}
}

// testEndpoint must not let an app key have Herald sign forged reports in
// its reserved namespace.
func TestTestEndpoint_RefusesReservedTypes(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	_, token := s.NewApp("tenant")
	epID, _ := s.CreateEndpoint(token, map[string]any{"url": rc.URL})
	for _, typ := range []string{"webhook.disabled", "webhook.failed", "webhook.anything"} {
		r := s.Do(token, `mutation($id: ID!, $t: String!) { testEndpoint(id: $id, eventType: $t, payload: {endpointId: "x"}) { delivered } }`,
			map[string]any{"id": epID, "t": typ})
		r.WantError(t, "BAD_USER_INPUT")
		if r.Field() != "eventType" || !strings.Contains(r.Errors[0].Message, "reserved") {
			t.Fatalf("%s: error = %s", typ, r.Body)
		}
	}
	if n := len(rc.Requests()); n != 0 {
		t.Fatalf("receiver got %d forged requests", n)
	}
}
