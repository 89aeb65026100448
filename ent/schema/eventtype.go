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

// EventType is an entry of an event catalog: a name endpoints subscribe to,
// with documentation, an example payload and an optional JSON Schema that
// published payloads must satisfy. It belongs either to a shared catalog
// (catalog_id), for every app of that catalog, or to one app (app_id), as
// one of the types that app adds to its catalog's.
type EventType struct {
	ent.Schema
}

// Mixin of EventType.
func (EventType) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.EventType}, timeMixin{}, eventTypeTenancy{}}
}

// Fields of EventType.
func (EventType) Fields() []ent.Field {
	return []ent.Field{
		field.String("app_id").
			Optional().
			Immutable().
			Annotations(entgql.Skip()).
			Comment("The app of one of an app's own types; empty for a shared catalog's."),
		field.String("catalog_id").
			Optional().
			Immutable().
			Annotations(entgql.Skip()).
			Comment("The shared catalog of a shared type; empty for an app's own."),
		field.String("name").
			NotEmpty().
			MaxLen(128).
			Immutable().
			Annotations(entgql.OrderField("NAME")),
		field.Text("description").
			Default(""),
		field.JSON("example", json.RawMessage{}).
			Optional().
			SchemaType(keepBytes).
			Annotations(entgql.Type("JSON")),
		field.JSON("json_schema", json.RawMessage{}).
			Optional().
			SchemaType(keepBytes).
			Annotations(entgql.Type("JSON")),
		field.Bool("built_in").
			Default(false).
			Comment("One of Herald's system types (test.ping, webhook.*), which Herald defines and publishes."),
		field.Time("archived_at").
			Optional().
			Nillable().
			Comment("Archived types cannot be published."),
	}
}

// Edges of EventType.
func (EventType) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("app", App.Type).
			Ref("event_types").
			Field("app_id").
			Unique().
			Immutable().
			Annotations(entgql.Skip()),
		edge.From("catalog", Catalog.Type).
			Ref("event_types").
			Field("catalog_id").
			Unique().
			Immutable().
			Annotations(entgql.Skip()),
	}
}

// Indexes of EventType.
func (EventType) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("app_id", "name").Unique(),
		index.Fields("catalog_id", "name").Unique(),
	}
}

// Annotations of EventType.
func (EventType) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}
