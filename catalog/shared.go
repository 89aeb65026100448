package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/app"
	entcatalog "github.com/heraldhq/herald/ent/catalog"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/tenant"
)

// DefaultName is the name of the installation's default catalog.
const DefaultName = "default"

// MaxSharedTypes bounds the types of one shared catalog, archived ones and
// the system types included. (An app's own types are bounded by its
// EVENT_TYPES limit, package quota.)
const MaxSharedTypes = 10000

// ErrNoDefault is the error of Default on a database that MigrateToShared
// has not prepared.
var ErrNoDefault = errors.New("the database has no default catalog: run catalog.MigrateToShared first")

// Default returns the installation's default catalog.
func Default(ctx context.Context, client *ent.Client) (*ent.Catalog, error) {
	c, err := client.Catalog.Query().Where(entcatalog.IsDefault(true)).First(tenant.System(ctx))
	if ent.IsNotFound(err) {
		return nil, ErrNoDefault
	}
	if err != nil {
		return nil, fmt.Errorf("read the default catalog: %w", err)
	}
	return c, nil
}

func defaultID(ctx context.Context, client *ent.Client) (string, error) {
	c, err := Default(ctx, client)
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

// appCatalogID returns the catalog of an app.
func appCatalogID(ctx context.Context, client *ent.Client, appID string) (string, error) {
	ctx = tenant.System(ctx)
	a, err := client.App.Query().Where(app.ID(appID)).Select(app.FieldCatalogID).Only(ctx)
	if err != nil {
		return "", fmt.Errorf("read the catalog of app %s: %w", appID, err)
	}
	if a.CatalogID == "" {
		return defaultID(ctx, client)
	}
	return a.CatalogID, nil
}

// ResolveApp returns the catalog an app created with catalogID joins: that
// one, which must exist (a fault on field otherwise), or the default
// catalog for "".
func ResolveApp(ctx context.Context, client *ent.Client, field, catalogID string) (string, error) {
	if catalogID == "" {
		return defaultID(ctx, client)
	}
	ok, err := client.Catalog.Query().Where(entcatalog.ID(catalogID)).Exist(tenant.System(ctx))
	if err != nil {
		return "", fmt.Errorf("look up catalog %s: %w", catalogID, err)
	}
	if !ok {
		return "", fault.Invalid(field, "catalog %q does not exist: the catalogs query lists them", catalogID)
	}
	return catalogID, nil
}

// lockCatalog marks a catalog as changed now, which also takes its row
// lock for the rest of the transaction, so that concurrent additions count
// each other. An unknown catalog is a fault on field.
func lockCatalog(ctx context.Context, tx *ent.Client, field, catalogID string) error {
	n, err := tx.Catalog.Update().Where(entcatalog.ID(catalogID)).SetUpdatedAt(time.Now().UTC()).Save(tenant.System(ctx))
	if err != nil {
		return fmt.Errorf("lock catalog %s: %w", catalogID, err)
	}
	if n == 0 {
		return fault.Invalid(field, "catalog %q does not exist: the catalogs query lists them", catalogID)
	}
	return nil
}

// checkSharedRoom refuses adding more types to a shared catalog than
// MaxSharedTypes.
func checkSharedRoom(ctx context.Context, tx *ent.Client, catalogID string, adding int) error {
	n, err := tx.EventType.Query().Where(eventtype.CatalogID(catalogID)).Count(tenant.System(ctx))
	if err != nil {
		return fmt.Errorf("count the types of catalog %s: %w", catalogID, err)
	}
	if n+adding > MaxSharedTypes {
		return &fault.Error{Code: fault.Forbidden, Reason: "QUOTA", Message: fmt.Sprintf(
			"a catalog holds at most %d event types and this one has %d: archive or reuse types instead of adding %d", MaxSharedTypes, n, adding)}
	}
	return nil
}

// CatalogInput describes a new shared catalog, or changes to one (nil
// fields stay as they are).
type CatalogInput struct {
	Name        *string
	Description *string
}

func checkCatalogInput(in CatalogInput) error {
	var errs fault.List
	if in.Name != nil {
		if n := utf8.RuneCountInString(strings.TrimSpace(*in.Name)); n == 0 || n > 100 {
			errs.Add(fault.Invalid("input.name", "must be 1-100 characters"))
		}
	}
	if in.Description != nil && len(*in.Description) > 4096 {
		errs.Add(fault.Invalid("input.description", "must be at most 4096 characters"))
	}
	return errs.Err()
}

func nameTaken(name string) error {
	return &fault.Error{Code: fault.Conflict, Field: "input.name", Reason: "CATALOG_EXISTS",
		Message: fmt.Sprintf("a catalog is already named %q: choose another name", name)}
}

// CreateCatalog makes a shared catalog (admin keys), with Herald's system
// types and nothing else.
func (c *Catalog) CreateCatalog(ctx context.Context, in CatalogInput) (*ent.Catalog, error) {
	if err := requireAdmin(ctx, "create catalogs"); err != nil {
		return nil, err
	}
	if in.Name == nil {
		return nil, fault.Invalid("input.name", "is required")
	}
	if err := checkCatalogInput(in); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(*in.Name)
	var cat *ent.Catalog
	err := db.WithTx(ctx, c.client, func(tx *ent.Client) error {
		create := tx.Catalog.Create().SetName(name)
		if in.Description != nil {
			create.SetDescription(*in.Description)
		}
		var err error
		if cat, err = create.Save(ctx); err != nil {
			return err
		}
		if err := seedSystem(ctx, tx, cat.ID); err != nil {
			return err
		}
		fields := map[string]any{"name": name}
		if in.Description != nil {
			fields["description"] = *in.Description
		}
		return audit.Record(ctx, tx, audit.Change{TargetType: "Catalog", TargetID: cat.ID, Fields: fields}, time.Now())
	})
	if ent.IsConstraintError(err) {
		return nil, nameTaken(name)
	}
	if err != nil {
		return nil, fmt.Errorf("create catalog %s: %w", name, err)
	}
	return cat, nil
}

// UpdateCatalog renames or redescribes a shared catalog (admin keys).
func (c *Catalog) UpdateCatalog(ctx context.Context, id string, in CatalogInput) (*ent.Catalog, error) {
	if err := requireAdmin(ctx, "change catalogs"); err != nil {
		return nil, err
	}
	if err := checkCatalogInput(in); err != nil {
		return nil, err
	}
	var cat *ent.Catalog
	err := audit.Tx(ctx, c.client, func(tx *ent.Client) (audit.Change, error) {
		u := tx.Catalog.UpdateOneID(id)
		fields := map[string]any{}
		if in.Name != nil {
			u.SetName(strings.TrimSpace(*in.Name))
			fields["name"] = strings.TrimSpace(*in.Name)
		}
		if in.Description != nil {
			u.SetDescription(*in.Description)
			fields["description"] = *in.Description
		}
		var err error
		cat, err = u.Save(ctx)
		return audit.Change{TargetType: "Catalog", TargetID: id, Fields: fields}, err
	})
	switch {
	case ent.IsNotFound(err):
		return nil, fault.NotFoundf("catalog %q not found", id)
	case ent.IsConstraintError(err):
		return nil, nameTaken(strings.TrimSpace(*in.Name))
	case err != nil:
		return nil, fmt.Errorf("update catalog %s: %w", id, err)
	}
	return cat.Unwrap(), nil
}

// DeleteCatalog deletes a shared catalog and its types (admin keys). The
// default catalog, and a catalog that apps still belong to, cannot be
// deleted.
func (c *Catalog) DeleteCatalog(ctx context.Context, id string) error {
	if err := requireAdmin(ctx, "delete catalogs"); err != nil {
		return err
	}
	sys := tenant.System(ctx)
	err := db.WithTx(sys, c.client, func(tx *ent.Client) error {
		cat, err := tx.Catalog.Get(sys, id)
		if ent.IsNotFound(err) {
			return fault.NotFoundf("catalog %q not found", id)
		}
		if err != nil {
			return err
		}
		if cat.IsDefault {
			return fault.Forbiddenf("the default catalog cannot be deleted: apps created without a catalog join it")
		}
		n, err := tx.App.Query().Where(app.CatalogID(id)).Count(sys)
		if err != nil {
			return err
		}
		if n > 0 {
			return fault.Conflictf("CATALOG_IN_USE", "%d app(s) belong to catalog %q: move them to another with updateApp (input.catalogId) first", n, cat.Name)
		}
		if _, err := tx.EventType.Delete().Where(eventtype.CatalogID(id)).Exec(sys); err != nil {
			return err
		}
		if err := tx.Catalog.DeleteOneID(id).Exec(sys); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{TargetType: "Catalog", TargetID: id, Fields: map[string]any{"name": cat.Name}}, time.Now())
	})
	if _, ok := fault.As(err); ok {
		return err
	}
	if err != nil {
		return fmt.Errorf("delete catalog %s: %w", id, err)
	}
	c.Changed(id)
	return nil
}

func requireAdmin(ctx context.Context, what string) error {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return tenant.ErrNoViewer
	}
	if !v.Admin {
		return fault.Forbiddenf("only admin keys may %s", what)
	}
	return nil
}

// seedSystem adds the system types a catalog lacks.
func seedSystem(ctx context.Context, tx *ent.Client, catalogID string) error {
	ctx = tenant.System(ctx)
	have, err := tx.EventType.Query().Where(eventtype.CatalogID(catalogID), eventtype.NameIn(systemNames()...)).
		Select(eventtype.FieldName).Strings(ctx)
	if err != nil {
		return fmt.Errorf("read the system types of catalog %s: %w", catalogID, err)
	}
	var creates []*ent.EventTypeCreate
	for _, d := range SystemTypes() {
		if !slices.Contains(have, d.Name) {
			creates = append(creates, createType(tx.EventType.Create().SetCatalogID(catalogID).SetBuiltIn(true), d))
		}
	}
	if len(creates) == 0 {
		return nil
	}
	if err := tx.EventType.CreateBulk(creates...).Exec(ctx); err != nil {
		return fmt.Errorf("add the system types to catalog %s: %w", catalogID, err)
	}
	return nil
}

// EnsureSystemTypes gives every catalog the system types it lacks, such as
// one a newer Herald introduced. The server runs it at start.
func EnsureSystemTypes(ctx context.Context, client *ent.Client) error {
	ctx = tenant.System(ctx)
	catIDs, err := client.Catalog.Query().IDs(ctx)
	if err != nil {
		return fmt.Errorf("list catalogs: %w", err)
	}
	for _, id := range catIDs {
		if err := db.WithTx(ctx, client, func(tx *ent.Client) error { return seedSystem(ctx, tx, id) }); err != nil {
			return err
		}
	}
	return nil
}
