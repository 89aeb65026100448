package graph

import (
	"context"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/fault"
)

// Connections without first or last return DefaultPageSize items. ent
// loads nested connections ahead of their resolvers, reading page sizes
// from the query document and its variables, so every page size must be
// settled in both before the operation runs: PageDefaultsCache writes the
// default into the document, PageLimits into the variables, and PageLimits
// refuses an operation with any connection whose page is out of bounds,
// nested ones included. A null first or last is the same as leaving it
// out.

// PageDefaultsCache wraps gqlgen's query cache: every parsed and validated
// document passes through Add before it is executed or shared, and gets an
// explicit first: DefaultPageSize on each connection field that has
// neither first nor last (a literal null counts as neither).
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

// nullLiteral reports whether an argument is absent or a literal null.
func nullLiteral(a *ast.Argument) bool {
	return a == nil || a.Value.Kind == ast.NullValue
}

func addPageDefaults(set ast.SelectionSet) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if isConnection(s) {
				first, last := s.Arguments.ForName("first"), s.Arguments.ForName("last")
				if nullLiteral(first) && nullLiteral(last) {
					def := &ast.Value{Kind: ast.IntValue, Raw: strconv.Itoa(DefaultPageSize), Position: s.Position}
					if first != nil {
						first.Value = def
					} else {
						s.Arguments = append(s.Arguments, &ast.Argument{Name: "first", Value: def, Position: s.Position})
					}
				}
			}
			addPageDefaults(s.SelectionSet)
		case *ast.InlineFragment:
			addPageDefaults(s.SelectionSet)
		}
	}
}

// PageLimits is a gqlgen extension that settles the page size of every
// connection of an operation before it runs: a first given as a variable
// that is null or missing, with no last, takes DefaultPageSize; first and
// last must be within 0..MaxPageSize and not both given. A connection left
// without a page size (a null last and no first) is refused, as is nodes
// with more than MaxNodes IDs. ent's eager loading then never reads more
// than a page of any connection, however deep.
type PageLimits struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = PageLimits{}

// ExtensionName implements graphql.HandlerExtension.
func (PageLimits) ExtensionName() string { return "PageLimits" }

// Validate implements graphql.HandlerExtension.
func (PageLimits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (PageLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	var fail *gqlerror.Error
	refuse := func(f *ast.Field, arg, format string, args ...any) {
		if fail == nil {
			fail = gqlerror.ErrorPosf(f.Position, "%s.%s %s", f.Alias, arg, fmtArgs(format, args...))
			fail.Extensions = map[string]any{"code": string(fault.BadUserInput), "field": arg}
		}
	}
	walkFields(oc.Operation.SelectionSet, oc.Doc.Fragments, func(f *ast.Field) {
		if fail != nil {
			return
		}
		if f.Name == "nodes" && f.ObjectDefinition != nil && f.ObjectDefinition.Name == "Query" {
			if ids, ok := f.ArgumentMap(oc.Variables)["ids"].([]any); ok && len(ids) > MaxNodes {
				refuse(f, "ids", "has %d IDs; at most %d per query: split the list", len(ids), MaxNodes)
			}
			return
		}
		if !isConnection(f) {
			return
		}
		first, last := pageArg(f, "first", oc.Variables), pageArg(f, "last", oc.Variables)
		if first == nil && last == nil {
			if a := f.Arguments.ForName("first"); a != nil && a.Value.Kind == ast.Variable {
				if oc.Variables == nil {
					oc.Variables = map[string]any{}
				}
				oc.Variables[a.Value.Raw] = int64(DefaultPageSize)
				return
			}
			refuse(f, "last", "is null and first is missing: give first or last a page size, or leave both out for %d", DefaultPageSize)
			return
		}
		for _, a := range []struct {
			name string
			n    *int64
		}{{"first", first}, {"last", last}} {
			if a.n != nil && (*a.n < 0 || *a.n > MaxPageSize) {
				refuse(f, a.name, "must be between 0 and %d, got %d: page through larger results with after/before cursors", MaxPageSize, *a.n)
				return
			}
		}
		if first != nil && last != nil {
			refuse(f, "last", "and first are both given: pass first or last, not both: first pages forward from after, last backward from before")
		}
	})
	return fail
}

// pageArg returns a connection's page size argument as the operation
// gives it, nil when absent or null.
func pageArg(f *ast.Field, name string, vars map[string]any) *int64 {
	a := f.Arguments.ForName(name)
	if a == nil {
		return nil
	}
	v, err := a.Value.Value(vars)
	if err != nil || v == nil {
		return nil
	}
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case int:
		n = int64(x)
	case float64:
		n = int64(x)
	default:
		return nil
	}
	return &n
}

// walkFields calls visit for every field of set, through fragments (each
// spread again, never into itself). Run it on operations that
// OperationLimits let through, which bounds the fields it visits.
func walkFields(set ast.SelectionSet, frags ast.FragmentDefinitionList, visit func(*ast.Field)) {
	walkFieldsBounded(set, frags, -1, visit)
}

// walkFieldsBounded is walkFields that stops, and reports false, once it
// would visit more than limit fields (no bound when limit < 0).
func walkFieldsBounded(set ast.SelectionSet, frags ast.FragmentDefinitionList, limit int, visit func(*ast.Field)) bool {
	n := 0
	var walk func(ast.SelectionSet, map[string]bool) bool
	walk = func(set ast.SelectionSet, inside map[string]bool) bool {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if n++; limit >= 0 && n > limit {
					return false
				}
				visit(s)
				if !walk(s.SelectionSet, inside) {
					return false
				}
			case *ast.InlineFragment:
				if !walk(s.SelectionSet, inside) {
					return false
				}
			case *ast.FragmentSpread:
				if inside[s.Name] {
					continue
				}
				if f := frags.ForName(s.Name); f != nil {
					inside[s.Name] = true
					ok := walk(f.SelectionSet, inside)
					delete(inside, s.Name)
					if !ok {
						return false
					}
				}
			}
		}
		return true
	}
	return walk(set, map[string]bool{})
}

func fmtArgs(format string, args ...any) string {
	return gqlerror.Errorf(format, args...).Message
}
