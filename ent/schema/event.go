package schema

import (
	"encoding/json"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/heraldhq/herald/ids"
)

// Event is one published occurrence of an event type with its payload. It is
// immutable; its deliveries record what happened to it at each endpoint.
type Event struct {
	ent.Schema
}

// Mixin of Event.
func (Event) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.Event}, tenantMixin{}}
}

// Fields of Event.
func (Event) Fields() []ent.Field {
	return []ent.Field{
		appIDField(),
		field.String("event_type").
			NotEmpty().
			Immutable().
			Annotations(entgql.OrderField("EVENT_TYPE")),
		field.JSON("payload", json.RawMessage{}).
			Immutable().
			SchemaType(keepBytes).
			Annotations(entgql.Type("JSON")).
			Comment("Delivered byte for byte as published: stored as PostgreSQL json, never jsonb."),
		field.String("idempotency_key").
			Optional().
			Nillable().
			Immutable().
			MaxLen(255),
		field.String("ordering_key").
			Optional().
			Nillable().
			Immutable().
			MaxLen(255).
			Comment("Events sharing a key reach endpoints with ordering KEY one at a time, in publish order."),
		field.Time("deliver_at").
			Optional().
			Nillable().
			Immutable().
			Comment("When the event's deliveries are sent (deliverAt on publish); null: at once."),
		field.Int("delivery_count").
			Default(0).
			Immutable().
			Comment("Deliveries created when the event was published (its fan-out)."),
		field.Time("created_at").
			Immutable().
			Default(Now).
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Bool("test").
			Default(false).
			Immutable().
			Comment("A test event sent by testEndpoint: never a business event. Its envelope says \"test\": true, which the signature covers."),
		field.String("trace_parent").
			Optional().
			Nillable().
			Immutable().
			MaxLen(55).
			Annotations(entgql.Skip()).
			Comment("W3C traceparent of the publish when tracing is on: the deliveries' attempt spans link to it."),
	}
}

// Edges of Event.
func (Event) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("app", App.Type).
			Ref("events").
			Field("app_id").
			Unique().
			Required().
			Immutable().
			Annotations(entgql.Skip()),
		edge.To("deliveries", Delivery.Type).
			Annotations(entgql.RelayConnection()),
	}
}

// Indexes of Event.
func (Event) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("app_id", "idempotency_key").Unique(),
		index.Fields("app_id", "created_at"),
		index.Fields("app_id", "event_type", "created_at"),
	}
}

// Annotations of Event.
func (Event) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}
