// Package graph implements Herald's GraphQL API: gqlgen's generated executor,
// thin resolvers that validate input and call domain code, and the presenter
// that turns errors into GraphQL errors with extensions.code.
package graph

import (
	"io"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/heraldhq/herald/auth"
	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/stats"
)

// Deps holds what the resolvers depend on.
type Deps struct {
	Client    *ent.Client
	Auth      *auth.Authenticator
	Catalog   *catalog.Catalog
	Endpoints *endpoints.Service
	Engine    *dispatch.Engine
	// Bus carries the live feeds of subscriptions.
	Bus *bus.Bus
	// Stats reads the delivery statistics.
	Stats *stats.Store
	// Rand is the source of API tokens (default crypto/rand).
	Rand io.Reader
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Resolver is the root resolver.
type Resolver struct {
	client    *ent.Client
	auth      *auth.Authenticator
	catalog   *catalog.Catalog
	endpoints *endpoints.Service
	engine    *dispatch.Engine
	bus       *bus.Bus
	stats     *stats.Store
	rand      io.Reader
	now       func() time.Time
}

// NewSchema returns the executable schema over cfg, with complexity
// estimates that weigh connections by their page size.
func NewSchema(cfg Deps) graphql.ExecutableSchema {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Resolver{
		client: cfg.Client, auth: cfg.Auth, catalog: cfg.Catalog, endpoints: cfg.Endpoints,
		engine: cfg.Engine, bus: cfg.Bus, stats: cfg.Stats, rand: cfg.Rand, now: cfg.Now,
	}
	c := Config{Resolvers: r}
	setComplexity(&c.Complexity)
	return NewExecutableSchema(c)
}
