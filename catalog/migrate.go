package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/app"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/tenant"
)

// Migration says what MigrateToShared did.
type Migration struct {
	// Ran reports whether the database needed it: false once it has a
	// default catalog.
	Ran bool
	// DefaultID is the default catalog's ID.
	DefaultID string
	// Apps counts the apps that joined the default catalog.
	Apps int
	// Shared are the types moved to the default catalog: every app had
	// an identical copy. Kept are those left with their apps: some apps
	// lacked them or their copies differed. (System types are left out
	// of both: every catalog has Herald's.)
	Shared, Kept []string
}

// MigrateToShared brings a database from the time when every app had a
// catalog of its own (a copy of the same seeded types, plus its own) to
// shared catalogs. It runs once, at start, in one transaction: on a
// database with a default catalog it does nothing. It
//
//   - creates the default catalog, with Herald's system types, and puts
//     every app in it;
//   - moves each type that every app has an identical copy of (same
//     description, example, schema and archived state) to the default
//     catalog, as one type;
//   - leaves every other type with its app, as one of the app's own
//     (without the "built-in" mark of the formerly seeded types: only
//     system types are built in);
//   - keeps the apps' copies of the moved types and of the system types,
//     marked built in: replicas of an earlier release that still run
//     during a rolling upgrade read an app's types by app and publish
//     them from these copies. This release reads none of them (OwnTypes);
//     a later one deletes them.
//
// A fresh database gets the default catalog and nothing else. Callers
// keep other processes from running it at the same time (the server holds
// its bootstrap lock).
func MigrateToShared(ctx context.Context, client *ent.Client) (*Migration, error) {
	ctx = tenant.System(ctx)
	m := &Migration{}
	err := db.WithTx(ctx, client, func(tx *ent.Client) error {
		if _, err := Default(ctx, tx); err == nil {
			return nil
		} else if !errors.Is(err, ErrNoDefault) {
			return err
		}
		m.Ran = true
		def, err := tx.Catalog.Create().SetName(DefaultName).SetIsDefault(true).
			SetDescription("The installation's catalog: every app created without another catalog publishes its types.").Save(ctx)
		if err != nil {
			return fmt.Errorf("create the default catalog: %w", err)
		}
		m.DefaultID = def.ID
		if m.Apps, err = tx.App.Update().Where(app.Or(app.CatalogIDIsNil(), app.CatalogID(""))).SetCatalogID(def.ID).Save(ctx); err != nil {
			return fmt.Errorf("put the apps in the default catalog: %w", err)
		}
		apps, err := tx.App.Query().Count(ctx)
		if err != nil {
			return fmt.Errorf("count apps: %w", err)
		}
		perApp := eventtype.And(eventtype.AppIDNotNil(), eventtype.AppIDNEQ(""), eventtype.NameNotIn(systemNames()...))
		if _, err := tx.EventType.Update().Where(eventtype.AppIDNotNil(), eventtype.AppIDNEQ(""), eventtype.NameIn(systemNames()...)).
			SetBuiltIn(true).Save(ctx); err != nil {
			return fmt.Errorf("keep the apps' copies of the system types for earlier releases: %w", err)
		}
		var counts []struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		if err := tx.EventType.Query().Where(perApp).GroupBy(eventtype.FieldName).Aggregate(ent.Count()).Scan(ctx, &counts); err != nil {
			return fmt.Errorf("count the apps' types: %w", err)
		}
		for _, c := range counts {
			if c.Count != apps {
				m.Kept = append(m.Kept, c.Name)
				continue
			}
			moved, err := moveIfIdentical(ctx, tx, def.ID, c.Name)
			if err != nil {
				return err
			}
			if moved {
				m.Shared = append(m.Shared, c.Name)
			} else {
				m.Kept = append(m.Kept, c.Name)
			}
		}
		if len(m.Kept) > 0 {
			if _, err := tx.EventType.Update().Where(perApp, eventtype.NameIn(m.Kept...)).SetBuiltIn(false).Save(ctx); err != nil {
				return fmt.Errorf("unmark the formerly seeded types the apps keep: %w", err)
			}
		}
		return seedSystem(ctx, tx, def.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("migrate to shared catalogs: %w", err)
	}
	slices.Sort(m.Shared)
	slices.Sort(m.Kept)
	return m, nil
}

// moveIfIdentical puts one type in the catalog in place of the apps'
// copies of a type if they are all the same (keeping the copies, marked,
// for earlier releases), and reports whether it did.
func moveIfIdentical(ctx context.Context, tx *ent.Client, catalogID, name string) (bool, error) {
	copies, err := tx.EventType.Query().Where(eventtype.Name(name), eventtype.AppIDNotNil(), eventtype.AppIDNEQ("")).All(ctx)
	if err != nil {
		return false, fmt.Errorf("read the copies of %s: %w", name, err)
	}
	first := copies[0]
	created := first.CreatedAt
	for _, et := range copies[1:] {
		if et.Description != first.Description || !sameJSON(et.Example, first.Example) ||
			!sameJSON(et.JSONSchema, first.JSONSchema) || (et.ArchivedAt == nil) != (first.ArchivedAt == nil) {
			return false, nil
		}
		if et.CreatedAt.Before(created) {
			created = et.CreatedAt
		}
	}
	// The copies stay for earlier releases, marked as such.
	if _, err := tx.EventType.Update().Where(eventtype.Name(name), eventtype.AppIDNotNil(), eventtype.AppIDNEQ("")).SetBuiltIn(true).Save(ctx); err != nil {
		return false, fmt.Errorf("keep the copies of %s for earlier releases: %w", name, err)
	}
	create := createType(tx.EventType.Create().SetCatalogID(catalogID).SetCreatedAt(created), DefinitionOf(first))
	if first.ArchivedAt != nil {
		create.SetArchivedAt(first.ArchivedAt.UTC())
	}
	create.SetUpdatedAt(time.Now().UTC())
	if err := create.Exec(ctx); err != nil {
		return false, fmt.Errorf("add %s to the default catalog: %w", name, err)
	}
	return true, nil
}
