package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/webhook"
)

// Attempt is one HTTP try of a delivery: what was sent (secrets masked) and
// what came back.
type Attempt struct {
	ent.Schema
}

// Mixin of Attempt.
func (Attempt) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.Attempt}, tenantMixin{}}
}

// Fields of Attempt.
func (Attempt) Fields() []ent.Field {
	return []ent.Field{
		appIDField(),
		field.String("delivery_id").
			Immutable().
			NotEmpty(),
		field.String("endpoint_id").
			Immutable().
			NotEmpty().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.Int("attempt_number").
			Immutable().
			Positive().
			Annotations(entgql.OrderField("ATTEMPT_NUMBER")),
		field.Enum("trigger").
			Values("SCHEDULED", "MANUAL_RETRY", "TEST").
			Immutable().
			Annotations(entgql.Type("AttemptTrigger")),
		field.Bool("succeeded").
			Immutable(),
		field.String("request_url").
			Immutable(),
		field.JSON("request_headers", []webhook.Header{}).
			Immutable().
			Annotations(entgql.Skip()),
		field.Int("response_status").
			Optional().
			Nillable().
			Immutable(),
		field.JSON("response_headers", []webhook.Header{}).
			Optional().
			Immutable().
			Annotations(entgql.Skip()),
		field.Text("response_body").
			Default("").
			Immutable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.Bool("response_body_truncated").
			Default(false).
			Immutable(),
		field.Int("duration_ms").
			Immutable().
			Annotations(entgql.OrderField("DURATION")),
		field.Text("error_message").
			Optional().
			Nillable().
			Immutable(),
		field.Time("started_at").
			Immutable().
			Annotations(entgql.OrderField("STARTED_AT")),
		field.Time("completed_at").
			Immutable(),
	}
}

// Edges of Attempt.
func (Attempt) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("app", App.Type).
			Ref("attempts").
			Field("app_id").
			Unique().
			Required().
			Immutable().
			Annotations(entgql.Skip()),
		edge.From("delivery", Delivery.Type).
			Ref("attempts").
			Field("delivery_id").
			Unique().
			Required().
			Immutable(),
		edge.From("endpoint", Endpoint.Type).
			Ref("attempts").
			Field("endpoint_id").
			Unique().
			Required().
			Immutable().
			Annotations(entgql.Skip()),
	}
}

// Indexes of Attempt. Deleting an endpoint (retention prunes deleted
// ones) makes SQLite look for attempts that still refer to it, by
// endpoint_id: without an index that is a scan of every attempt. A
// rate-limited endpoint's latest attempts are read when an engine starts
// sending to it.
func (Attempt) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("delivery_id", "attempt_number"),
		index.Fields("endpoint_id", "completed_at"),
	}
}

// Annotations of Attempt.
func (Attempt) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
