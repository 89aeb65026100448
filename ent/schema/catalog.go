package schema

import (
	"context"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"

	"github.com/heraldhq/herald/ent/intercept"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
)

// Catalog is a shared event-type catalog: the event types a group of apps
// publishes, defined once for all of them. Every installation has one
// default catalog, which apps belong to unless an admin puts them in
// another; each app may add types of its own (EventType rows with an
// app_id instead of a catalog_id).
type Catalog struct {
	ent.Schema
}

// Mixin of Catalog.
func (Catalog) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.Catalog}, timeMixin{}}
}

// Fields of Catalog.
func (Catalog) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").
			NotEmpty().
			MaxRuneLen(100).
			Unique().
			Annotations(entgql.OrderField("NAME")),
		field.Text("description").
			Default(""),
		field.Bool("is_default").
			Default(false).
			Immutable().
			Comment("The installation's catalog: apps created without a catalog belong to it. It cannot be deleted."),
	}
}

// Edges of Catalog.
func (Catalog) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("apps", App.Type).
			Annotations(entgql.RelayConnection()),
		// Read through Catalog.eventTypes (graph), which shows the
		// catalog's types to whoever may see the catalog.
		edge.To("event_types", EventType.Type).
			Annotations(entgql.Skip(), entsql.OnDelete(entsql.Cascade)),
	}
}

// Annotations of Catalog.
func (Catalog) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField("catalogs"),
		entgql.RelayConnection(),
	}
}

// Interceptors of Catalog: admin keys see every catalog, other keys only
// the one of the app they act in.
func (Catalog) Interceptors() []ent.Interceptor {
	return []ent.Interceptor{
		intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
			if tenant.IsSystem(ctx) {
				return nil
			}
			v, ok := tenant.FromContext(ctx)
			if !ok {
				return tenant.ErrNoViewer
			}
			if v.Admin {
				return nil
			}
			q.WhereP(func(s *sql.Selector) {
				s.Where(sql.In(s.C("id"), appCatalog(v.AppID)))
			})
			return nil
		}),
	}
}

// Hooks of Catalog: only admin keys create or change catalogs.
func (Catalog) Hooks() []ent.Hook {
	return []ent.Hook{adminOnly}
}

// appCatalog selects the catalog of an app.
func appCatalog(appID string) *sql.Selector {
	return sql.Select("catalog_id").From(sql.Table("apps")).Where(sql.EQ("id", appID))
}
