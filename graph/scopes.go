package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/scope"
	"github.com/heraldhq/herald/tenant"
)

// This file is the one place that decides what a restricted credential (an
// API key with scopes, or a portal session) may do. Before an operation
// runs, ScopeCheck walks its whole selection and refuses it with FORBIDDEN
// if any part needs a scope the caller lacks:
//
//   - every root field (query, mutation, subscription) needs what
//     rootAccess says; a root field missing from rootAccess is refused, so
//     an operation added to the schema is closed to restricted
//     credentials until someone decides who may run it;
//   - every field of an object type needs its type's read scope
//     (typeAccess; connections and edges need their node type's), so that
//     nested fields cannot reach what the root fields do not. The object a
//     mutation returns is the exception: its own fields are the mutation's
//     answer (publishEvent { id } needs only EVENTS_PUBLISH), but objects
//     nested in it need their read scopes;
//   - node and nodes need the read scope of the type their IDs name.
//
// Credentials without scopes (full-access keys) are not checked here; the
// admin-only operations check for admin keys themselves, and isolation
// between apps is the data layer's.

// access is what a credential needs for a part of the schema.
type access struct {
	// open: anyone authenticated.
	open bool
	// full: only credentials without scopes.
	full bool
	// scope: credentials with this scope (or one implying it).
	scope scope.Scope
}

var (
	open       = access{open: true}
	fullAccess = access{full: true}
)

func need(s scope.Scope) access { return access{scope: s} }

// byID marks node and nodes: they need the read access of the type their
// IDs name.
var byID = access{}

// rootAccess maps every root field to what it needs. Keep it complete:
// TestScopes_EveryRootFieldIsClassified fails for a field missing here.
var rootAccess = map[string]map[string]access{
	"Query": {
		"viewer":     open,
		"node":       byID,
		"nodes":      byID,
		"apps":       fullAccess,
		"apiKeys":    fullAccess,
		"endpoints":  need(scope.EndpointsRead),
		"eventTypes": need(scope.CatalogRead),
		// Admin keys see every catalog; others the one of their app.
		"catalogs":   need(scope.CatalogRead),
		"events":     need(scope.EventsRead),
		"deliveries": need(scope.EventsRead),
		// It tries a filter against the app's recent events.
		"testFilter": need(scope.EventsRead),
		// Across apps for admin keys: like apps, full access only.
		"locate": fullAccess,
		// What the endpoint forms show: the same for every caller.
		"destinationTypes": open,
		// It may read one of the app's events (eventId).
		"testTransformation": need(scope.EventsRead),
		// The data layer narrows it: restricted credentials (portal
		// sessions included) read the records of their own changes only.
		"auditLog": open,
		// Across apps, and about the server's keys: admin keys only.
		"encryptionKeys": fullAccess,
	},
	"Mutation": {
		"createApp":            fullAccess,
		"updateApp":            fullAccess,
		"createAPIKey":         fullAccess,
		"revokeAPIKey":         fullAccess,
		"updatePortalSettings": fullAccess,
		"createPortalSession":  need(scope.PortalSessions),
		"revokePortalSession":  need(scope.PortalSessions),
		"revokePortalSessions": need(scope.PortalSessions),
		"createEndpoint":       need(scope.EndpointsWrite),
		"updateEndpoint":       need(scope.EndpointsWrite),
		"deleteEndpoint":       need(scope.EndpointsWrite),
		"rotateEndpointSecret": need(scope.EndpointsWrite),
		"revealEndpointSecret": need(scope.EndpointsWrite),
		"testEndpoint":         need(scope.EndpointsWrite),
		// A listener is an endpoint its CLI receives the deliveries of;
		// the resolvers refuse portal sessions.
		"createListener":         need(scope.EndpointsWrite),
		"reportListenerDelivery": need(scope.EndpointsWrite),
		"createEventType":        need(scope.CatalogWrite),
		"updateEventType":        need(scope.CatalogWrite),
		"archiveEventType":       need(scope.CatalogWrite),
		"unarchiveEventType":     need(scope.CatalogWrite),
		// Into the app's own types; a shared catalog needs an admin key,
		// which the catalog checks.
		"importEventTypes":     need(scope.CatalogWrite),
		"createCatalog":        fullAccess,
		"updateCatalog":        fullAccess,
		"deleteCatalog":        fullAccess,
		"publishEvent":         need(scope.EventsPublish),
		"publishEvents":        need(scope.EventsPublish),
		"retryDelivery":        need(scope.DeliveriesWrite),
		"retryDeliveries":      need(scope.DeliveriesWrite),
		"replayDeliveries":     need(scope.DeliveriesWrite),
		"rotateEncryptionKeys": fullAccess,
	},
	"Subscription": {
		"deliveryUpdated": need(scope.EventsRead),
		"eventPublished":  need(scope.EventsRead),
		"endpointUpdated": need(scope.EndpointsRead),
		"statsUpdated":    need(scope.EventsRead),
		// Receiving a listener's deliveries is what an endpoint's owner
		// does: the same scope as creating one.
		"listen": need(scope.EndpointsWrite),
	},
}

// typeAccess maps every object and interface type to what reading its
// fields needs. Connection and edge types take their node type's entry.
// TestScopes_EveryTypeIsClassified fails for a type missing here; a type
// missing at run time is refused.
var typeAccess = map[string]access{
	// The caller itself, its app (with the portal's branding) and its own
	// key record: reachable only through viewer or the answers of the
	// mutations that manage them, which need their own access.
	"Viewer":         open,
	"App":            open,
	"APIKey":         open,
	"PortalSettings": open,
	"AppLimit":       open,
	"PortalSession":  open,
	// Plumbing.
	"PageInfo": open,
	"Node":     open, // only id: node and nodes check their IDs' types
	// Answers of mutations, which their root fields guard, holding
	// objects that need their own access.
	"CreateAPIKeyPayload":         open,
	"CreateEndpointPayload":       open,
	"DeleteEndpointPayload":       open,
	"RotateEndpointSecretPayload": open,
	"RevealEndpointSecretPayload": open,
	"RetryDeliveriesPayload":      open,
	"RetryRefusal":                open,
	"Location":                    open, // only through locate, which needs full access
	"TestEndpointPayload":         open,
	"ReplayDeliveriesPayload":     open,
	"RevokePortalSessionsPayload": open,
	"DeleteCatalogPayload":        open,
	"ImportEventTypesPayload":     open,
	"CreateListenerPayload":       open,
	"ListenerReportPayload":       open,
	// Values inside objects that carry their own access.
	"RetryPolicy":  open,
	"RateLimit":    open,
	"EndpointFlow": open,
	"Header":       open,
	"EndpointAuth": open,
	"Listener":     open, // an endpoint's session state
	"EndpointTLS":  open,
	// The audit log: its records are narrowed by the data layer (own
	// records for restricted credentials), like auditLog.
	"AuditRecord": open,
	// Answers of the admin-only key operations.
	"EncryptionKeys":        open,
	"EncryptionKeyUse":      open,
	"EncryptionKeyRotation": open,
	// The destination types and their fields, the same for everyone.
	"DestinationType":    open,
	"DestinationField":   open,
	"TransformationTest": open,

	"EventType":        need(scope.CatalogRead),
	"Catalog":          need(scope.CatalogRead),
	"Endpoint":         need(scope.EndpointsRead),
	"EndpointChange":   need(scope.EndpointsRead),
	"Event":            need(scope.EventsRead),
	"Delivery":         need(scope.EventsRead),
	"Attempt":          need(scope.EventsRead),
	"DeliveryChange":   need(scope.EventsRead),
	"EventPublication": need(scope.EventsRead),
	"FilterTest":       need(scope.EventsRead),
	"FilterMatch":      need(scope.EventsRead),
	// What a listen subscription pushes: a listener's deliveries, for
	// whoever may hold the listener.
	"ListenerMessage":  need(scope.EndpointsWrite),
	"ListenerDelivery": need(scope.EndpointsWrite),
	// Delivery statistics (Endpoint.stats, App.stats, statsUpdated) are
	// the delivery log summed up: they need what reading it needs, and
	// the values inside them carry no more.
	"DeliveryStats":        need(scope.EventsRead),
	"Backlog":              need(scope.EventsRead),
	"EndpointSummary":      need(scope.EndpointsRead),
	"DeliveryStatsPoint":   open,
	"DeliveryStatsColumns": open,
	"AttemptCounts":        open,
	"DeliveryCounts":       open,
	"LatencySummary":       open,
}

// nodeTypes maps ID prefixes to the GraphQL type of their objects.
var nodeTypes = map[string]string{
	ids.App:       "App",
	ids.Catalog:   "Catalog",
	ids.APIKey:    "APIKey",
	ids.Endpoint:  "Endpoint",
	ids.EventType: "EventType",
	ids.Event:     "Event",
	ids.Delivery:  "Delivery",
	ids.Attempt:   "Attempt",
	// Narrowed by the data layer like auditLog.
	ids.AuditRecord: "AuditRecord",
}

// checkNodeAccess refuses a restricted credential the lookup of an object
// whose type it may not read. node and nodes run it on the IDs they
// resolve, as they received them, whatever shape the operation gave the
// argument: ScopeCheck's look at the operation is the first line, this
// the last.
func checkNodeAccess(ctx context.Context, id string) error {
	v, ok := tenant.FromContext(ctx)
	if !ok || !v.Restricted() {
		return nil
	}
	typ, ok := nodeTypes[ids.Prefix(id)]
	if !ok {
		return nil // not a Herald ID: NOT_FOUND
	}
	if a, ok := nodeAccess(typ); !ok || !a.allows(v) {
		return &fault.Error{Code: fault.Forbidden, Reason: "SCOPE", Message: fmt.Sprintf("this credential may not look up %s (a %s): it needs %s", id, typ, a.describe())}
	}
	return nil
}

// nodeAccess is what looking up an object by ID needs: its type's read
// access, except that apps and keys are looked up only with full access
// (like the apps and apiKeys queries).
func nodeAccess(typ string) (access, bool) {
	switch typ {
	case "App", "APIKey":
		return fullAccess, true
	}
	a, ok := typeAccess[typ]
	return a, ok
}

// typeAccessOf returns the access of a type, connections and edges
// included.
func typeAccessOf(typ string) (access, bool) {
	if a, ok := typeAccess[typ]; ok {
		return a, true
	}
	// A destination type's configuration (RabbitMQConfig, ...), generated
	// from its spec, is a value inside an endpoint, which carries its own
	// access.
	if strings.HasSuffix(typ, "Config") {
		return open, true
	}
	for _, suffix := range []string{"Connection", "Edge"} {
		if base, ok := strings.CutSuffix(typ, suffix); ok {
			if a, ok := typeAccess[base]; ok {
				return a, true
			}
		}
	}
	return access{}, false
}

// allows reports whether v may do what a needs.
func (a access) allows(v tenant.Viewer) bool {
	switch {
	case a.open:
		return true
	case a.full:
		return !v.Restricted()
	case a.scope != "":
		return v.Allows(a.scope)
	}
	return false
}

// describe says what a needs, for messages.
func (a access) describe() string {
	switch {
	case a.full:
		return "a key with full access"
	case a.scope != "":
		return "the " + string(a.scope) + " scope"
	}
	return "access no restricted credential has"
}

// ScopeCheck is a gqlgen extension that refuses operations that need
// scopes the caller's credential lacks (see the comment at the top of this
// file). It runs after the viewer is known, over HTTP and websocket alike.
type ScopeCheck struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = ScopeCheck{}

// ExtensionName implements graphql.HandlerExtension.
func (ScopeCheck) ExtensionName() string { return "ScopeCheck" }

// Validate implements graphql.HandlerExtension.
func (ScopeCheck) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (ScopeCheck) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	v, ok := tenant.FromContext(ctx)
	if !ok || !v.Restricted() || oc.Operation == nil {
		return nil
	}
	c := scopeChecker{v: v, frags: oc.Doc.Fragments, vars: oc.Variables}
	root := map[ast.Operation]string{ast.Query: "Query", ast.Mutation: "Mutation", ast.Subscription: "Subscription"}[oc.Operation.Operation]
	if err := c.root(root, oc.Operation.SelectionSet, 0); err != nil {
		return err
	}
	return nil
}

type scopeChecker struct {
	v     tenant.Viewer
	frags ast.FragmentDefinitionList
	vars  map[string]any
}

// who names the caller in messages.
func (c scopeChecker) who() string {
	if c.v.Portal {
		return "this portal session"
	}
	return "this API key (scopes " + scope.Join(c.v.Scopes) + ")"
}

func (c scopeChecker) forbid(f *ast.Field, format string, args ...any) *gqlerror.Error {
	err := gqlerror.ErrorPosf(f.Position, "%s", fmt.Sprintf(format, args...))
	err.Extensions = map[string]any{"code": string(fault.Forbidden), "reason": "SCOPE"}
	return err
}

// root checks the root fields of an operation of type root.
func (c scopeChecker) root(root string, set ast.SelectionSet, depth int) *gqlerror.Error {
	if depth > 4*MaxDepth {
		return nil // fragment cycles are refused by validation anyway
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue // introspection
			}
			a, ok := rootAccess[root][s.Name]
			if !ok {
				return c.forbid(s, "%s may not use %s.%s: it is open to keys with full access only", c.who(), strings.ToLower(root[:1])+root[1:], s.Name)
			}
			if a == byID {
				if err := c.nodeIDs(s); err != nil {
					return err
				}
			} else if !a.allows(c.v) {
				return c.forbid(s, "%s may not run %s: it needs %s", c.who(), s.Name, a.describe())
			}
			if err := c.fields(s.SelectionSet, root == "Mutation", 0); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := c.root(root, s.SelectionSet, depth+1); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			if f := c.frags.ForName(s.Name); f != nil {
				if err := c.root(root, f.SelectionSet, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// nodeIDs checks the IDs of node(id:) and nodes(ids:).
func (c scopeChecker) nodeIDs(f *ast.Field) *gqlerror.Error {
	args := f.ArgumentMap(c.vars)
	var list []string
	switch x := args["id"].(type) {
	case string:
		list = append(list, x)
	}
	switch xs := args["ids"].(type) {
	case []any:
		for _, x := range xs {
			if s, ok := x.(string); ok {
				list = append(list, s)
			}
		}
	case string:
		// A single value where a list is expected is a list of one
		// (GraphQL input coercion).
		list = append(list, xs)
	}
	for _, id := range list {
		typ, ok := nodeTypes[ids.Prefix(id)]
		if !ok {
			continue // not a Herald ID: node answers NOT_FOUND
		}
		if a, ok := nodeAccess(typ); !ok || !a.allows(c.v) {
			return c.forbid(f, "%s may not look up %s (a %s): it needs %s", c.who(), id, typ, a.describe())
		}
	}
	return nil
}

// fields checks a selection below a root field. direct is true for the
// fields of the object a mutation returns.
func (c scopeChecker) fields(set ast.SelectionSet, direct bool, depth int) *gqlerror.Error {
	if depth > 4*MaxDepth {
		return nil
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") || s.ObjectDefinition == nil {
				continue
			}
			if !direct {
				typ := s.ObjectDefinition.Name
				a, ok := typeAccessOf(typ)
				if !ok || !a.allows(c.v) {
					return c.forbid(s, "%s may not read %s.%s: it needs %s", c.who(), typ, s.Name, a.describe())
				}
			}
			if err := c.fields(s.SelectionSet, false, depth+1); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := c.fields(s.SelectionSet, direct, depth+1); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			if f := c.frags.ForName(s.Name); f != nil {
				if err := c.fields(f.SelectionSet, direct, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// MayRun reports whether a credential may run a root field ("Query",
// "endpoints"), as ScopeCheck decides; node and nodes are open, their IDs
// deciding (MayLookUp). Fuzz tests use it as the rule that what the API
// answers must follow.
func MayRun(v tenant.Viewer, root, field string) bool {
	if !v.Restricted() {
		return true
	}
	a, ok := rootAccess[root][field]
	return ok && (a == byID || a.allows(v))
}

// MayRead reports whether a credential may read the fields of a type.
func MayRead(v tenant.Viewer, typ string) bool {
	if !v.Restricted() {
		return true
	}
	a, ok := typeAccessOf(typ)
	return ok && a.allows(v)
}

// MayLookUp reports whether a credential may look up an object of a type
// by its ID (node, nodes).
func MayLookUp(v tenant.Viewer, typ string) bool {
	if !v.Restricted() {
		return true
	}
	a, ok := nodeAccess(typ)
	return ok && a.allows(v)
}
