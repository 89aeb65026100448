// Package scope defines what a restricted credential may do.
//
// An API key without scopes has full access to its app (and, for an admin
// key, to every app). A key with scopes, and every customer-portal session,
// may do only what its scopes allow; which scope each GraphQL operation and
// type needs is decided in one place, graph's scope check.
//
// A write scope implies the matching read scope: a key that may change
// endpoints may also read them, and one that may retry deliveries may read
// the delivery log.
package scope

import (
	"fmt"
	"slices"
	"strings"
)

// Scope is one permission of a restricted credential. The values are the
// GraphQL APIKeyScope enum values.
type Scope string

// Scopes of restricted credentials.
const (
	// CatalogRead reads the event catalog (eventTypes).
	CatalogRead Scope = "CATALOG_READ"
	// CatalogWrite creates, changes and archives event types.
	CatalogWrite Scope = "CATALOG_WRITE"
	// EndpointsRead reads endpoints and their live feed.
	EndpointsRead Scope = "ENDPOINTS_READ"
	// EndpointsWrite creates, changes, deletes, enables and disables
	// endpoints, rotates their secrets and sends them test events.
	EndpointsWrite Scope = "ENDPOINTS_WRITE"
	// EventsRead reads events, deliveries and attempts, their statistics
	// and their live feeds.
	EventsRead Scope = "EVENTS_READ"
	// EventsPublish publishes events.
	EventsPublish Scope = "EVENTS_PUBLISH"
	// DeliveriesWrite retries and replays deliveries.
	DeliveriesWrite Scope = "DELIVERIES_WRITE"
	// PortalSessions creates and revokes customer-portal sessions of the
	// key's app.
	PortalSessions Scope = "PORTAL_SESSIONS"
)

// All lists every scope, in the order the API documents them.
var All = []Scope{CatalogRead, CatalogWrite, EndpointsRead, EndpointsWrite, EventsRead, EventsPublish, DeliveriesWrite, PortalSessions}

// Portal is what a customer-portal session may do: read the catalog,
// manage the app's endpoints, read the delivery log and its live feeds,
// and retry and replay deliveries. Never publish, and never touch keys,
// apps or sessions.
var Portal = []Scope{CatalogRead, EndpointsRead, EndpointsWrite, EventsRead, DeliveriesWrite}

// PortalReadOnly is what a read-only portal session may do: Portal without
// any write.
var PortalReadOnly = []Scope{CatalogRead, EndpointsRead, EventsRead}

// Grantable returns what portal sessions created by a credential may do:
// the portal's scopes that the credential has itself (full access: all of
// them), and those its key grants sessions explicitly (sessionScopes,
// APIKey.portalSessionScopes). A credential never creates a session with
// more than that.
func Grantable(granted, sessionScopes []Scope) []Scope {
	var out []Scope
	for _, s := range Portal {
		if Allows(granted, s) || slices.Contains(sessionScopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// ReadOnly reports whether scopes allow no write at all.
func ReadOnly(scopes []Scope) bool {
	for _, s := range scopes {
		if _, writes := implied[s]; writes || s == EventsPublish || s == PortalSessions {
			return false
		}
	}
	return scopes != nil
}

// implied maps a scope to the scope it implies.
var implied = map[Scope]Scope{
	CatalogWrite:    CatalogRead,
	EndpointsWrite:  EndpointsRead,
	DeliveriesWrite: EventsRead,
}

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return slices.Contains(All, s) }

// Allows reports whether a credential with the granted scopes may do what
// need requires. nil granted scopes mean full access.
func Allows(granted []Scope, need Scope) bool {
	if granted == nil {
		return true
	}
	for _, g := range granted {
		if g == need || implied[g] == need {
			return true
		}
	}
	return false
}

// Normalize checks a list of scopes and returns it sorted in the order of
// All, without duplicates. An empty list is an error: a key with no scope
// could do nothing (leave scopes out for full access).
func Normalize(in []Scope) ([]Scope, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("give at least one scope, or none at all (null) for full access")
	}
	out := make([]Scope, 0, len(in))
	for _, s := range All {
		if slices.Contains(in, s) {
			out = append(out, s)
		}
	}
	for _, s := range in {
		if !s.Valid() {
			return nil, fmt.Errorf("unknown scope %q: use one of %s", s, Join(All))
		}
	}
	return out, nil
}

// Join returns the scopes as a comma-separated list, for messages.
func Join(s []Scope) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = string(x)
	}
	return strings.Join(parts, ", ")
}

// Strings returns the scopes as strings, for storage.
func Strings(s []Scope) []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

// FromStrings returns stored scopes; nil stays nil (full access).
func FromStrings(s []string) []Scope {
	if s == nil {
		return nil
	}
	out := make([]Scope, len(s))
	for i, x := range s {
		out[i] = Scope(x)
	}
	return out
}
