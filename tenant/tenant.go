// Package tenant carries the identity of the caller through a request so that
// the data layer can enforce isolation between apps in one place.
//
// Every query of a tenant-owned entity is filtered to the viewer's app by an
// ent interceptor, and every mutation is restricted the same way by an ent
// hook (see ent/schema). A context without a viewer is refused, unless it was
// explicitly marked as a system context for Herald's own background work.
package tenant

import (
	"context"
	"errors"
	"time"

	"github.com/heraldhq/herald/scope"
)

// Viewer is the authenticated caller of a request.
type Viewer struct {
	// AppID is the app the caller acts in. Every tenant-owned row the caller
	// reads or writes belongs to this app.
	AppID string
	// KeyID is the API key the caller authenticated with.
	KeyID string
	// KeyName is the key's name, for audit records.
	KeyName string
	// Admin reports whether the key may manage apps and API keys of every
	// app.
	Admin bool
	// Scopes restricts what the caller may do (see package scope); nil
	// means full access. Restricted keys are never admin keys.
	Scopes []scope.Scope
	// Portal reports whether the caller is a customer-portal session.
	Portal bool
	// SessionScopes are what portal sessions the caller's key may create
	// beyond its own scopes (see scope.Grantable).
	SessionScopes []scope.Scope
	// ExpiresAt is when the caller's credential stops working (zero:
	// never). Live connections are closed then.
	ExpiresAt time.Time
}

// Restricted reports whether the viewer's credential has scopes.
func (v Viewer) Restricted() bool { return v.Scopes != nil }

// Allows reports whether the viewer's credential grants s.
func (v Viewer) Allows(s scope.Scope) bool { return scope.Allows(v.Scopes, s) }

// ErrNoViewer is returned by the data layer when a context carries neither a
// viewer nor the system marker.
var ErrNoViewer = errors.New("tenant: no viewer in context")

type viewerKey struct{}
type systemKey struct{}

// NewContext returns a copy of ctx carrying v.
func NewContext(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// FromContext returns the viewer carried by ctx.
func FromContext(ctx context.Context) (Viewer, bool) {
	v, ok := ctx.Value(viewerKey{}).(Viewer)
	return v, ok
}

// System returns a copy of ctx that bypasses tenant isolation. It is for
// Herald's own work that spans apps (startup seeding, the dispatch engine),
// never for request handling.
func System(ctx context.Context) context.Context {
	return context.WithValue(ctx, systemKey{}, true)
}

// IsSystem reports whether ctx was marked by System.
func IsSystem(ctx context.Context) bool {
	b, _ := ctx.Value(systemKey{}).(bool)
	return b
}
