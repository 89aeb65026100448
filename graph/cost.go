package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/destination/builtin"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/webhook"
)

// What an operation may cost. Complexity is counted in points: a plain
// field (a column of a row already read) is one point, about 128 bytes of
// answer; a connection costs its page size times its nodes; the fields of
// costs below cost what they read or send. MaxComplexity is therefore
// about 32 MiB of answer and the work to make it: one page of 100 events
// with payloads of the largest size fits, two do not.
const (
	// pointBytes is the size of answer one point stands for.
	pointBytes = 128
	// MaxRootFields bounds the root fields of one operation, aliases
	// included: 250 aliased createEndpoint in one request are refused,
	// not run.
	MaxRootFields = 20
	// MaxSelections bounds the fields an operation selects, counted
	// through fragments (each spread counts again): the work of checking
	// and costing an operation stays bounded, fragment bombs included.
	MaxSelections = 5000
)

// cost is what resolving one field costs beyond its children, given the
// complexity of its selection (child) and its raw arguments.
type cost func(child int, args map[string]any) int

// flat costs n points plus its selection.
func flat(n int) cost { return func(child int, _ map[string]any) int { return n + child } }

// bytesCost costs a field that answers up to n bytes.
func bytesCost(n int) cost { return flat(max(1, n/pointBytes)) }

// costs declares every field whose cost is not one point: those that read
// more than their object's row (resolvers), and those whose values may be
// large (JSON, bodies, headers). TestCosts_EveryExpensiveFieldIsDeclared
// enumerates the schema, so that a new such field cannot be left at one
// point. docs/limits.md lists them.
func costs(maxPayload int) map[string]cost {
	payload := bytesCost(maxPayload)
	c := map[string]cost{
		// Values as large as their limits.
		"Event.payload":           payload,
		"EventType.example":       bytesCost(64 << 10),
		"EventType.jsonSchema":    bytesCost(64 << 10),
		"Endpoint.filter":         bytesCost(16 << 10),
		"Endpoint.headers":        bytesCost(webhook.MaxCustomHeaders * 4 << 10),
		"Endpoint.description":    bytesCost(4 << 10),
		"Attempt.responseBody":    bytesCost(64 << 10),
		"Attempt.responseHeaders": bytesCost(64 << 10),
		"Attempt.requestHeaders":  bytesCost(webhook.MaxCustomHeaders*4<<10 + 2<<10),
		// Reads besides the object's row.
		"App.backlog":             flat(2000), // counts over the due index
		"Endpoint.backlog":        flat(500),
		"App.limits":              flat(16), // a count per counted limit
		"App.endpointSummary":     flat(64), // two counts over the app's endpoints
		"Query.locate":            flat(8),
		"App.portal":              flat(1),
		"App.catalog":             flat(2), // a read by ID
		"EventType.shared":        flat(1), // a column
		"Endpoint.auth":           flat(2), // opens the endpoint's secrets to mask them
		"Endpoint.tls":            bytesCost(3 * webhook.MaxPEM),
		"AuditRecord.changes":     bytesCost(64 << 10), // bounded by package audit
		"Query.encryptionKeys":    flat(64),            // counts over every endpoint
		"Endpoint.flow":           flat(1),             // in memory
		"Delivery.endpoint":       flat(2),             // batched by a loader
		"Delivery.heldBy":         flat(8),             // an index probe
		"DeliveryChange.delivery": flat(8),             // a read for every update
		"EndpointChange.endpoint": flat(8),
		"EventPublication.event":  flat(8),
		"Query.viewer":            flat(2),
		// Statistics weigh their number of buckets: a page of endpoints
		// each with a long series stays within the limit.
		"Endpoint.stats": rawStatsCost,
		"App.stats":      rawStatsCost,
		// testFilter decodes and matches each event it tries (the
		// resolver refuses more than maxFilterRecent, naming recent).
		"Query.testFilter": func(child int, args map[string]any) int {
			n := int64(defaultFilterRecent)
			if v, ok := args["recent"].(int64); ok && v > 0 {
				n = min(v, maxFilterRecent)
			}
			if _, ok := args["payload"]; ok && args["payload"] != nil {
				n = 1
			}
			return 1 + int(n)*(payload(0, nil)+child)
		},
		// A listener's session state: columns of its row.
		"Endpoint.listener": flat(1),
		// What a listen subscription pushes: a body as large as a
		// payload (or what a transformation made of it), and its headers.
		"ListenerDelivery.body":    payload,
		"ListenerDelivery.headers": bytesCost(webhook.MaxCustomHeaders*4<<10 + 2<<10),
		"Query.destinationTypes":   flat(4),               // in memory
		"Query.testTransformation": flat(payload(0, nil)), // runs a script on a payload, within its budget
	}
	// A destination type's configuration is a column of the endpoint,
	// its secrets masked.
	for _, spec := range builtin.Registry().Specs() {
		if spec.Field != "" {
			c["Endpoint."+spec.Field] = flat(2)
		}
	}
	return c
}

// rawStatsCost is statsCost on raw arguments (durations as text; the
// defaults when they do not parse).
func rawStatsCost(child int, args map[string]any) int {
	dur := func(name string, def time.Duration) time.Duration {
		if s, ok := args[name].(string); ok {
			if d, err := time.ParseDuration(s); err == nil {
				return d
			}
		}
		return def
	}
	return statsCost(child, dur("window", 24*time.Hour), dur("bucket", time.Hour))
}

// costedSchema is the executable schema with the costs of costs: gqlgen's
// complexity limit asks it what each field costs.
type costedSchema struct {
	graphql.ExecutableSchema
	costs map[string]cost
}

// Complexity implements graphql.ExecutableSchema.
func (s costedSchema) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	if c, ok := s.costs[typeName+"."+field]; ok {
		return c(child, args), true
	}
	return s.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
}

// OperationLimits is a gqlgen extension that refuses operations with more
// than MaxRootFields root fields or MaxSelections selected fields, before
// any other check walks them.
type OperationLimits struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = OperationLimits{}

// ExtensionName implements graphql.HandlerExtension.
func (OperationLimits) ExtensionName() string { return "OperationLimits" }

// Validate implements graphql.HandlerExtension.
func (OperationLimits) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (OperationLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	refuse := func(format string, args ...any) *gqlerror.Error {
		err := gqlerror.Errorf("%s", fmt.Sprintf(format, args...))
		err.Extensions = map[string]any{"code": string(fault.BadUserInput)}
		return err
	}
	roots := 0
	countRoots(oc.Operation.SelectionSet, oc.Doc.Fragments, &roots, 0)
	if roots > MaxRootFields {
		return refuse("the operation has %d root fields (aliases included); the limit is %d: send several requests, or use a batch operation such as publishEvents", roots, MaxRootFields)
	}
	n := 0
	if !walkFieldsBounded(oc.Operation.SelectionSet, oc.Doc.Fragments, MaxSelections, func(*ast.Field) { n++ }) {
		return refuse("the operation selects more than %d fields (counted through fragments); the limit is %d: select fewer fields, or split it", MaxSelections, MaxSelections)
	}
	return nil
}

// countRoots counts the root fields of set, through fragments.
func countRoots(set ast.SelectionSet, frags ast.FragmentDefinitionList, n *int, depth int) {
	if depth > MaxDepth || *n > MaxRootFields {
		return
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			*n++
		case *ast.InlineFragment:
			countRoots(s.SelectionSet, frags, n, depth+1)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil {
				countRoots(f.SelectionSet, frags, n, depth+1)
			}
		}
	}
}
