package examples_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// graphqlBlocks returns the GraphQL code blocks of a page of docs/.
func graphqlBlocks(t *testing.T, page string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	langs, blocks := codeBlocks(string(b))
	var out []string
	for i, l := range langs {
		if l == "graphql" {
			out = append(out, blocks[i])
		}
	}
	return out
}

// jsonAfter returns the JSON code block that follows the code block op on
// a page of docs/ (an operation's variables).
func jsonAfter(t *testing.T, page, op string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), op+"\n```\n")
	if !ok {
		t.Fatalf("docs/%s: the example is not on the page", page)
	}
	m := regexp.MustCompile("(?s)^\\s*```json\n(.*?)\n```").FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("docs/%s: no JSON block of variables after\n%s", page, op)
	}
	return m[1]
}

// TestDocs_GraphQLExamplesRun runs every GraphQL example of the pages that
// came out of the README (api.md, routing.md, live.md, portal.md) against
// a server with the example catalog, as make run has, and checks that each
// does what its page says. Placeholders are filled in: "ep_…" with a real
// endpoint's ID, the ordering example's elided payload with the catalog's
// example. A new example on one of these pages fails the test until it is
// added here.
func TestDocs_GraphQLExamplesRun(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "docs", "url": rc.Hook("/hooks"), "eventTypes": []string{"order.*"}})
	withEndpoint := func(op string) string {
		t.Helper()
		if !strings.Contains(op, `"ep_…"`) {
			t.Fatalf("the example names no endpoint \"ep_…\": update the test\n%s", op)
		}
		return strings.ReplaceAll(op, `"ep_…"`, `"`+epID+`"`)
	}
	publish := func(payload string) int {
		t.Helper()
		var out struct{ PublishEvent struct{ DeliveryCount int } }
		c.Must(&out, `mutation { publishEvent(input: {eventType: "order.created", payload: `+payload+`}) { deliveryCount } }`, nil)
		return out.PublishEvent.DeliveryCount
	}

	examples := map[string][]func(t *testing.T, op string){
		"api.md": {
			// Delivery statistics of an endpoint, after one delivery.
			func(t *testing.T, op string) {
				evt := s.Publish(s.Token, "order.created", map[string]any{"orderId": "ord_1"})
				s.WaitDelivery(s.Token, evt, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
				var out struct {
					Node struct {
						Stats struct {
							Total struct {
								Attempts    struct{ Total, Succeeded int }
								SuccessRate *float64
							}
							Columns struct{ Start []time.Time }
						}
					}
				}
				op = withEndpoint(op)
				if !heraldtest.Eventually(30*time.Second, func() bool {
					c.Must(&out, op, nil)
					return out.Node.Stats.Total.Attempts.Succeeded >= 1
				}) {
					t.Fatalf("stats never counted the delivery: %+v", out)
				}
				if n := len(out.Node.Stats.Columns.Start); n != 24 {
					t.Errorf("24h by 1h gave %d columns, want 24", n)
				}
				if r := out.Node.Stats.Total.SuccessRate; r == nil || *r != 1 {
					t.Errorf("successRate = %v, want 1", r)
				}
			},
		},
		"routing.md": {
			// A payload filter, with the variables of the JSON block that
			// follows it: only matching events get a delivery.
			func(t *testing.T, op string) {
				var vars map[string]any
				if err := json.Unmarshal([]byte(jsonAfter(t, "routing.md", op)), &vars); err != nil {
					t.Fatalf("the filter's variables: %v", err)
				}
				var out struct {
					CreateEndpoint struct {
						Endpoint struct{ ID string }
						Secret   string
					}
				}
				c.Must(&out, op, vars)
				defer c.Do(`mutation($id: ID!) { deleteEndpoint(id: $id) { id } }`, map[string]any{"id": out.CreateEndpoint.Endpoint.ID})
				big := `{total: 1500, items: [{sku: "MUG-1"}, {sku: "TSHIRT-L"}], customer: {country: "FR"}}`
				if n := publish(big); n != 2 {
					t.Errorf("a big t-shirt order from France made %d deliveries, want 2 (the filter matches)", n)
				}
				for _, miss := range []string{
					`{total: 1500, items: [{sku: "TSHIRT-L"}], customer: {country: "US"}}`,
					`{total: 999, items: [{sku: "TSHIRT-L"}], customer: {country: "FR"}}`,
					`{total: 1500, items: [{sku: "MUG-1"}], customer: {country: "FR"}}`,
				} {
					if n := publish(miss); n != 1 {
						t.Errorf("%s made %d deliveries, want 1 (the filter does not match)", miss, n)
					}
				}
			},
			// A rate limit.
			func(t *testing.T, op string) {
				var out struct{ UpdateEndpoint struct{ ID string } }
				c.Must(&out, withEndpoint(op), nil)
				var flow struct {
					Node struct {
						Flow struct{ RateLimit struct{ Requests int } }
					}
				}
				c.Must(&flow, `query($id: ID!) { node(id: $id) { ... on Endpoint { flow { rateLimit { requests } } } } }`, map[string]any{"id": epID})
				if out.UpdateEndpoint.ID != epID || flow.Node.Flow.RateLimit.Requests != 5 {
					t.Errorf("updateEndpoint returned %q, flow %+v; want the endpoint limited to 5 requests", out.UpdateEndpoint.ID, flow)
				}
			},
			// An event with an ordering key.
			func(t *testing.T, op string) {
				filled := strings.Replace(op, "payload: {…}", `payload: {orderId: "ord_1042", changes: ["status"]}`, 1)
				if filled == op {
					t.Fatalf("the ordering example's payload is no longer {…}: update the test\n%s", op)
				}
				var out struct{ PublishEvent struct{ ID string } }
				c.Must(&out, filled, nil)
				var evt struct {
					Node struct{ OrderingKey string }
				}
				c.Must(&evt, `query($id: ID!) { node(id: $id) { ... on Event { orderingKey } } }`, map[string]any{"id": out.PublishEvent.ID})
				if evt.Node.OrderingKey != "ord_1042" {
					t.Errorf("the event's orderingKey = %q, want ord_1042", evt.Node.OrderingKey)
				}
			},
			// Scheduled delivery: TestReadme_ScheduledDeliveryExampleIsAccepted
			// runs it (its date is moved to the future there).
			func(t *testing.T, op string) {
				if !strings.Contains(op, "deliverAt:") {
					t.Fatalf("the last example of routing.md is no longer the scheduled delivery: update the test\n%s", op)
				}
			},
		},
		"live.md": {
			// The subscription GraphiQL runs: it streams a delivery's changes.
			func(t *testing.T, op string) {
				ws, _, err := s.DialWS(heraldtest.TransportWS, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer ws.Close()
				if err := ws.Init(map[string]any{"Authorization": "Bearer " + s.Token}); err != nil {
					t.Fatal(err)
				}
				if err := ws.Subscribe("1", op, nil); err != nil {
					t.Fatal(err)
				}
				// The subscription is registered once the server answers
				// on the connection; publish until an update arrives.
				deadline := time.Now().Add(30 * time.Second)
				for {
					if time.Now().After(deadline) {
						t.Fatal("no update of the subscription within 30s")
					}
					s.Publish(s.Token, "order.created", map[string]any{"orderId": "ord_live"})
					res := ws.Next(t, "1", 30*time.Second)
					if len(res.Errors) > 0 || res.Complete {
						t.Fatalf("the subscription ended: %+v", res)
					}
					var out struct {
						DeliveryUpdated struct{ Kind, EventType, EndpointID string }
					}
					if err := json.Unmarshal(res.Data, &out); err != nil {
						t.Fatal(err)
					}
					// Deliveries of earlier examples may still be on their
					// way, and endpoints other examples created receive
					// order.created too: wait for this publish's delivery to
					// the docs endpoint.
					if out.DeliveryUpdated.EventType != "order.created" || out.DeliveryUpdated.EndpointID != epID {
						continue
					}
					return
				}
			},
		},
		"portal.md": {
			// Portal settings: allowed origins and branding.
			func(t *testing.T, op string) {
				var out struct {
					UpdatePortalSettings struct {
						Portal struct{ AllowedOrigins []string }
					}
				}
				c.Must(&out, op, nil)
				if got := out.UpdatePortalSettings.Portal.AllowedOrigins; len(got) != 1 || got[0] != "https://app.example.com" {
					t.Errorf("allowedOrigins = %q", got)
				}
			},
			// A portal session whose link opens the portal.
			func(t *testing.T, op string) {
				var out struct {
					CreatePortalSession struct {
						URL       string
						ExpiresAt time.Time
						APIKey    struct{ ID string }
					}
				}
				c.Must(&out, op, nil)
				m := regexp.MustCompile(`^(.*/portal/app_\w+)#token=(hrld_\S+)$`).FindStringSubmatch(out.CreatePortalSession.URL)
				if m == nil || !strings.HasPrefix(out.CreatePortalSession.APIKey.ID, "key_") {
					t.Fatalf("createPortalSession = %+v", out.CreatePortalSession)
				}
				resp, err := http.Get(m[1])
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %s", m[1], resp.Status)
				}
				var eps struct{ Endpoints struct{ TotalCount int } }
				s.As(t, m[2]).Must(&eps, `{ endpoints { totalCount } }`, nil)
				if eps.Endpoints.TotalCount < 1 {
					t.Errorf("the session sees %d endpoints", eps.Endpoints.TotalCount)
				}
			},
		},
	}
	// In page order: later examples rely on nothing earlier ones leave
	// behind but the endpoint made above.
	for _, page := range []string{"api.md", "routing.md", "live.md", "portal.md"} {
		ops := graphqlBlocks(t, page)
		checks := examples[page]
		if len(ops) != len(checks) {
			t.Errorf("docs/%s has %d GraphQL examples, the test runs %d: update the test", page, len(ops), len(checks))
			continue
		}
		for i, op := range ops {
			t.Run(fmt.Sprintf("%s/example_%d", page, i+1), func(t *testing.T) {
				checks[i](t, op)
			})
		}
	}
}
