// Package graph implements Herald's GraphQL API: gqlgen's generated executor,
// thin resolvers that validate input and call domain code, and the presenter
// that turns errors into GraphQL errors with extensions.code.
package graph

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/heraldhq/herald/auth"
	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/destination/listener"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/portal"
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
	// Portal creates portal sessions and keeps portal settings.
	Portal *portal.Service
	// PublicURL is Herald's URL as browsers reach it, such as
	// "https://herald.example.com", for the links of portal sessions.
	// Empty: the URL of each request (see WithRequestURL).
	PublicURL string
	// Stats reads the delivery statistics.
	Stats *stats.Store
	// Rand is the source of API tokens (default crypto/rand).
	Rand io.Reader
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Listeners holds this process's listener sessions (nil: it holds
	// none, and listen is refused).
	Listeners *listener.Hub
	// MaxPayload is the largest event payload, which the cost of a
	// payload in the complexity limit follows (default
	// dispatch.DefaultMaxPayload).
	MaxPayload int
}

// Resolver is the root resolver.
type Resolver struct {
	client    *ent.Client
	auth      *auth.Authenticator
	catalog   *catalog.Catalog
	endpoints *endpoints.Service
	engine    *dispatch.Engine
	bus       *bus.Bus
	portal    *portal.Service
	publicURL string
	stats     *stats.Store
	listeners *listener.Hub
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
		engine: cfg.Engine, bus: cfg.Bus, portal: cfg.Portal, publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		stats: cfg.Stats, listeners: cfg.Listeners, rand: cfg.Rand, now: cfg.Now,
	}
	c := Config{Resolvers: r}
	setComplexity(&c.Complexity)
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = dispatch.DefaultMaxPayload
	}
	return costedSchema{ExecutableSchema: NewExecutableSchema(c), costs: costs(cfg.MaxPayload)}
}

type requestURLKey struct{}

// WithRequestURL returns a copy of ctx that carries the scheme and host a
// request reached Herald with ("https://herald.example.com"), for links
// when Deps.PublicURL is not set.
func WithRequestURL(ctx context.Context, base string) context.Context {
	return context.WithValue(ctx, requestURLKey{}, base)
}

// absoluteURL returns path on Herald's public URL.
func (r *Resolver) absoluteURL(ctx context.Context, path string) string {
	base := r.publicURL
	if base == "" {
		base, _ = ctx.Value(requestURLKey{}).(string)
	}
	return base + path
}
