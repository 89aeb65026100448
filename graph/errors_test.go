package graph_test

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
)

func TestErrors_HaveCodesAndNoInternals(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	ep, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/h", "isActive": false})
	publish(t, c, "order.created", map[string]any{})

	// Every response below is an error; Client.Do checks each for a code
	// and for messages that reveal SQL, ent or stack traces.
	for name, tc := range map[string]struct {
		query string
		vars  map[string]any
		code  string
	}{
		"parse error":           {`{ endpoints { `, nil, "BAD_USER_INPUT"},
		"unknown field":         {`{ endpointz { id } }`, nil, "BAD_USER_INPUT"},
		"wrong argument type":   {`{ endpoints(first: "ten") { totalCount } }`, nil, "BAD_USER_INPUT"},
		"missing variable":      {`query($id: ID!) { node(id: $id) { id } }`, nil, "BAD_USER_INPUT"},
		"bad enum":              {`{ deliveries(where: {status: DONE}) { totalCount } }`, nil, "BAD_USER_INPUT"},
		"bad enum variable":     {`query($s: DeliveryStatus) { deliveries(where: {status: $s}) { totalCount } }`, map[string]any{"s": "DONE"}, "BAD_USER_INPUT"},
		"bad cursor":            {`{ endpoints(after: "not-a-cursor") { totalCount } }`, nil, "BAD_USER_INPUT"},
		"bad time":              {`{ events(where: {createdAtGT: "1 May"}) { totalCount } }`, nil, "BAD_USER_INPUT"},
		"bad json":              {`mutation { publishEvent(input: {eventType: "order.created", payload: "{"}) { id } }`, nil, "BAD_USER_INPUT"},
		"sql in id":             {`{ node(id: "ep_' OR 1=1 --") { id } }`, nil, "NOT_FOUND"},
		"sql in filter":         {`{ endpoints(where: {name: "x' OR '1'='1"}) { totalCount edges { node { id } } } }`, nil, ""},
		"first and last":        {`{ endpoints(first: 1, last: 1) { totalCount } }`, nil, "BAD_USER_INPUT"},
		"nested first and last": {`{ events { edges { node { deliveries(first: 1, last: 1) { totalCount } } } } }`, nil, "BAD_USER_INPUT"},
		"nested page too large": {`{ events { edges { node { deliveries(first: 101) { totalCount } } } } }`, nil, "BAD_USER_INPUT"},
		"nested negative page":  {`{ events { edges { node { deliveries(first: -1) { totalCount } } } } }`, nil, "BAD_USER_INPUT"},
		"huge idempotency key": {`mutation($k: String) { publishEvent(input: {eventType: "order.created", payload: {}, idempotencyKey: $k}) { id } }`,
			map[string]any{"k": strings.Repeat("k", 300)}, "BAD_USER_INPUT"},
		"replay bad status": {`mutation($id: ID!) { replayDeliveries(endpointId: $id, since: "2020-01-01T00:00:00Z", status: PENDING) { count } }`,
			map[string]any{"id": ep.ID}, "BAD_USER_INPUT"},
		"retry unknown delivery": {`mutation { retryDelivery(id: "dlv_01JDZ6Q4W8X3M5N7P9R2T4V6X8") { id } }`, nil, "NOT_FOUND"},
		"batch too large":        {`mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": manyEvents(101)}, "BAD_USER_INPUT"},
		"empty batch":            {`mutation { publishEvents(input: []) { id } }`, nil, "BAD_USER_INPUT"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := s.As(t, s.Token).Do(tc.query, tc.vars)
			if tc.code == "" {
				r.Decode(t, nil)
				if !strings.Contains(string(r.Data), `"totalCount":0`) {
					t.Errorf("want nothing found: %s", r.Body)
				}
				return
			}
			r.WantError(t, tc.code)
		})
	}
}

func manyEvents(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{}}
	}
	return out
}
