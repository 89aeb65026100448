package graph

import (
	"context"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fault"
)

// Page sizes of connections.
const (
	// DefaultPageSize is the page size when neither first nor last is
	// given.
	DefaultPageSize = 20
	// MaxPageSize is the largest first or last accepted.
	MaxPageSize = 100
)

// Query limits.
const (
	// MaxDepth is the deepest selection nesting accepted.
	MaxDepth = 12
	// MaxComplexity is the largest estimated cost accepted; a connection
	// costs its page size times the cost of its nodes, so one page of 100
	// deliveries with 100 attempts each of 20 fields fits.
	MaxComplexity = 250000
)

// pageArgs enforces page sizes on every connection field: first and last
// must be within 1..MaxPageSize, and a connection asked for without either
// returns its first DefaultPageSize items.
func pageArgs(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Args == nil {
		return next(ctx)
	}
	first, hasFirst := fc.Args["first"].(*int)
	last, hasLast := fc.Args["last"].(*int)
	if !hasFirst && !hasLast {
		return next(ctx)
	}
	for name, p := range map[string]*int{"first": first, "last": last} {
		if p != nil && (*p < 0 || *p > MaxPageSize) {
			return nil, fault.Invalid(name, "must be between 0 and %d, got %d: page through larger results with after/before cursors", MaxPageSize, *p)
		}
	}
	if first == nil && last == nil {
		n := DefaultPageSize
		fc.Args["first"] = &n
	}
	return next(ctx)
}

// pageSize is the number of nodes a connection returns at most.
func pageSize(first, last *int) int {
	switch {
	case first != nil:
		return *first
	case last != nil:
		return *last
	default:
		return DefaultPageSize
	}
}

// connectionCost returns the complexity of a connection field.
func connectionCost(child int, first, last *int) int {
	return 1 + child*max(1, pageSize(first, last))
}

// setComplexity weighs every connection by its page size.
func setComplexity(c *ComplexityRoot) {
	c.Query.APIKeys = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.APIKeyOrder, _ *ent.APIKeyWhereInput) int {
		return connectionCost(child, first, last)
	}
	c.Query.Apps = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.AppOrder, _ *ent.AppWhereInput) int {
		return connectionCost(child, first, last)
	}
	c.Query.Deliveries = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.DeliveryOrder, _ *ent.DeliveryWhereInput) int {
		return connectionCost(child, first, last)
	}
	c.Query.Endpoints = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.EndpointOrder, _ *ent.EndpointWhereInput) int {
		return connectionCost(child, first, last)
	}
	c.Query.EventTypes = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.EventTypeOrder, _ *ent.EventTypeWhereInput) int {
		return connectionCost(child, first, last)
	}
	c.Query.Events = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.EventOrder, _ *ent.EventWhereInput) int {
		return connectionCost(child, first, last)
	}
	c.Endpoint.Deliveries = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.DeliveryOrder, _ *ent.DeliveryWhereInput) int {
		return connectionCost(child, first, last)
	}
	c.Event.Deliveries = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.DeliveryOrder, _ *ent.DeliveryWhereInput) int {
		return connectionCost(child, first, last)
	}
	c.Delivery.Attempts = func(child int, _ *entgql.Cursor[string], first *int, _ *entgql.Cursor[string], last *int, _ *ent.AttemptOrder, _ *ent.AttemptWhereInput) int {
		return connectionCost(child, first, last)
	}
}

// DepthLimit is a gqlgen extension that refuses operations nested deeper
// than Max.
type DepthLimit struct {
	Max int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = DepthLimit{}

// ExtensionName implements graphql.HandlerExtension.
func (DepthLimit) ExtensionName() string { return "DepthLimit" }

// Validate implements graphql.HandlerExtension.
func (DepthLimit) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (d DepthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, oc.Doc.Fragments, 0, d.Max); depth > d.Max {
		err := gqlerror.Errorf("query is nested %d levels deep; the limit is %d: split it into several queries", depth, d.Max)
		err.Extensions = map[string]any{"code": string(fault.BadUserInput)}
		return err
	}
	return nil
}

// selectionDepth returns the nesting depth of set, giving up once it
// exceeds limit (so cyclic fragments terminate).
func selectionDepth(set ast.SelectionSet, frags ast.FragmentDefinitionList, depth, limit int) int {
	if depth > limit {
		return depth
	}
	deepest := depth
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if len(s.SelectionSet) == 0 {
				d = depth + 1
			} else {
				d = selectionDepth(s.SelectionSet, frags, depth+1, limit)
			}
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, frags, depth, limit)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil {
				d = selectionDepth(f.SelectionSet, frags, depth, limit)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}
