package graph

import (
	"slices"
	"testing"
)

// Every mutation names what it acts on the same way (docs/api.md, "Shapes
// of mutations"): the object it changes as id (or ids), the app, catalog
// or endpoint whose things it works on as appId, catalogId or endpointId,
// then everything else in one input. Deprecated arguments, kept for older
// clients, are exempt.
func TestMutations_ArgumentsShapedTheSameWay(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	target := map[string]string{
		"id":         "ID!",
		"ids":        "[ID!]!",
		"appId":      "ID",
		"catalogId":  "ID",
		"endpointId": "ID!",
	}
	for _, f := range schema.Mutation.Fields {
		if f.Directives.ForName("deprecated") != nil {
			continue
		}
		var names []string
		for _, a := range f.Arguments {
			if a.Directives.ForName("deprecated") != nil {
				continue
			}
			names = append(names, a.Name)
			if a.Name == "input" {
				continue
			}
			want, ok := target[a.Name]
			if !ok {
				t.Errorf("%s(%s: %s): arguments other than the target (id, ids, appId, catalogId, endpointId) go in input", f.Name, a.Name, a.Type)
				continue
			}
			if got := a.Type.String(); got != want {
				t.Errorf("%s(%s: %s): want %s, as every other mutation has it", f.Name, a.Name, got, want)
			}
		}
		if i := slices.Index(names, "input"); i >= 0 && i != len(names)-1 {
			t.Errorf("%s(%v): input comes after what the mutation acts on", f.Name, names)
		}
	}
}
