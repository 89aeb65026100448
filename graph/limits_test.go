package graph_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// nestedQuery returns a valid query whose selections nest depth levels
// deep: events → edges → node → deliveries → edges → node → event → ...
func nestedQuery(depth int) string {
	path := []string{"events", "edges", "node"}
	for cycle := []string{"deliveries", "edges", "node", "event"}; len(path) < depth-1; {
		path = append(path, cycle[(len(path)-3)%4])
	}
	path = path[:depth-1]
	leaf := map[string]string{"events": "totalCount", "deliveries": "totalCount", "edges": "cursor", "node": "id", "event": "id"}[path[len(path)-1]]
	var b strings.Builder
	b.WriteString("{ ")
	for _, f := range path {
		b.WriteString(f + " { ")
	}
	b.WriteString(leaf)
	for range path {
		b.WriteString(" }")
	}
	b.WriteString(" }")
	return b.String()
}

func TestQuery_RejectsNestingDeeperThanLimit(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	c.Must(nil, nestedQuery(graph.MaxDepth), nil)
	for _, depth := range []int{graph.MaxDepth + 1, 40} {
		r := c.Do(nestedQuery(depth), nil)
		r.WantError(t, "BAD_USER_INPUT")
		if string(r.Data) != "null" || !strings.Contains(r.Errors[0].Message, "nested") {
			t.Errorf("depth %d: %s", depth, r.Body)
		}
	}
	// Fragments do not hide depth.
	frag := `query { events { edges { node { ...E } } } }
		fragment E on Event { deliveries { edges { node { event { ...F } } } } }
		fragment F on Event { deliveries { edges { node { event { deliveries { edges { node { id } } } } } } } }`
	c.Do(frag, nil).WantError(t, "BAD_USER_INPUT")
	// Nor do inline fragments, or cycles.
	c.Do(`{ events { edges { node { ... on Event { deliveries { edges { node { ... on Delivery { event { deliveries { edges { node { event { deliveries { edges { node { id } } } } } } } } } } } } } } } }`, nil).
		WantError(t, "BAD_USER_INPUT")
	c.Do(`query { events { edges { node { ...E } } } } fragment E on Event { deliveries { edges { node { event { ...E } } } } }`, nil).
		WantError(t, "BAD_USER_INPUT")
}

func TestQuery_RejectsOverComplexQuery(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	for _, q := range []string{
		`{ endpoints(first: 100) { edges { node { deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id } } } } } } } } } }`,
		`{ events(first: 100) { edges { node { deliveries(first: 100) { edges { node { event { deliveries(first: 100) { totalCount } } } } } } } } }`,
		// Aliases multiply the work too.
		`{ a: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   b: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   c: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   d: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   e: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   f: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   g: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   h: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   i: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   j: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   k: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   l: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   m: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   n: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   o: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   p: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   q: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   r: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   s: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   t: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   u: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   v: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   w: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   x: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   y: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } }
		   z: deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { id requestURL responseBody } } } } } } }`,
	} {
		r := c.Do(q, nil)
		r.WantError(t, "BAD_USER_INPUT")
		if string(r.Data) != "null" {
			t.Errorf("over-complex query returned data: %s", r.Data)
		}
	}
	// The documented budget: a page of 100 deliveries with 50 attempts of
	// 20 plain fields each fits; so do their bodies and headers for 10
	// deliveries of 15 attempts, and one page of 100 events with payloads.
	c.Must(nil, `{ deliveries(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node {
		id status attempts(first: 50) { edges { node {
			id deliveryID endpointID attemptNumber trigger succeeded requestURL responseStatus responseBodyTruncated
			durationMs errorMessage startedAt completedAt } } } } } } }`, nil)
	c.Must(nil, `{ deliveries(first: 10) { edges { node { id attempts(first: 15) { edges { node {
			id responseBody requestHeaders { name value } responseHeaders { name value } } } } } } } }`, nil)
	c.Must(nil, `{ events(first: 100) { edges { node { id payload } } } }`, nil)
}

// TestQuery_CostsCountBytesAndWork is the review's aliased queries: what a
// field reads and sends counts, so that payloads, response bodies and
// testFilter's decoding cannot be multiplied by aliases past the limit,
// and an operation has at most MaxRootFields root fields and
// MaxSelections fields however its fragments are spread.
func TestQuery_CostsCountBytesAndWork(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	aliased := func(n int, field string) string {
		var b strings.Builder
		b.WriteString("{ ")
		for i := range n {
			fmt.Fprintf(&b, "a%d: %s ", i, field)
		}
		b.WriteString("}")
		return b.String()
	}
	fragmentBomb := func() string {
		var b strings.Builder
		b.WriteString("{ ...F0 }\n")
		for i := range 30 {
			fmt.Fprintf(&b, "fragment F%d on Query { viewer { isAdmin } ...F%d ...F%d }\n", i, i+1, i+1)
		}
		b.WriteString("fragment F30 on Query { viewer { isAdmin } }\n")
		return b.String()
	}
	for _, tt := range []struct {
		name, query, says string
	}{
		{"two pages of payloads", aliased(2, `events(first: 100) { edges { node { payload } } }`), "complexity"},
		{"testFilter over 100 events", `{ testFilter(filter: {}, recent: 100) { matchCount } }`, "between 1 and 50"},
		{"aliased testFilters", aliased(3, `testFilter(filter: {}, recent: 50) { matchCount }`), "complexity"},
		{"300 aliased testFilters", aliased(300, `testFilter(filter: {}) { matchCount }`), "root fields"},
		{"830 aliased pages of events", aliased(830, `events(first: 100) { edges { node { payload } } }`), "root fields"},
		{"21 root fields", aliased(MaxRootFieldsForTest+1, `viewer { isAdmin }`), "root fields"},
		{"a fragment bomb", fragmentBomb(), "fields"},
		{"attempts' bodies of 100 deliveries", `{ deliveries(first: 100) { edges { node { attempts(first: 100) { edges { node { responseBody } } } } } } }`, "complexity"},
	} {
		r := c.Do(tt.query, nil)
		r.WantError(t, "BAD_USER_INPUT")
		if !strings.Contains(string(r.Body), tt.says) {
			t.Errorf("%s: error does not say %q: %s", tt.name, tt.says, r.Body)
		}
	}
	// At the limits, it runs.
	c.Must(nil, aliased(MaxRootFieldsForTest, `viewer { isAdmin }`), nil)
	c.Must(nil, `{ testFilter(filter: {}, recent: 20) { matchCount } }`, nil)
}

// post sends a raw request to /graphql.
func post(t *testing.T, s *heraldtest.Server, body io.Reader, contentLength int64) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = contentLength
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp.StatusCode, resp.Header, raw
}

func TestRequest_RejectsBodyOverLimit(t *testing.T) {
	t.Parallel()
	const limit = 2048
	s := heraldtest.Start(t, func(c *server.Config) { c.MaxRequestBytes = limit })

	small, _ := json.Marshal(map[string]any{"query": `{ viewer { isAdmin } }`})
	big, _ := json.Marshal(map[string]any{"query": `{ viewer { isAdmin } }`, "variables": map[string]any{"pad": strings.Repeat("x", 2*limit)}})

	if status, _, body := post(t, s, bytes.NewReader(small), int64(len(small))); status != http.StatusOK {
		t.Fatalf("small request: HTTP %d %s", status, body)
	}
	for name, length := range map[string]int64{"with Content-Length": int64(len(big)), "chunked": -1} {
		t.Run(name, func(t *testing.T) {
			body := io.Reader(bytes.NewReader(big))
			if length < 0 {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			status, header, raw := post(t, s, body, length)
			if status != http.StatusRequestEntityTooLarge {
				t.Errorf("HTTP %d, want 413: %s", status, raw)
			}
			if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			var r heraldtest.Response
			if err := json.Unmarshal(raw, &r); err != nil || len(r.Errors) != 1 {
				t.Fatalf("body is not a GraphQL error response: %s", raw)
			}
			r.Body = raw
			r.CheckErrors(t)
			if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "limit") {
				t.Errorf("error = %s", raw)
			}
		})
	}
}

// graphiqlIntrospection is the introspection query of the GraphiQL that
// Herald serves (graphql-js getIntrospectionQuery with descriptions,
// specifiedByURL, isRepeatable and deprecated input values).
const graphiqlIntrospection = `query IntrospectionQuery {
  __schema {
    description
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}`

func TestIntrospection_GraphiQLQueryIsAllowed(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)

	for name, token := range map[string]string{"with a key": s.Token, "without a key": ""} {
		var out struct {
			Schema struct {
				QueryType struct{ Name string }
				Types     []struct{ Name string }
			} `json:"__schema"`
		}
		r := s.As(t, token).Do(graphiqlIntrospection, nil)
		if len(r.Errors) > 0 {
			t.Errorf("%s: GraphiQL's introspection query fails: %s", name, r.Errors[0].Message)
			continue
		}
		r.Decode(t, &out)
		if out.Schema.QueryType.Name != "Query" || len(out.Schema.Types) < 20 {
			t.Errorf("%s: introspection returned queryType %q and %d types", name, out.Schema.QueryType.Name, len(out.Schema.Types))
		}
	}
	// Introspection cannot be nested without bound either.
	deep := `{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { type { fields { name } } } } } } } } } } } } } }`
	s.As(t, s.Token).Do(deep, nil).WantError(t, "BAD_USER_INPUT")
}

func TestNodes_RejectsMoreIDsThanAPage(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	ep, _ := createEndpoint(t, c, map[string]any{"url": "https://example.com/h", "isActive": false})

	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = ep.ID
		}
		return out
	}
	const q = `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`
	var out struct{ Nodes []struct{ ID string } }
	c.Must(&out, q, map[string]any{"ids": ids(graph.MaxNodes)})
	if len(out.Nodes) != graph.MaxNodes || out.Nodes[0].ID != ep.ID {
		t.Errorf("nodes(%d IDs) returned %d nodes", graph.MaxNodes, len(out.Nodes))
	}
	for _, n := range []int{graph.MaxNodes + 1, 40000} {
		r := c.Do(q, map[string]any{"ids": ids(n)})
		r.WantFault(t, "BAD_USER_INPUT", "ids")
		if len(r.Errors) != 1 {
			t.Errorf("nodes(%d IDs): %d errors, want one", n, len(r.Errors))
		}
	}
}

// MaxRootFieldsForTest is graph.MaxRootFields.
const MaxRootFieldsForTest = graph.MaxRootFields
