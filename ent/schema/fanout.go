package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// Fanout is a part of a large publish's fan-out that is not stored as
// deliveries yet. On SQLite, whose single writer every app shares, a
// publish that fans out to hundreds of endpoints stores its events and
// first deliveries in one transaction, with the rest of its deliveries
// written here in parts; the dispatch engine then turns one part at a
// time into deliveries, each in a short transaction of its own, so that
// other apps' publishes commit in between. A part that a crash left here
// is stored as deliveries when the engine starts again: an accepted
// event's fan-out is never lost. It is not part of the GraphQL schema and
// has no foreign keys.
type Fanout struct {
	ent.Schema
}

// Fields of Fanout.
func (Fanout) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").Immutable().NotEmpty().
			Comment("The part's first delivery ID: parts are stored in the order of their IDs."),
		field.String("app_id").Immutable().NotEmpty(),
		field.Bytes("deliveries").Immutable().
			Comment("The part's deliveries, as the dispatch engine encodes them."),
		field.Time("created_at").Immutable().Default(Now),
	}
}

// Annotations of Fanout.
func (Fanout) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
