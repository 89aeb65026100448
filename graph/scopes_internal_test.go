package graph

import (
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

// TestScopes_EveryRootFieldIsClassified: a root field missing from
// rootAccess is refused to every restricted credential, which is safe but
// surprising; this test makes whoever adds an operation decide who may run
// it, and catches entries for operations that no longer exist.
func TestScopes_EveryRootFieldIsClassified(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		seen := map[string]bool{}
		for _, f := range root.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			seen[f.Name] = true
			if _, ok := rootAccess[root.Name][f.Name]; !ok {
				t.Errorf("%s.%s is not in rootAccess: decide which scope it needs (graph/scopes.go)", root.Name, f.Name)
			}
		}
		for name := range rootAccess[root.Name] {
			if !seen[name] {
				t.Errorf("rootAccess lists %s.%s, which the schema does not have", root.Name, name)
			}
		}
	}
}

// TestScopes_EveryTypeIsClassified: every object and interface type has a
// read access, so that no field is reachable by accident.
func TestScopes_EveryTypeIsClassified(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	var missing []string
	for name, def := range schema.Types {
		if strings.HasPrefix(name, "__") || (def.Kind != ast.Object && def.Kind != ast.Interface) {
			continue
		}
		if name == "Query" || name == "Mutation" || name == "Subscription" {
			continue
		}
		if _, ok := typeAccessOf(name); !ok {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("type %s is not in typeAccess: decide which scope reading it needs (graph/scopes.go)", name)
	}
	for prefix, typ := range nodeTypes {
		if _, ok := nodeAccess(typ); !ok {
			t.Errorf("IDs %s_… name type %s, which has no access", prefix, typ)
		}
	}
}
