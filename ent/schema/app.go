package schema

import (
	"context"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"

	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
)

// App is a tenant: the owner of endpoints, event types, events and their
// deliveries. Nothing crosses from one app to another.
type App struct {
	ent.Schema
}

// Mixin of App.
func (App) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.App}, timeMixin{}}
}

// Fields of App.
func (App) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").
			NotEmpty().
			MaxRuneLen(255).
			Annotations(entgql.OrderField("NAME")),
		field.Bool("accept_unknown_event_types").
			Default(false).
			Comment("Publishing an event type missing from the catalog is accepted instead of rejected."),
		// The customer portal's settings (see package portal and the
		// PortalSettings GraphQL type).
		field.String("portal_display_name").
			Default("").
			MaxRuneLen(100).
			Annotations(entgql.Skip()),
		field.String("portal_accent_color").
			Default("").
			MaxLen(7).
			Annotations(entgql.Skip()),
		field.Enum("portal_theme").
			Values("AUTO", "LIGHT", "DARK").
			Default("AUTO").
			Annotations(entgql.Skip()),
		field.Strings("portal_allowed_origins").
			Optional().
			Annotations(entgql.Skip()).
			Comment("Origins that may embed the portal in a frame (CSP frame-ancestors)."),
		field.JSON("limits", map[string]int{}).
			Optional().
			Annotations(entgql.Skip()).
			Comment("Limits set for this app by an admin, by name (package quota); the others are the defaults."),
		field.String("catalog_id").
			Optional().
			Annotations(entgql.Skip()).
			Comment("The shared catalog whose event types the app publishes (see package catalog); empty on rows from before catalogs, which belong to the default one."),
		field.Int64("endpoints_version").
			Default(0).
			Annotations(entgql.Skip()).
			Comment("Bumped in the transaction of every change of the app's endpoints, so that a replica's cached subscriber list is checked with one read."),
	}
}

// Edges of App.
func (App) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("api_keys", APIKey.Type).Annotations(entgql.Skip()),
		edge.To("endpoints", Endpoint.Type).Annotations(entgql.Skip()),
		edge.To("event_types", EventType.Type).Annotations(entgql.Skip()),
		edge.To("events", Event.Type).Annotations(entgql.Skip()),
		edge.To("deliveries", Delivery.Type).Annotations(entgql.Skip()),
		edge.To("attempts", Attempt.Type).Annotations(entgql.Skip()),
		// Read through App.catalog (graph), which also answers for rows
		// from before catalogs.
		edge.From("catalog", Catalog.Type).
			Ref("apps").
			Field("catalog_id").
			Unique().
			Annotations(entgql.Skip()),
		edge.To("audit_records", AuditRecord.Type).Annotations(entgql.Skip()),
	}
}

// Annotations of App.
func (App) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}

// Interceptors of App: admin keys see every app, app keys only their own.
func (App) Interceptors() []ent.Interceptor {
	return []ent.Interceptor{scopeToApp("id", true)}
}

// Hooks of App: only admin keys create or change apps.
func (App) Hooks() []ent.Hook {
	return []ent.Hook{adminOnly}
}

// adminOnly refuses mutations from non-admin viewers.
func adminOnly(next ent.Mutator) ent.Mutator {
	return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
		if tenant.IsSystem(ctx) {
			return next.Mutate(ctx, m)
		}
		v, ok := tenant.FromContext(ctx)
		if !ok {
			return nil, tenant.ErrNoViewer
		}
		if !v.Admin {
			return nil, fault.Forbiddenf("only admin keys may create or change apps and API keys")
		}
		return next.Mutate(ctx, m)
	})
}
