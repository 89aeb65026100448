package schema

import (
	"context"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/heraldhq/herald/ent/intercept"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
)

// APIKey authenticates API callers. Only a SHA-256 hash of the token is
// stored, with a short prefix that identifies the key in lists.
//
// A key may be restricted to scopes (see package scope) and may expire.
// Customer-portal sessions are keys too (kind PORTAL_SESSION): scoped to
// what a customer may do in the portal, and always expiring.
type APIKey struct {
	ent.Schema
}

// Mixin of APIKey.
func (APIKey) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.APIKey}, timeMixin{}}
}

// Fields of APIKey.
func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		appIDField(),
		field.String("name").
			NotEmpty().
			MaxRuneLen(255).
			Annotations(entgql.OrderField("NAME")),
		field.Bool("admin").
			Default(false).
			Immutable().
			Comment("Admin keys manage apps and keys of every app."),
		field.String("prefix").
			Immutable().
			NotEmpty().
			Comment("The first characters of the token, safe to display."),
		field.Bytes("token_hash").
			Immutable().
			Unique().
			Sensitive().
			Annotations(entgql.Skip()),
		field.Enum("kind").
			Values("API_KEY", "PORTAL_SESSION").
			Default("API_KEY").
			Immutable().
			Annotations(entgql.Type("APIKeyKind")).
			Comment("API_KEY: created by createAPIKey. PORTAL_SESSION: a customer-portal session."),
		field.Strings("scopes").
			Optional().
			Immutable().
			Annotations(entgql.Skip()).
			Comment("What the key may do (package scope); null: full access."),
		field.Strings("session_scopes").
			Optional().
			Immutable().
			Annotations(entgql.Skip()).
			Comment("What the portal sessions this key creates may do, besides what the key may do itself (package scope); null: no more than the key."),
		field.Time("expires_at").
			Optional().
			Nillable().
			Immutable().
			Comment("When the key stops working; null: never."),
		field.Time("last_used_at").
			Optional().
			Nillable(),
		field.Time("revoked_at").
			Optional().
			Nillable(),
	}
}

// Edges of APIKey.
func (APIKey) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("app", App.Type).
			Ref("api_keys").
			Field("app_id").
			Unique().
			Required().
			Immutable(),
	}
}

// Indexes of APIKey.
func (APIKey) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("app_id", "created_at"),
		// Revoking all of an app's portal sessions.
		index.Fields("app_id", "kind", "revoked_at"),
		// Pruning expired portal sessions (package retention).
		index.Fields("kind", "expires_at"),
	}
}

// Annotations of APIKey.
func (APIKey) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField("apiKeys"),
		entgql.RelayConnection(),
	}
}

// Interceptors of APIKey: admin keys see every key, app keys those of their
// app, and restricted credentials (scoped keys, portal sessions) only their
// own record, whatever asks (viewer, node, nodes, a nested field).
func (APIKey) Interceptors() []ent.Interceptor {
	return []ent.Interceptor{scopeToApp("app_id", true), ownKeyOnly}
}

// ownKeyOnly limits restricted viewers to their own key record.
var ownKeyOnly = intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
	if tenant.IsSystem(ctx) {
		return nil
	}
	if v, ok := tenant.FromContext(ctx); ok && v.Restricted() {
		q.WhereP(sql.FieldEQ("id", v.KeyID))
	}
	return nil
})

// Hooks of APIKey: only admin keys create or revoke keys.
func (APIKey) Hooks() []ent.Hook {
	return []ent.Hook{adminOnly}
}
