package tracing

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// GraphQL is a gqlgen extension that traces each query and mutation as a
// server span named for its type and operation (or, for anonymous ones,
// its top-level fields), continuing the caller's trace when the request
// carries a W3C traceparent. Resolvers run under the span, so what they
// trace (a publish) joins it. Subscriptions, which live as long as their
// connection, are not traced.
type GraphQL struct {
	// Tracer starts the spans.
	Tracer trace.Tracer
}

var (
	_ graphql.HandlerExtension     = GraphQL{}
	_ graphql.OperationInterceptor = GraphQL{}
)

// ExtensionName implements graphql.HandlerExtension.
func (GraphQL) ExtensionName() string { return "HeraldTracing" }

// Validate implements graphql.HandlerExtension.
func (GraphQL) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation implements graphql.OperationInterceptor.
func (g GraphQL) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil || oc.Operation.Operation == ast.Subscription {
		return next(ctx)
	}
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(oc.Headers))
	op := oc.Operation
	name := op.Name
	if name == "" {
		var fields []string
		for _, sel := range op.SelectionSet {
			if f, ok := sel.(*ast.Field); ok {
				fields = append(fields, f.Name)
			}
		}
		name = strings.Join(fields, ",")
	}
	attrs := []attribute.KeyValue{attribute.String("graphql.operation.type", string(op.Operation))}
	if op.Name != "" {
		attrs = append(attrs, attribute.String("graphql.operation.name", op.Name))
	}
	ctx, span := g.Tracer.Start(ctx, strings.TrimSpace(string(op.Operation)+" "+name),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	responses := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(trace.ContextWithSpan(ctx, span))
		if resp != nil && len(resp.Errors) > 0 {
			span.SetAttributes(attribute.Int("graphql.errors", len(resp.Errors)))
			span.SetStatus(codes.Error, resp.Errors[0].Message)
		}
		span.End()
		return resp
	}
}
