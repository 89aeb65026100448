// Package quota declares the limits Herald keeps per app: how many
// endpoints, event types and portal sessions an app may have, how large
// its endpoints' filters and header lists may be, and how many API
// requests it may have in progress at once. Each has a default; an admin
// may set another value for one app (updateApp), within the limit's
// bounds. The table below is the one place they are declared: the API
// shows it (App.limits), docs/limits.md lists it, and Check enforces the
// counted ones.
//
// Portal sessions are held by a platform's customers, who may script
// them: quotas keep what one such customer can create, and make Herald
// do, bounded.
package quota

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/apikey"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// Name names a limit. The values are the GraphQL AppLimitName values.
type Name string

// The limits of an app.
const (
	// Endpoints bounds the app's endpoints (deleted ones and listeners
	// not counted).
	Endpoints Name = "ENDPOINTS"
	// Listeners bounds the app's listeners (herald listen), which have
	// a limit of their own: developers' temporary endpoints neither take
	// the room of the app's endpoints nor pile up.
	Listeners Name = "LISTENERS"
	// EventTypes bounds the app's event types, archived ones included.
	EventTypes Name = "EVENT_TYPES"
	// PortalSessions bounds the app's portal sessions that still work.
	PortalSessions Name = "PORTAL_SESSIONS"
	// HeadersPerEndpoint bounds the custom headers of one endpoint.
	HeadersPerEndpoint Name = "HEADERS_PER_ENDPOINT"
	// FilterBytes bounds the size of one endpoint's payload filter.
	FilterBytes Name = "FILTER_BYTES"
	// ConcurrentRequests bounds the API requests (queries, mutations,
	// subscriptions starting) the app's credentials have in progress at
	// once; more wait their turn.
	ConcurrentRequests Name = "CONCURRENT_REQUESTS"
)

// Limit is one limit of the table.
type Limit struct {
	Name Name
	// Default applies to every app that has no value of its own.
	Default int
	// Min and Max bound what an admin may set.
	Min, Max int
	// Counted limits bound a number of stored things, which Check counts.
	Counted bool
	// Description says what it bounds, for the API and docs/limits.md.
	Description string
}

// Table is every limit, in the order the API and docs/limits.md list them.
var Table = []Limit{
	{Endpoints, 100, 0, 10000, true, "Endpoints of the app (deleted ones and listeners do not count)."},
	{Listeners, 10, 0, 1000, true, "Listeners of the app (herald listen), until they expire or are deleted."},
	{EventTypes, 500, 0, 10000, true, "Event types of the app's catalog, archived ones included."},
	{PortalSessions, 200, 0, 100000, true, "Portal sessions of the app that still work (neither expired nor revoked)."},
	{HeadersPerEndpoint, 10, 0, webhook.MaxCustomHeaders, false, "Custom headers of one endpoint."},
	{FilterBytes, 4096, 2, 16384, false, "Size in bytes of one endpoint's payload filter."},
	{ConcurrentRequests, 64, 1, 1024, false, "API requests of the app's credentials in progress at once; more wait their turn (up to 10 s) or are refused with reason RATE_LIMITED."},
}

// Lookup returns the limit called n.
func Lookup(n Name) (Limit, bool) {
	i := slices.IndexFunc(Table, func(l Limit) bool { return l.Name == n })
	if i < 0 {
		return Limit{}, false
	}
	return Table[i], true
}

// Of returns the value of limit n for an app whose own values are set
// (App.Limits): its own, else the default.
func Of(set map[string]int, n Name) int {
	if v, ok := set[string(n)]; ok {
		return v
	}
	l, _ := Lookup(n)
	return l.Default
}

// Get reads an app's value of limit n.
func Get(ctx context.Context, client *ent.Client, appID string, n Name) (int, error) {
	a, err := client.App.Get(tenant.System(ctx), appID)
	if err != nil {
		return 0, fmt.Errorf("read the limits of app %s: %w", appID, err)
	}
	return Of(a.Limits, n), nil
}

// Set returns an app's own values after setting limit n to v, or back to
// the default with v nil. A value out of the limit's bounds is a fault on
// field.
func Set(set map[string]int, n Name, v *int, field string) (map[string]int, error) {
	l, ok := Lookup(n)
	if !ok {
		return nil, fault.Invalid(field, "unknown limit %q: use one of %s", n, names())
	}
	out := make(map[string]int, len(set)+1)
	for k, x := range set {
		out[k] = x
	}
	if v == nil {
		delete(out, string(n))
		return out, nil
	}
	if *v < l.Min || *v > l.Max {
		return nil, fault.Invalid(field, "%s must be between %d and %d, got %d", n, l.Min, l.Max, *v)
	}
	out[string(n)] = *v
	return out, nil
}

func names() string {
	var b strings.Builder
	for i, l := range Table {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(l.Name))
	}
	return b.String()
}

// Used counts how much of a counted limit an app uses; client may be a
// transaction's.
func Used(ctx context.Context, client *ent.Client, appID string, n Name, now time.Time) (int, error) {
	ctx = tenant.System(ctx)
	var c int
	var err error
	switch n {
	case Endpoints:
		c, err = client.Endpoint.Query().Where(endpoint.AppID(appID), endpoint.TypeNEQ(listenerType)).Count(ctx)
	case Listeners:
		c, err = client.Endpoint.Query().Where(endpoint.AppID(appID), endpoint.TypeEQ(listenerType)).Count(ctx)
	case EventTypes:
		// An app's own types; rows marked built in are its copies from
		// before shared catalogs, which only earlier releases read.
		c, err = client.EventType.Query().Where(eventtype.AppID(appID), eventtype.BuiltIn(false)).Count(ctx)
	case PortalSessions:
		c, err = client.APIKey.Query().Where(apikey.AppID(appID), apikey.KindEQ(apikey.KindPORTAL_SESSION),
			apikey.RevokedAtIsNil(), apikey.ExpiresAtGT(now)).Count(ctx)
	default:
		return 0, fmt.Errorf("limit %s is not counted", n)
	}
	if err != nil {
		return 0, fmt.Errorf("count %s of app %s: %w", strings.ToLower(string(n)), appID, err)
	}
	return c, nil
}

// listenerType is the endpoint type of listeners (destination/listener's
// Type), which count toward Listeners instead of Endpoints.
const listenerType = "LISTENER"

// Lock takes the app's row lock for the rest of the transaction tx (a
// write that changes nothing), so that concurrent additions to the app
// are checked one after the other.
func Lock(ctx context.Context, tx *ent.Client, appID string) error {
	if err := tx.App.UpdateOneID(appID).AddEndpointsVersion(0).Exec(tenant.System(ctx)); err != nil {
		return fmt.Errorf("lock app %s: %w", appID, err)
	}
	return nil
}

// Check refuses to add adding more of a counted limit to an app that
// would then have more than its limit allows. Run it in the transaction
// that adds them, after a write that locks the app's row (such as
// dispatch.MarkEndpointsChanged), so that concurrent additions count each
// other.
func Check(ctx context.Context, client *ent.Client, appID string, n Name, adding int, now time.Time) error {
	limit, err := Get(ctx, client, appID, n)
	if err != nil {
		return err
	}
	used, err := Used(ctx, client, appID, n, now)
	if err != nil {
		return err
	}
	if used+adding > limit {
		return Exceeded(n, used, limit)
	}
	return nil
}

// Exceeded is the fault of an app at its limit n.
func Exceeded(n Name, used, limit int) *fault.Error {
	what := strings.ReplaceAll(strings.ToLower(string(n)), "_", " ")
	return &fault.Error{Code: fault.Forbidden, Reason: "QUOTA", Message: fmt.Sprintf(
		"this app has %d %s, its limit (%s is %d): remove some first, or ask the platform to raise the app's %s limit",
		used, what, n, limit, n)}
}

// Bound refuses a value (a filter's size, a number of headers) over an
// app's limit n, as a fault on field.
func Bound(set map[string]int, n Name, value int, field string) error {
	if limit := Of(set, n); value > limit {
		return &fault.Error{Code: fault.Forbidden, Reason: "QUOTA", Field: field, Message: fmt.Sprintf(
			"is %d; this app's %s limit is %d: make it smaller, or ask the platform to raise the limit", value, n, limit)}
	}
	return nil
}
