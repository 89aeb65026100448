package graph

import (
	"context"
	"fmt"

	"entgo.io/contrib/entgql"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/graph/model"
	"github.com/heraldhq/herald/tenant"
)

// appCatalog returns an app's shared catalog (the default one for a row
// from before catalogs). Whoever reads the app may read its catalog.
func (r *Resolver) appCatalog(ctx context.Context, a *ent.App) (*ent.Catalog, error) {
	if a.CatalogID == "" {
		return catalog.Default(ctx, r.client)
	}
	c, err := r.client.Catalog.Get(ctx, a.CatalogID)
	if err != nil {
		return nil, fmt.Errorf("read the catalog of app %s: %w", a.ID, err)
	}
	return c, nil
}

// catalogTypes pages through a shared catalog's types. Whoever reads the
// catalog (the data layer let it through) reads its types.
func (r *Resolver) catalogTypes(ctx context.Context, c *ent.Catalog, after *entgql.Cursor[string], first *int, before *entgql.Cursor[string], last *int, orderBy *ent.EventTypeOrder, where *ent.EventTypeWhereInput) (*ent.EventTypeConnection, error) {
	return r.client.EventType.Query().Where(eventtype.CatalogID(c.ID)).Paginate(tenant.System(ctx), after, first, before, last,
		ent.WithEventTypeOrder(orderBy), ent.WithEventTypeFilter(where.Filter))
}

// definitions converts importEventTypes' list.
func definitions(in []*model.EventTypeDefinitionInput) []catalog.Definition {
	out := make([]catalog.Definition, len(in))
	for i, d := range in {
		out[i] = catalog.Definition{
			Name:        d.Name,
			Description: deref(d.Description),
			Example:     nullToEmpty(d.Example),
			JSONSchema:  nullToEmpty(d.JSONSchema),
			Archived:    deref(d.Archived),
		}
	}
	return out
}
