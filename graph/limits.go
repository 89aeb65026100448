package graph

import (
	"context"
	"time"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/stats"
)

// Page sizes of connections.
const (
	// DefaultPageSize is the page size when neither first nor last is
	// given.
	DefaultPageSize = 20
	// MaxPageSize is the largest first or last accepted.
	MaxPageSize = 100
	// MaxNodes is the most IDs one nodes query accepts.
	MaxNodes = MaxPageSize
	// MaxRetryBatch is the most deliveries one retryDeliveries names:
	// a page of them.
	MaxRetryBatch = MaxPageSize
)

// Query limits.
const (
	// MaxDepth is the deepest selection nesting accepted.
	MaxDepth = 12
	// MaxComplexity is the largest estimated cost accepted, in points of
	// about 128 bytes of answer (see costs): 32 MiB. A connection costs
	// its page size times the cost of its nodes, so one page of 100
	// deliveries with 50 attempts each of 20 plain fields fits, and so
	// does one page of 100 events with payloads of the largest size.
	MaxComplexity = (32 << 20) / pointBytes
)

// pageArgs enforces page sizes on every connection field: first and last
// must be within 0..MaxPageSize, and a connection asked for without either
// returns its first DefaultPageSize items. It also limits nodes to
// MaxNodes IDs.
func pageArgs(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Args == nil {
		return next(ctx)
	}
	if ids, ok := fc.Args["ids"].([]string); ok && fc.Object == "Query" && len(ids) > MaxNodes {
		return nil, fault.Invalid("ids", "at most %d IDs per query, got %d: split the list", MaxNodes, len(ids))
	}
	first, hasFirst := fc.Args["first"].(*int)
	last, hasLast := fc.Args["last"].(*int)
	if !hasFirst && !hasLast {
		return next(ctx)
	}
	for _, a := range []struct {
		name string
		n    *int
	}{{"first", first}, {"last", last}} {
		if a.n != nil && (*a.n < 0 || *a.n > MaxPageSize) {
			return nil, fault.Invalid(a.name, "must be between 0 and %d, got %d: page through larger results with after/before cursors", MaxPageSize, *a.n)
		}
	}
	if first != nil && last != nil {
		return nil, fault.Invalid("last", "pass first or last, not both: first pages forward from after, last backward from before")
	}
	if first == nil && last == nil {
		// PageDefaultsCache and PageDefaultVariables normally give every
		// connection a page size before execution; this is the backstop.
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

// setComplexity weighs every connection by its page size, and nodes by
// its number of IDs.
func setComplexity(c *ComplexityRoot) {
	c.Query.Nodes = func(child int, ids []string) int {
		return 1 + child*max(1, len(ids))
	}
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
	c.Subscription.StatsUpdated = func(child int, _ *string, window, bucket time.Duration) int {
		return statsCost(child, window, bucket)
	}
}

// statsCost weighs delivery statistics by their number of buckets, so
// that a page of endpoints each with a long series stays within the
// complexity limit.
func statsCost(child int, window, bucket time.Duration) int {
	n := 1
	if bucket > 0 && window > 0 {
		n = int(min((window+bucket-1)/bucket, stats.MaxBuckets))
	}
	return 1 + child*n
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
//
// The ofType field of introspection's __Type does not count: it links a
// wrapping type (list, non-null) to the one it wraps, a chain as long as the
// schema's wrappers and never a list, and GraphiQL's introspection query
// nests it nine levels deep.
func selectionDepth(set ast.SelectionSet, frags ast.FragmentDefinitionList, depth, limit int) int {
	return walkDepth(set, frags, depth, 0, limit)
}

// walkDepth is selectionDepth; nest counts every level, ofType included,
// and ends the walk at 4×limit levels whatever the depth.
func walkDepth(set ast.SelectionSet, frags ast.FragmentDefinitionList, depth, nest, limit int) int {
	if depth > limit {
		return depth
	}
	if nest > 4*limit {
		return limit + 1
	}
	deepest := depth
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			next := depth + 1
			if isOfType(s) {
				next = depth
			}
			if len(s.SelectionSet) == 0 {
				d = depth + 1
			} else {
				d = walkDepth(s.SelectionSet, frags, next, nest+1, limit)
			}
		case *ast.InlineFragment:
			d = walkDepth(s.SelectionSet, frags, depth, nest+1, limit)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil {
				d = walkDepth(f.SelectionSet, frags, depth, nest+1, limit)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// isOfType reports whether f is __Type.ofType.
func isOfType(f *ast.Field) bool {
	return f.Name == "ofType" && f.ObjectDefinition != nil && f.ObjectDefinition.Name == "__Type"
}
