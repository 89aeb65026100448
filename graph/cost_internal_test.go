package graph

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/heraldhq/herald/quota"
)

// resolvedFields returns the fields gqlgen resolves with a resolver
// (rather than by reading a struct field or a method of a loaded row), as
// "Type.field", from the generated code.
func resolvedFields(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("generated.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`func \(ec \*executionContext\) fieldContext_(\w+)\(\w+ context\.Context, field graphql\.CollectedField\) \(fc \*graphql\.FieldContext, err error\) \{\s*fc = &graphql\.FieldContext\{\s*Object:\s*"(\w+)",\s*Field:\s*field,\s*IsMethod:\s*\w+,\s*IsResolver:\s*true`)
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		// The function is named after the object and the field.
		obj := m[2]
		out[obj+"."+strings.TrimPrefix(m[1], obj+"_")] = true
	}
	if len(out) < 40 {
		t.Fatalf("found %d resolvers in generated.go; the pattern no longer matches gqlgen's output", len(out))
	}
	return out
}

// TestCosts_EveryExpensiveFieldIsDeclared: every field that reads more
// than its object's row (a resolver) or may answer a large value (JSON)
// has a declared cost (costs), or is a connection (weighed by its page
// size), so that a new field cannot sit in the complexity limit at one
// point whatever it costs. Mutations and subscriptions are bounded by
// MaxRootFields and their inputs' limits.
func TestCosts_EveryExpensiveFieldIsDeclared(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	declared := costs(256 << 10)
	resolved := resolvedFields(t)
	var missing []string
	for name, def := range schema.Types {
		if strings.HasPrefix(name, "__") || def.Kind != ast.Object || name == "Mutation" || name == "Subscription" {
			continue
		}
		for _, f := range def.Fields {
			key := name + "." + f.Name
			if strings.HasPrefix(f.Name, "__") || declared[key] != nil {
				continue
			}
			isConnection := strings.HasSuffix(f.Type.Name(), "Connection") || key == "Query.node" || key == "Query.nodes"
			if (resolved[key] || f.Type.Name() == "JSON") && !isConnection {
				missing = append(missing, key)
			}
		}
	}
	sort.Strings(missing)
	for _, key := range missing {
		t.Errorf("%s has no declared cost: add it to costs (graph/cost.go) with what it reads or sends", key)
	}
	for key := range declared {
		typ, field, _ := strings.Cut(key, ".")
		if def := schema.Types[typ]; def == nil || def.Fields.ForName(field) == nil {
			t.Errorf("costs declares %s, which the schema does not have", key)
		}
	}
}

// TestQuota_EveryLimitIsInTheSchema: the AppLimitName enum and quota.Table
// name the same limits.
func TestQuota_EveryLimitIsInTheSchema(t *testing.T) {
	enum := NewExecutableSchema(Config{}).Schema().Types["AppLimitName"]
	names := map[string]bool{}
	for _, v := range enum.EnumValues {
		names[v.Name] = true
	}
	for _, l := range quota.Table {
		if !names[string(l.Name)] {
			t.Errorf("limit %s is missing from AppLimitName", l.Name)
		}
		delete(names, string(l.Name))
	}
	for n := range names {
		t.Errorf("AppLimitName %s is not a limit of quota.Table", n)
	}
}
