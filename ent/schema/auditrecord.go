package schema

import (
	"context"
	"encoding/json"
	"fmt"

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

// AuditRecord is one change made through the API: who made it (the key or
// portal session), what it was (the mutation, its target, the fields it
// changed, secrets written as "changed"), when, and from where. Package
// audit writes it in the transaction of the change; records are never
// changed, and are deleted by retention like attempts.
type AuditRecord struct {
	ent.Schema
}

// Mixin of AuditRecord.
func (AuditRecord) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.AuditRecord}, tenantMixin{}}
}

// Fields of AuditRecord.
func (AuditRecord) Fields() []ent.Field {
	return []ent.Field{
		appIDField(),
		field.Time("created_at").
			Immutable().
			Default(Now).
			Annotations(entgql.OrderField("CREATED_AT")).
			Comment("When the change was made."),
		field.Enum("actor_kind").
			Values("ADMIN_KEY", "API_KEY", "PORTAL_SESSION").
			Immutable().
			Annotations(entgql.Type("AuditActorKind")).
			Comment("What made the change: an admin key, an app's API key, or a customer's portal session."),
		field.String("actor_id").
			Immutable().
			Comment("The key (key_…) or portal session that made the change."),
		field.String("actor_name").
			Default("").
			Immutable().
			Comment("The key's or session's name when it made the change."),
		field.String("action").
			Immutable().
			Comment("The mutation: createEndpoint, rotateEndpointSecret, …"),
		field.String("target_type").
			Immutable().
			Comment("The kind of object changed: App, APIKey, Endpoint, EventType, Event, Delivery."),
		field.String("target_id").
			Immutable().
			Comment("The object changed (the first, when a mutation changes several)."),
		field.JSON("changes", json.RawMessage{}).
			Optional().
			Immutable().
			Annotations(entgql.Type("JSON")).
			Comment(`What changed, field by field; a secret's value is "changed", never the value.`),
		field.String("remote_addr").
			Default("").
			Immutable().
			Comment("The address the request came from."),
		field.String("request_id").
			Default("").
			Immutable().
			Comment("The request's ID (X-Request-Id), as the server's log lines repeat it."),
	}
}

// Edges of AuditRecord.
func (AuditRecord) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("app", App.Type).
			Ref("audit_records").
			Field("app_id").
			Unique().
			Required().
			Immutable().
			Annotations(entgql.Skip()),
	}
}

// Indexes of AuditRecord: the log of an app newest first, by actor, by
// target; retention deletes by app and time.
func (AuditRecord) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("app_id", "created_at"),
		index.Fields("app_id", "actor_id", "created_at"),
		index.Fields("app_id", "target_id", "created_at"),
	}
}

// Annotations of AuditRecord: a Relay connection, queried by the
// hand-written auditLog field.
func (AuditRecord) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.RelayConnection(),
		entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput),
	}
}

// Interceptors of AuditRecord: restricted credentials (scoped keys, portal
// sessions) see only the records of their own changes.
func (AuditRecord) Interceptors() []ent.Interceptor {
	return []ent.Interceptor{ownRecordsOnly}
}

var ownRecordsOnly = intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
	if tenant.IsSystem(ctx) {
		return nil
	}
	if v, ok := tenant.FromContext(ctx); ok && v.Restricted() {
		q.WhereP(sql.FieldEQ("actor_id", v.KeyID))
	}
	return nil
})

// Hooks of AuditRecord: records are written by Herald itself (package
// audit, as the system) and never changed.
func (AuditRecord) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
				if !m.Op().Is(ent.OpCreate) || !tenant.IsSystem(ctx) {
					return nil, fmt.Errorf("audit records are written by Herald and never changed (%s)", m.Op())
				}
				return next.Mutate(ctx, m)
			})
		},
	}
}
