package graph

import (
	"context"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Connections without first or last return DefaultPageSize items. ent
// loads nested connections ahead of their resolvers, reading page sizes
// from the query document and its variables, so the default must be in
// both, not only in the resolver's arguments.

// PageDefaultsCache wraps gqlgen's query cache: every parsed and validated
// document passes through Add before it is executed or shared, and gets an
// explicit first: DefaultPageSize on each connection field that has
// neither first nor last.
type PageDefaultsCache struct {
	Next graphql.Cache[*ast.QueryDocument]
}

// Get implements graphql.Cache.
func (c PageDefaultsCache) Get(ctx context.Context, key string) (*ast.QueryDocument, bool) {
	return c.Next.Get(ctx, key)
}

// Add implements graphql.Cache.
func (c PageDefaultsCache) Add(ctx context.Context, key string, doc *ast.QueryDocument) {
	for _, op := range doc.Operations {
		addPageDefaults(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		addPageDefaults(f.SelectionSet)
	}
	c.Next.Add(ctx, key, doc)
}

// isConnection reports whether a field returns a paginated connection.
func isConnection(f *ast.Field) bool {
	if f.Definition == nil || f.Definition.Type == nil || !strings.HasSuffix(f.Definition.Type.Name(), "Connection") {
		return false
	}
	return f.Definition.Arguments.ForName("first") != nil && f.Definition.Arguments.ForName("last") != nil
}

func addPageDefaults(set ast.SelectionSet) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if isConnection(s) && s.Arguments.ForName("first") == nil && s.Arguments.ForName("last") == nil {
				s.Arguments = append(s.Arguments, &ast.Argument{
					Name:     "first",
					Value:    &ast.Value{Kind: ast.IntValue, Raw: strconv.Itoa(DefaultPageSize), Position: s.Position},
					Position: s.Position,
				})
			}
			addPageDefaults(s.SelectionSet)
		case *ast.InlineFragment:
			addPageDefaults(s.SelectionSet)
		}
	}
}

// PageDefaultVariables is a gqlgen extension that gives connection page
// sizes passed as variables a value when the variables are null or
// missing, so that first: $n with no $n pages like no first at all.
type PageDefaultVariables struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = PageDefaultVariables{}

// ExtensionName implements graphql.HandlerExtension.
func (PageDefaultVariables) ExtensionName() string { return "PageDefaultVariables" }

// Validate implements graphql.HandlerExtension.
func (PageDefaultVariables) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (PageDefaultVariables) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	seen := map[string]bool{}
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if isConnection(s) {
					first, last := s.Arguments.ForName("first"), s.Arguments.ForName("last")
					if nullVar(first, oc.Variables) && nullVar(last, oc.Variables) {
						if first != nil && first.Value.Kind == ast.Variable {
							if oc.Variables == nil {
								oc.Variables = map[string]any{}
							}
							oc.Variables[first.Value.Raw] = int64(DefaultPageSize)
						}
					}
				}
				walk(s.SelectionSet)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				if !seen[s.Name] {
					seen[s.Name] = true
					if f := oc.Doc.Fragments.ForName(s.Name); f != nil {
						walk(f.SelectionSet)
					}
				}
			}
		}
	}
	walk(oc.Operation.SelectionSet)
	return nil
}

// nullVar reports whether an argument is absent, or a variable that is
// null or not given.
func nullVar(a *ast.Argument, vars map[string]any) bool {
	if a == nil {
		return true
	}
	if a.Value.Kind != ast.Variable {
		return a.Value.Kind == ast.NullValue
	}
	v, ok := vars[a.Value.Raw]
	return !ok || v == nil
}
