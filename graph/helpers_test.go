package graph_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// endpointFields selects every field of endpoint.
const endpointFields = `id name description url eventTypes isActive health timeout disabledReason disabledAt
	consecutiveFailures previousSecretExpiresAt
	retryPolicy { maxAttempts initialDelay backoffMultiplier maxDelay }
	auth { type token username password headerName headerValue secret }
	headers { name value }`

// endpoint is an Endpoint as the tests read it.
type endpoint struct {
	ID                      string
	Name                    string
	Description             string
	URL                     string
	EventTypes              []string
	IsActive                bool
	Health                  string
	Timeout                 string
	DisabledReason          *string
	DisabledAt              *time.Time
	ConsecutiveFailures     int
	PreviousSecretExpiresAt *time.Time
	RetryPolicy             struct {
		MaxAttempts       int
		InitialDelay      string
		BackoffMultiplier float64
		MaxDelay          string
	}
	Auth struct {
		Type                                                       string
		Token, Username, Password, HeaderName, HeaderValue, Secret *string
	}
	Headers []struct{ Name, Value string }
}

const createEndpointOp = `mutation($in: CreateEndpointInput!) {
	createEndpoint(input: $in) { secret endpoint { ` + endpointFields + ` } } }`

// createEndpoint creates an endpoint with the input (name defaults to
// "hook", eventTypes to ["*"]) and returns it with its secret.
func createEndpoint(t testing.TB, c *heraldtest.Client, input map[string]any) (endpoint, string) {
	t.Helper()
	var out struct {
		CreateEndpoint struct {
			Secret   string
			Endpoint endpoint
		}
	}
	c.Must(&out, createEndpointOp, map[string]any{"in": endpointInput(input)})
	return out.CreateEndpoint.Endpoint, out.CreateEndpoint.Secret
}

// endpointInput returns input with name and eventTypes defaulted.
func endpointInput(input map[string]any) map[string]any {
	in := map[string]any{"name": "hook", "eventTypes": []string{"*"}}
	for k, v := range input {
		in[k] = v
	}
	return in
}

const updateEndpointOp = `mutation($id: ID!, $in: UpdateEndpointInput!) {
	updateEndpoint(id: $id, input: $in) { ` + endpointFields + ` } }`

// updateEndpoint changes an endpoint and returns it.
func updateEndpoint(t testing.TB, c *heraldtest.Client, id string, input map[string]any) endpoint {
	t.Helper()
	var out struct{ UpdateEndpoint endpoint }
	c.Must(&out, updateEndpointOp, map[string]any{"id": id, "in": input})
	return out.UpdateEndpoint
}

// getEndpoint reads an endpoint through node.
func getEndpoint(t testing.TB, c *heraldtest.Client, id string) endpoint {
	t.Helper()
	var out struct{ Node *endpoint }
	c.Must(&out, `query($id: ID!) { node(id: $id) { ... on Endpoint { `+endpointFields+` } } }`, map[string]any{"id": id})
	if out.Node == nil {
		t.Fatalf("node(%s) is null", id)
	}
	return *out.Node
}

// eventTypeFields selects every field of an event type.
const eventTypeFields = `id name description example jsonSchema builtIn shared archivedAt`

// createEventType creates an event type and returns its ID.
func createEventType(t testing.TB, c *heraldtest.Client, input map[string]any) string {
	t.Helper()
	var out struct{ CreateEventType struct{ ID string } }
	c.Must(&out, `mutation($in: CreateEventTypeInput!) { createEventType(input: $in) { id } }`, map[string]any{"in": input})
	return out.CreateEventType.ID
}

// eventTypeID returns the ID of the event type with the name.
func eventTypeID(t testing.TB, c *heraldtest.Client, name string) string {
	t.Helper()
	var out struct {
		EventTypes struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	c.Must(&out, `query($n: String!) { eventTypes(where: {name: $n}) { edges { node { id } } } }`, map[string]any{"n": name})
	if len(out.EventTypes.Edges) != 1 {
		t.Fatalf("event type %s: found %d", name, len(out.EventTypes.Edges))
	}
	return out.EventTypes.Edges[0].Node.ID
}

// publish publishes an event and returns its ID.
func publish(t testing.TB, c *heraldtest.Client, eventType string, payload any) string {
	t.Helper()
	var out struct{ PublishEvent struct{ ID string } }
	c.Must(&out, `mutation($t: String!, $p: JSON!) { publishEvent(input: {eventType: $t, payload: $p}) { id } }`,
		map[string]any{"t": eventType, "p": payload})
	return out.PublishEvent.ID
}

// waitDeliveries waits until the app has n deliveries, all finished
// (SUCCEEDED or FAILED), and returns them.
func waitDeliveries(t testing.TB, c *heraldtest.Client, n int) []heraldtest.Delivery {
	t.Helper()
	var ds []heraldtest.Delivery
	ok := heraldtest.Eventually(10*time.Second, func() bool {
		ds = nil
		var out struct {
			Deliveries struct {
				Edges []struct{ Node heraldtest.Delivery }
			}
		}
		c.Must(&out, `{ deliveries(first: 100) { edges { node { id status eventType endpointID } } } }`, nil)
		for _, e := range out.Deliveries.Edges {
			if e.Node.Status != "SUCCEEDED" && e.Node.Status != "FAILED" {
				return false
			}
			ds = append(ds, e.Node)
		}
		return len(ds) == n
	})
	if !ok {
		t.Fatalf("want %d finished deliveries, have %+v", n, ds)
	}
	return ds
}

// connection is a connection as the tests read it (see connectionFields).
type connection struct {
	TotalCount int
	PageInfo   struct {
		HasNextPage, HasPreviousPage bool
		StartCursor, EndCursor       *string
	}
	Edges []struct {
		Cursor string
		Node   struct {
			ID        string
			CreatedAt time.Time
		}
	}
}

// ids returns the IDs of the connection's nodes, in order.
func (c connection) ids() []string {
	out := make([]string, len(c.Edges))
	for i, e := range c.Edges {
		out[i] = e.Node.ID
	}
	return out
}

// connectionFields selects what connection decodes.
const connectionFields = `totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id } }`

// wantNoSecret fails if body contains secret.
func wantNoSecret(t testing.TB, what string, body []byte, secret string) {
	t.Helper()
	if strings.Contains(string(body), secret) {
		t.Errorf("%s reveals the secret %q: %s", what, secret, body)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
