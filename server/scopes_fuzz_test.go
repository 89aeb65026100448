package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/scope"
	"github.com/heraldhq/herald/tenant"
)

// fuzzCred is a restricted credential the fuzz test queries with.
type fuzzCred struct {
	name  string
	token string
	v     tenant.Viewer // its scopes, for the rule the answers must follow
}

// selection is a generated field with its type, for rendering the query
// and for checking the answer against it.
type selection struct {
	alias, name, args string
	parent            string // the type the field is selected on
	typ               *ast.Definition
	sub               []*selection
	// on: inline fragments of an interface, by type.
	on map[string][]*selection
}

// queryGen makes queries of the schema from the fuzzer's bytes.
type queryGen struct {
	schema *ast.Schema
	rnd    *rand.Rand
	ids    []string
	n      int
}

func (g *queryGen) pick(n int) int { return g.rnd.IntN(max(n, 1)) }

// fields generates up to k fields of def, nested at most depth deep.
func (g *queryGen) fields(def *ast.Definition, depth, k int) []*selection {
	var out []*selection
	for range 1 + g.pick(k) {
		if len(def.Fields) == 0 || g.n > 200 {
			break
		}
		f := def.Fields[g.pick(len(def.Fields))]
		if strings.HasPrefix(f.Name, "__") || (def.Name == "Query" && f.Name == "testFilter") {
			continue
		}
		args, ok := g.args(f)
		if !ok {
			continue
		}
		g.n++
		sel := &selection{alias: fmt.Sprintf("f%d", g.n), name: f.Name, args: args, parent: def.Name, typ: g.schema.Types[f.Type.Name()]}
		switch sel.typ.Kind {
		case ast.Object:
			if depth == 0 {
				continue
			}
			sel.sub = g.fields(sel.typ, depth-1, 3)
			if len(sel.sub) == 0 {
				continue
			}
		case ast.Interface, ast.Union:
			if depth == 0 {
				continue
			}
			sel.on = map[string][]*selection{}
			for _, impl := range g.schema.GetPossibleTypes(sel.typ) {
				if g.pick(2) == 0 {
					if sub := g.fields(impl, depth-1, 2); len(sub) > 0 {
						sel.on[impl.Name] = sub
					}
				}
			}
		}
		out = append(out, sel)
	}
	return out
}

// args returns arguments for a field, or false if it needs some the
// generator does not make.
func (g *queryGen) args(f *ast.FieldDefinition) (string, bool) {
	var parts []string
	for _, a := range f.Arguments {
		switch a.Name {
		case "id":
			parts = append(parts, fmt.Sprintf(`id: %q`, g.ids[g.pick(len(g.ids))]))
		case "ids":
			if g.pick(2) == 0 {
				parts = append(parts, fmt.Sprintf(`ids: %q`, g.ids[g.pick(len(g.ids))])) // one value for a list
			} else {
				parts = append(parts, fmt.Sprintf(`ids: [%q, %q]`, g.ids[g.pick(len(g.ids))], g.ids[g.pick(len(g.ids))]))
			}
		case "first":
			if g.pick(2) == 0 {
				parts = append(parts, fmt.Sprintf("first: %d", 1+g.pick(3)))
			}
		default:
			if a.Type.NonNull && a.DefaultValue == nil {
				return "", false
			}
		}
	}
	if len(parts) == 0 {
		return "", true
	}
	return "(" + strings.Join(parts, ", ") + ")", true
}

func render(b *strings.Builder, sels []*selection) {
	for _, s := range sels {
		fmt.Fprintf(b, "%s: %s%s ", s.alias, s.name, s.args)
		if len(s.sub) > 0 || len(s.on) > 0 {
			b.WriteString("{ __typename ")
			render(b, s.sub)
			for typ, sub := range s.on {
				fmt.Fprintf(b, "... on %s { ", typ)
				render(b, sub)
				b.WriteString("} ")
			}
			b.WriteString("} ")
		}
	}
}

// check walks an answer along its selection and reports data the
// credential may not see: a root field it may not run, a field of a type
// it may not read, an object looked up by ID that it may not look up.
func check(v tenant.Viewer, sels []*selection, data map[string]any, lookedUp bool) string {
	for _, s := range sels {
		val, ok := data[s.alias]
		if !ok || val == nil {
			continue
		}
		if s.parent == "Query" {
			if !graph.MayRun(v, "Query", s.name) {
				return fmt.Sprintf("Query.%s answered", s.name)
			}
		} else if !graph.MayRead(v, s.parent) {
			return fmt.Sprintf("%s.%s answered", s.parent, s.name)
		}
		byID := s.parent == "Query" && (s.name == "node" || s.name == "nodes")
		objs := []any{val}
		if list, ok := val.([]any); ok {
			objs = list
		}
		for _, o := range objs {
			m, ok := o.(map[string]any)
			if !ok {
				continue
			}
			typ, _ := m["__typename"].(string)
			if byID && typ != "" && !graph.MayLookUp(v, typ) {
				return fmt.Sprintf("%s looked up by ID", typ)
			}
			if msg := check(v, s.sub, m, byID); msg != "" {
				return msg
			}
			if msg := check(v, s.on[typ], m, byID); msg != "" {
				return msg
			}
		}
	}
	_ = lookedUp
	return ""
}

// postQuery posts a query to /graphql and returns the answer and its
// data (nil without).
func postQuery(t *testing.T, base, token, query string) ([]byte, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	_, out := postBody(t, base, token, body)
	var r struct{ Data map[string]any }
	_ = json.Unmarshal(out, &r)
	return out, r.Data
}

// postBody posts a request body, as is, to /graphql and returns the HTTP
// status and the answer.
func postBody(t *testing.T, base, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// FuzzScopes runs queries generated from the fuzzer's input against a real
// server with every kind of restricted credential (each scope alone,
// portal sessions full and read-only, a key that opens portals) and
// checks that no answer holds anything the credential may not see, by the
// rules of graph/scopes.go: the static check, the resolvers and the data
// layer together must never let a field outside a credential's scopes
// resolve, whatever the query's shape (aliases, fragments, one ID given
// for a list).
func FuzzScopes(f *testing.F) {
	s := heraldtest.Start(f)
	admin := s.As(f, s.Token)
	rc := heraldtest.NewReceiver(f, nil)
	var ep struct {
		CreateEndpoint struct{ Endpoint struct{ ID string } }
	}
	admin.Must(&ep, `mutation($u: String!) { createEndpoint(input: {name: "fuzz", url: $u, eventTypes: ["*"]}) { endpoint { id } } }`, map[string]any{"u": rc.URL})
	evID := s.Publish(s.Token, "order.created", map[string]any{"n": 1})
	d := s.WaitDelivery(s.Token, evID, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	var v struct {
		Viewer struct {
			APIKey struct{ ID string }
			App    struct{ ID string }
		}
		EventTypes struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	admin.Must(&v, `{ viewer { apiKey { id } app { id } } eventTypes(first: 1) { edges { node { id } } } }`, nil)
	otherApp, otherToken := s.NewApp("other")
	otherEP, _ := s.CreateEndpoint(otherToken, map[string]any{"url": rc.URL})
	ids := []string{v.Viewer.APIKey.ID, v.Viewer.App.ID, ep.CreateEndpoint.Endpoint.ID, evID, d.ID, d.Attempts.Edges[0].Node.ID,
		v.EventTypes.Edges[0].Node.ID, otherApp, otherEP}

	var creds []fuzzCred
	newKey := func(name string, scopes []scope.Scope, input map[string]any) {
		var out struct{ CreateAPIKey struct{ Token string } }
		input["name"] = name
		input["scopes"] = scope.Strings(scopes)
		admin.Must(&out, `mutation($in: CreateAPIKeyInput!) { createAPIKey(input: $in) { token } }`, map[string]any{"in": input})
		creds = append(creds, fuzzCred{name, out.CreateAPIKey.Token, tenant.Viewer{Scopes: scopes}})
	}
	for _, sc := range scope.All {
		newKey(string(sc), []scope.Scope{sc}, map[string]any{})
	}
	newKey("opener", []scope.Scope{scope.PortalSessions}, map[string]any{"portalSessionScopes": []string{"EVENTS_READ"}})
	for _, ro := range []bool{false, true} {
		var out struct{ CreatePortalSession struct{ Token string } }
		admin.Must(&out, `mutation($ro: Boolean) { createPortalSession(input: {readOnly: $ro}) { token } }`, map[string]any{"ro": ro})
		sc := scope.Portal
		if ro {
			sc = scope.PortalReadOnly
		}
		creds = append(creds, fuzzCred{fmt.Sprintf("portal (read-only %v)", ro), out.CreatePortalSession.Token, tenant.Viewer{Scopes: sc, Portal: true}})
	}

	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	for _, seed := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		g := &queryGen{schema: schema, rnd: rand.New(rand.NewPCG(seed, seed>>7|1)), ids: ids}
		sels := g.fields(schema.Query, 4, 3)
		if len(sels) == 0 {
			return
		}
		var b strings.Builder
		b.WriteString("{ ")
		render(&b, sels)
		b.WriteString("}")
		for _, c := range creds {
			body, data := postQuery(t, s.URL, c.token, b.String())
			if data == nil {
				continue
			}
			if msg := check(c.v, sels, data, false); msg != "" {
				t.Fatalf("%s with credential %s\nquery: %s\nanswer: %s", msg, c.name, b.String(), body)
			}
		}
	})
}
