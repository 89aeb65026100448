package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/heraldhq/herald/ids"
)

// Delivery is one event on its way to one endpoint. The dispatch engine moves
// it through its states and records every HTTP try as an Attempt.
//
//	PENDING ──claim──▶ SENDING ──2xx──▶ SUCCEEDED
//	   ▲                  │
//	   │                  ├──retryable, attempts left──▶ RETRYING ──due──▶ SENDING
//	   │                  └──permanent or exhausted────▶ FAILED
//	   └──────────── retryDelivery / replayDeliveries ◀──┘
//
// next_attempt_at is set exactly while the delivery is unfinished: it is
// when the next attempt is due (for a lease-writing claimer, the lease
// expiry while SENDING). The SQLite engine keeps its leases in memory, so a
// delivery being sent still reads PENDING or RETRYING in the database; the
// live feed reports SENDING.
type Delivery struct {
	ent.Schema
}

// Mixin of Delivery.
func (Delivery) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.Delivery}, timeMixin{}, tenantMixin{}}
}

// Fields of Delivery.
func (Delivery) Fields() []ent.Field {
	return []ent.Field{
		appIDField(),
		field.String("event_id").
			Immutable().
			NotEmpty(),
		field.String("endpoint_id").
			Immutable().
			NotEmpty(),
		field.String("event_type").
			Immutable().
			NotEmpty(),
		field.String("ordering_key").
			Optional().
			Nillable().
			Immutable().
			Comment("The event's ordering key, copied so that ordered claims find each key's oldest unfinished delivery by index."),
		field.Enum("status").
			NamedValues(
				"Pending", "PENDING",
				"Sending", "SENDING",
				"Retrying", "RETRYING",
				"Succeeded", "SUCCEEDED",
				"Failed", "FAILED",
			).
			Default("PENDING").
			Annotations(entgql.Type("DeliveryStatus"), entgql.OrderField("STATUS")),
		field.Int("attempt_count").
			Default(0),
		field.Time("next_attempt_at").
			Optional().
			Nillable().
			Annotations(entgql.Skip()),
		field.Enum("next_trigger").
			Values("SCHEDULED", "MANUAL_RETRY", "TEST").
			Default("SCHEDULED").
			Annotations(entgql.Skip()),
		field.String("claimed_by").
			Optional().
			Nillable().
			Annotations(entgql.Skip()),
		field.Time("last_attempt_at").
			Optional().
			Nillable(),
		field.Int("last_response_status").
			Optional().
			Nillable(),
		field.Text("last_error").
			Optional().
			Nillable(),
		field.Time("completed_at").
			Optional().
			Nillable(),
	}
}

// Edges of Delivery.
func (Delivery) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("app", App.Type).
			Ref("deliveries").
			Field("app_id").
			Unique().
			Required().
			Immutable().
			Annotations(entgql.Skip()),
		edge.From("event", Event.Type).
			Ref("deliveries").
			Field("event_id").
			Unique().
			Required().
			Immutable(),
		edge.From("endpoint", Endpoint.Type).
			Ref("deliveries").
			Field("endpoint_id").
			Unique().
			Required().
			Immutable().
			Annotations(entgql.Skip()),
		edge.To("attempts", Attempt.Type).
			Annotations(entgql.RelayConnection()),
	}
}

// Indexes of Delivery.
func (Delivery) Indexes() []ent.Index {
	return []ent.Index{
		// The engine's due scan, per endpoint: which endpoints have due
		// deliveries, and the oldest due of one endpoint. next_attempt_at is
		// set exactly while a delivery is unfinished, so finished ones are
		// not indexed and cost the engine nothing. (A predicate on status
		// would make every update of a delivery much slower.)
		index.Fields("endpoint_id", "next_attempt_at").
			StorageKey("delivery_due").
			Annotations(entsql.IndexWhere("next_attempt_at IS NOT NULL")),
		// Ordered endpoints' claims: a delivery may be sent only if no
		// older delivery of its key (or, with strict ordering, of its
		// endpoint: key "") is unfinished. Deliveries of endpoints that
		// do not order have no key and cost this index nothing.
		index.Fields("endpoint_id", "ordering_key", "created_at", "id").
			StorageKey("delivery_order").
			Annotations(entsql.IndexWhere("ordering_key IS NOT NULL AND next_attempt_at IS NOT NULL")),
		index.Fields("app_id", "created_at"),
		index.Fields("endpoint_id", "created_at"),
		index.Fields("event_id"),
	}
}

// Annotations of Delivery.
func (Delivery) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField("deliveries"),
		entgql.RelayConnection(),
	}
}
