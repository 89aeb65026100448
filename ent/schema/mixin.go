// Package schema holds Herald's ent schemas. Everything else under ent/ is
// generated from it by `make generate`.
package schema

import (
	"context"
	"fmt"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"

	"github.com/heraldhq/herald/ent/intercept"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
)

// Now returns the current time in UTC. Every stored time is UTC so that the
// text representation SQLite uses compares in time order.
func Now() time.Time { return time.Now().UTC() }

// keepBytes is the column type of JSON fields whose bytes must be kept as
// they were written (payloads are signed and delivered as published). On
// PostgreSQL ent's default for JSON is jsonb, which reorders keys, drops
// duplicates and whitespace and rewrites escapes; json stores the text as
// given and only checks that it is valid. SQLite stores the bytes as given
// either way.
var keepBytes = map[string]string{dialect.Postgres: "json"}

// idMixin gives an entity a prefixed, time-sortable string ID (see package
// ids).
type idMixin struct {
	mixin.Schema
	prefix string
}

func (m idMixin) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").
			Immutable().
			NotEmpty().
			DefaultFunc(func() string { return ids.New(m.prefix) }),
	}
}

// timeMixin records creation and update times.
type timeMixin struct{ mixin.Schema }

func (timeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").
			Immutable().
			Default(Now).
			Annotations(
				entgql.OrderField("CREATED_AT"),
				entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput),
			),
		field.Time("updated_at").
			Default(Now).
			UpdateDefault(Now).
			Annotations(
				entgql.OrderField("UPDATED_AT"),
				entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput),
			),
	}
}

// wherer is implemented by every generated mutation builder.
type wherer interface {
	WhereP(...func(*sql.Selector))
}

// tenantMixin makes an entity owned by an app and isolates it: queries see
// only the viewer's app, creates are stamped with it, updates and deletes
// cannot reach other apps. The app_id field and its edge are declared by the
// entity itself (the edge's back-reference differs per entity).
type tenantMixin struct{ mixin.Schema }

func (tenantMixin) Interceptors() []ent.Interceptor {
	return []ent.Interceptor{scopeToApp("app_id", false)}
}

// scopeToApp filters every query to rows whose column equals the viewer's
// app. With adminSeesAll, admin viewers are not filtered.
func scopeToApp(column string, adminSeesAll bool) ent.Interceptor {
	return intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
		if tenant.IsSystem(ctx) {
			return nil
		}
		v, ok := tenant.FromContext(ctx)
		if !ok {
			return tenant.ErrNoViewer
		}
		if adminSeesAll && v.Admin {
			return nil
		}
		q.WhereP(sql.FieldEQ(column, v.AppID))
		return nil
	})
}

func (tenantMixin) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
				if tenant.IsSystem(ctx) {
					return next.Mutate(ctx, m)
				}
				v, ok := tenant.FromContext(ctx)
				if !ok {
					return nil, tenant.ErrNoViewer
				}
				if m.Op().Is(ent.OpCreate) {
					if got, ok := m.Field("app_id"); ok && got != v.AppID {
						return nil, fmt.Errorf("tenant: create %s in app %v from app %s", m.Type(), got, v.AppID)
					}
					if err := m.SetField("app_id", v.AppID); err != nil {
						return nil, fmt.Errorf("tenant: stamp %s: %w", m.Type(), err)
					}
					return next.Mutate(ctx, m)
				}
				w, ok := m.(wherer)
				if !ok {
					return nil, fmt.Errorf("tenant: unexpected mutation type %T", m)
				}
				w.WhereP(sql.FieldEQ("app_id", v.AppID))
				return next.Mutate(ctx, m)
			})
		},
	}
}

// appIDField is the owning app of a tenant entity. It is not exposed in
// GraphQL: isolation makes it implicit.
func appIDField() ent.Field {
	return field.String("app_id").
		Immutable().
		NotEmpty().
		Annotations(entgql.Skip())
}

type includeDeletedKey struct{}

// IncludeDeleted returns a copy of ctx in which queries also return
// soft-deleted rows (for logs that reference a deleted endpoint).
func IncludeDeleted(ctx context.Context) context.Context {
	return context.WithValue(ctx, includeDeletedKey{}, true)
}

// softDeleteMixin hides rows whose deleted_at is set from every query unless
// the context says IncludeDeleted.
type softDeleteMixin struct{ mixin.Schema }

func (softDeleteMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("deleted_at").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
	}
}

func (softDeleteMixin) Interceptors() []ent.Interceptor {
	return []ent.Interceptor{
		intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
			if b, _ := ctx.Value(includeDeletedKey{}).(bool); b {
				return nil
			}
			q.WhereP(sql.FieldIsNull("deleted_at"))
			return nil
		}),
	}
}

// eventTypeTenancy isolates event types, which belong either to an app or
// to a shared catalog: queries see the viewer's app's own types and those
// of its app's catalog (but for those an own type of the same name takes
// the place of); creates are stamped with the viewer's app (shared
// types are created by package catalog, in a system context, once it has
// checked the caller may); updates and deletes reach only the viewer's
// app's own types.
type eventTypeTenancy struct{ mixin.Schema }

func (eventTypeTenancy) Interceptors() []ent.Interceptor {
	return []ent.Interceptor{
		intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
			if tenant.IsSystem(ctx) {
				return nil
			}
			v, ok := tenant.FromContext(ctx)
			if !ok {
				return tenant.ErrNoViewer
			}
			q.WhereP(func(s *sql.Selector) {
				// The app's own types, and its catalog's except those an
				// own type of the same name takes the place of. An app's
				// row marked built in is its copy from before shared
				// catalogs (see catalog.MigrateToShared), which only
				// earlier releases read.
				own := sql.Table("event_types").As("own")
				s.Where(sql.Or(
					sql.And(sql.EQ(s.C("app_id"), v.AppID), sql.EQ(s.C("built_in"), false)),
					sql.And(
						sql.In(s.C("catalog_id"), appCatalog(v.AppID)),
						sql.NotIn(s.C("name"), sql.Select(own.C("name")).From(own).
							Where(sql.And(sql.EQ(own.C("app_id"), v.AppID), sql.EQ(own.C("built_in"), false)))),
					),
				))
			})
			return nil
		}),
	}
}

func (eventTypeTenancy) Hooks() []ent.Hook {
	return []ent.Hook{
		func(next ent.Mutator) ent.Mutator {
			return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
				if tenant.IsSystem(ctx) {
					return next.Mutate(ctx, m)
				}
				v, ok := tenant.FromContext(ctx)
				if !ok {
					return nil, tenant.ErrNoViewer
				}
				if m.Op().Is(ent.OpCreate) {
					if got, ok := m.Field("catalog_id"); ok && got != "" {
						return nil, fmt.Errorf("tenant: create a shared %s in catalog %v from app %s", m.Type(), got, v.AppID)
					}
					if got, ok := m.Field("app_id"); ok && got != v.AppID {
						return nil, fmt.Errorf("tenant: create %s in app %v from app %s", m.Type(), got, v.AppID)
					}
					if err := m.SetField("app_id", v.AppID); err != nil {
						return nil, fmt.Errorf("tenant: stamp %s: %w", m.Type(), err)
					}
					return next.Mutate(ctx, m)
				}
				w, ok := m.(wherer)
				if !ok {
					return nil, fmt.Errorf("tenant: unexpected mutation type %T", m)
				}
				w.WhereP(sql.FieldEQ("app_id", v.AppID))
				return next.Mutate(ctx, m)
			})
		},
	}
}
