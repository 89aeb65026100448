package graph

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vikstrous/dataloadgen"

	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/schema"
)

// loaders batch reads that resolving a response would otherwise make once
// per object, such as the endpoint of each delivery in a list.
type loaders struct {
	// endpoints loads endpoints by ID, soft-deleted ones included (a
	// delivery's endpoint may have been deleted since).
	endpoints *dataloadgen.Loader[string, *ent.Endpoint]
}

type loadersKey struct{}

// Loaders returns the response middleware that gives every response (the
// answer to an HTTP request, or one update of a subscription) loaders of
// its own. They cache nothing beyond that response, and read as the
// response's viewer: tenant isolation applies to every batch.
func Loaders(client *ent.Client) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		return next(context.WithValue(ctx, loadersKey{}, newLoaders(ctx, client)))
	}
}

// loaderWait is how long a loader collects keys before it queries: the
// fields of a list resolve concurrently, within about this long.
const loaderWait = 2 * time.Millisecond

// newLoaders returns loaders that read with ctx, the response's context,
// whatever the context of the field that happens to start a batch.
func newLoaders(ctx context.Context, client *ent.Client) *loaders {
	withDeleted := schema.IncludeDeleted(ctx)
	return &loaders{
		endpoints: dataloadgen.NewMappedLoader(func(_ context.Context, ids []string) (map[string]*ent.Endpoint, error) {
			eps, err := client.Endpoint.Query().Where(endpoint.IDIn(ids...)).All(withDeleted)
			if err != nil {
				return nil, fmt.Errorf("load %d endpoints: %w", len(ids), err)
			}
			byID := make(map[string]*ent.Endpoint, len(eps))
			for _, ep := range eps {
				byID[ep.ID] = ep
			}
			return byID, nil
		}, dataloadgen.WithWait(loaderWait), dataloadgen.WithBatchCapacity(MaxPageSize)),
	}
}

// loadersFrom returns the loaders of the response ctx belongs to.
func loadersFrom(ctx context.Context) (*loaders, error) {
	l, ok := ctx.Value(loadersKey{}).(*loaders)
	if !ok {
		return nil, errors.New("no loaders in the context: the handler must use graph.Loaders")
	}
	return l, nil
}
