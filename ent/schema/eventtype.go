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

// EventType is an entry of an app's event catalog: a name endpoints subscribe
// to, with documentation, an example payload and an optional JSON Schema
// that published payloads must satisfy.
type EventType struct {
	ent.Schema
}

// Mixin of EventType.
func (EventType) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.EventType}, timeMixin{}, tenantMixin{}}
}

// Fields of EventType.
func (EventType) Fields() []ent.Field {
	return []ent.Field{
		appIDField(),
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
			Immutable().
			Comment("Seeded by Herald for every app."),
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
			Required().
			Immutable().
			Annotations(entgql.Skip()),
	}
}

// Indexes of EventType.
func (EventType) Indexes() []ent.Index {
	return []ent.Index{index.Fields("app_id", "name").Unique()}
}

// Annotations of EventType.
func (EventType) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}
