package client

import (
	"context"
	"strings"
)

// AppCatalog returns the shared catalog of the app the client acts in:
// the event types it publishes besides its own.
func (c *Client) AppCatalog(ctx context.Context) (*Catalog, error) {
	r, err := viewerCatalog(ctx, c.gql)
	if err != nil {
		return nil, err
	}
	return &r.Viewer.App.Catalog, nil
}

// FindCatalog returns a shared catalog by ID (cat_…) or by name. App keys
// see only their app's catalog; admin keys every one.
func (c *Client) FindCatalog(ctx context.Context, idOrName string) (*Catalog, error) {
	var id, name *string
	if strings.HasPrefix(idOrName, "cat_") {
		id = &idOrName
	} else {
		name = &idOrName
	}
	r, err := findCatalogs(ctx, c.gql, id, name)
	if err != nil {
		return nil, err
	}
	if len(r.Catalogs.Edges) == 0 || r.Catalogs.Edges[0].Node == nil {
		return nil, notFound("catalog", idOrName)
	}
	return r.Catalogs.Edges[0].Node, nil
}

// CatalogEventTypes lists the types of a shared catalog by name, Herald's
// system types included.
func (c *Client) CatalogEventTypes(ctx context.Context, catalogID string, first int, after string) (*Page[EventType], error) {
	r, err := catalogEventTypes(ctx, c.gql, catalogID, pageSize(first), optString(after))
	if err != nil {
		return nil, err
	}
	if len(r.Catalogs.Edges) == 0 || r.Catalogs.Edges[0].Node == nil {
		return nil, notFound("catalog", catalogID)
	}
	ets := r.Catalogs.Edges[0].Node.EventTypes
	p := &Page[EventType]{TotalCount: ets.TotalCount, HasNextPage: ets.PageInfo.HasNextPage, EndCursor: endCursor(ets.PageInfo)}
	for _, e := range ets.Edges {
		if e != nil && e.Node != nil {
			p.Items = append(p.Items, *e.Node)
		}
	}
	return p, nil
}

// ImportResult says what ImportEventTypes changed, or (DryRun) would
// change: the names of the types in each group, and how many were already
// as listed.
type ImportResult struct {
	Created    []string `json:"created"`
	Updated    []string `json:"updated"`
	Archived   []string `json:"archived"`
	Unarchived []string `json:"unarchived"`
	Unchanged  int      `json:"unchanged"`
	DryRun     bool     `json:"dryRun"`
}

// ImportEventTypes makes a catalog's types what in lists (a catalog file's
// eventTypes): into the shared catalog catalogID (admin keys), or, with
// catalogID "", into the app's own types. Importing the same list again
// changes nothing.
func (c *Client) ImportEventTypes(ctx context.Context, catalogID string, in ImportEventTypesInput) (*ImportResult, error) {
	r, err := importEventTypes(ctx, c.gql, optString(catalogID), &in)
	if err != nil {
		return nil, err
	}
	p := r.ImportEventTypes
	return &ImportResult{Created: p.Created, Updated: p.Updated, Archived: p.Archived, Unarchived: p.Unarchived,
		Unchanged: p.Unchanged, DryRun: p.DryRun}, nil
}
