package catalog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	entcatalog "github.com/heraldhq/herald/ent/catalog"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// dialects runs f on a fresh SQLite file and a fresh PostgreSQL database.
func dialects(t *testing.T, f func(t *testing.T, c *ent.Client)) {
	for _, tc := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "herald.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.New(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := db.Open(context.Background(), db.Config{DSN: tc.dsn(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			f(t, d.Client)
		})
	}
}

// oldType is an event type as a herald from before shared catalogs stored
// it: in one app's own catalog.
type oldType struct {
	name, description, example, schema string
	archived, builtIn                  bool
}

// seedOldCatalogs makes the database a herald from before shared catalogs
// left: apps without a catalog, each with its own copy of the seeded
// types (built in, system ones included) and types of its own.
func seedOldCatalogs(t *testing.T, c *ent.Client, perApp [][]oldType) []string {
	t.Helper()
	ctx := tenant.System(context.Background())
	var appIDs []string
	for i, types := range perApp {
		a, err := c.App.Create().SetName(fmt.Sprintf("app %d", i)).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		appIDs = append(appIDs, a.ID)
		for _, s := range catalog.SystemTypes() {
			types = append(types, oldType{name: s.Name, description: s.Description, example: string(s.Example), builtIn: true})
		}
		for _, ot := range types {
			create := c.EventType.Create().SetAppID(a.ID).SetName(ot.name).SetDescription(ot.description).SetBuiltIn(ot.builtIn).
				SetCreatedAt(time.Now().Add(-time.Duration(len(perApp)-i) * time.Hour).UTC())
			if ot.example != "" {
				create.SetExample(json.RawMessage(ot.example))
			}
			if ot.schema != "" {
				create.SetJSONSchema(json.RawMessage(ot.schema))
			}
			if ot.archived {
				create.SetArchivedAt(time.Now().UTC())
			}
			if err := create.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return appIDs
}

func TestMigrateToShared_MovesIdenticalCopiesAndKeepsTheRestWithTheirApps(t *testing.T) {
	dialects(t, func(t *testing.T, c *ent.Client) {
		ctx := context.Background()
		seeded := func(name, desc, example string) oldType {
			return oldType{name: name, description: desc, example: example, builtIn: true}
		}
		orderCreated := seeded("order.created", "An order was placed.", `{"orderId":"ord_1"}`)
		orderPaid := seeded("order.paid", "An order was paid.", `{"orderId":"ord_1"}`)
		contact := seeded("contact.created", "A contact was added.", `{"contactId":"con_1"}`)
		lesson := seeded("lesson.completed", "A lesson was completed.", "")
		lesson.archived = true
		shipment := oldType{name: "shipment.sent", description: "Sent.", schema: `{"type":"object","required":["id"]}`}
		shipmentSpaced := shipment
		shipmentSpaced.schema = `{ "type": "object", "required": [ "id" ] }`
		paidArchived := orderPaid
		paidArchived.archived = true
		contactRenamed := contact
		contactRenamed.description = "A customer contact was added."
		invoice := oldType{name: "invoice.paid", description: "Only the first app has it."}

		appIDs := seedOldCatalogs(t, c, [][]oldType{
			{orderCreated, orderPaid, contact, lesson, shipment, invoice},
			{orderCreated, orderPaid, contactRenamed, lesson, shipmentSpaced},
			{orderCreated, paidArchived, contact, lesson, shipment},
		})

		m, err := catalog.MigrateToShared(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Ran || m.Apps != 3 {
			t.Errorf("migration ran %v for %d apps, want it to run for the 3", m.Ran, m.Apps)
		}
		if want := []string{"lesson.completed", "order.created", "shipment.sent"}; !slices.Equal(m.Shared, want) {
			t.Errorf("shared %v, want %v", m.Shared, want)
		}
		if want := []string{"contact.created", "invoice.paid", "order.paid"}; !slices.Equal(m.Kept, want) {
			t.Errorf("kept %v, want %v", m.Kept, want)
		}

		sys := tenant.System(ctx)
		def, err := catalog.Default(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if def.ID != m.DefaultID || def.Name != catalog.DefaultName || !def.IsDefault {
			t.Errorf("default catalog %+v, migration says %s", def, m.DefaultID)
		}
		for _, id := range appIDs {
			a, err := c.App.Get(sys, id)
			if err != nil || a.CatalogID != def.ID {
				t.Errorf("app %s is in catalog %q (%v), want the default %s", id, a.CatalogID, err, def.ID)
			}
		}

		shared, err := c.EventType.Query().Where(eventtype.CatalogID(def.ID)).Order(ent.Asc(eventtype.FieldName)).All(sys)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, et := range shared {
			names = append(names, et.Name)
			if et.BuiltIn != catalog.IsSystem(et.Name) {
				t.Errorf("shared %s builtIn = %v, want it only for system types", et.Name, et.BuiltIn)
			}
			switch et.Name {
			case "lesson.completed":
				if et.ArchivedAt == nil {
					t.Errorf("lesson.completed lost its archived state")
				}
			case "order.created":
				if et.Description != orderCreated.description || string(et.Example) != orderCreated.example || et.ArchivedAt != nil {
					t.Errorf("order.created moved as %+v", et)
				}
			case "shipment.sent":
				if !strings.Contains(string(et.JSONSchema), "required") {
					t.Errorf("shipment.sent lost its schema: %s", et.JSONSchema)
				}
			}
		}
		want := []string{"lesson.completed", "order.created", "shipment.sent", "test.ping", "webhook.certificate_expiring", "webhook.disabled", "webhook.failed"}
		if !slices.Equal(names, want) {
			t.Errorf("default catalog has %v, want %v", names, want)
		}

		// Each app keeps what was its own, and nothing built in.
		wantOwn := [][]string{
			{"contact.created", "invoice.paid", "order.paid"},
			{"contact.created", "order.paid"},
			{"contact.created", "order.paid"},
		}
		for i, id := range appIDs {
			own, err := c.EventType.Query().Where(catalog.OwnTypes(id)).Order(ent.Asc(eventtype.FieldName)).All(sys)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, et := range own {
				got = append(got, et.Name)
				if et.BuiltIn {
					t.Errorf("app %d's own %s is still marked built in", i, et.Name)
				}
			}
			if !slices.Equal(got, wantOwn[i]) {
				t.Errorf("app %d keeps %v, want %v", i, got, wantOwn[i])
			}
			// Its copies of the moved and the system types stay, marked,
			// for replicas of earlier releases, which read every type of
			// the app: they still find each type the app had.
			var copyNames []string
			if err := c.EventType.Query().Where(eventtype.AppID(id), eventtype.BuiltIn(true)).Order(ent.Asc(eventtype.FieldName)).
				Select(eventtype.FieldName).Scan(sys, &copyNames); err != nil {
				t.Fatal(err)
			}
			if want := []string{"lesson.completed", "order.created", "shipment.sent", "test.ping", "webhook.certificate_expiring", "webhook.disabled", "webhook.failed"}; !slices.Equal(copyNames, want) {
				t.Errorf("app %d's copies for earlier releases: %v, want %v", i, copyNames, want)
			}
			if n, err := c.EventType.Query().Where(eventtype.AppID(id)).Count(sys); err != nil || n != len(copyNames)+len(wantOwn[i]) {
				t.Errorf("an earlier release reads %d types of app %d (%v), want %d", n, i, err, len(copyNames)+len(wantOwn[i]))
			}
			// Its view: the shared types and its own, as the data layer
			// shows them to its keys.
			viewer := tenant.NewContext(ctx, tenant.Viewer{AppID: id, KeyID: "key_test"})
			if n, err := c.EventType.Query().Count(viewer); err != nil || n != len(want)+len(wantOwn[i]) {
				t.Errorf("app %d sees %d event types (%v), want %d", i, n, err, len(want)+len(wantOwn[i]))
			}
		}

		// Publishing checks each app's view.
		cat := catalog.New(c, time.Hour)
		for i, tc := range []struct {
			typ  string
			apps [3]bool
		}{
			{"order.created", [3]bool{true, true, true}},
			{"shipment.sent", [3]bool{true, true, true}},
			{"invoice.paid", [3]bool{true, false, false}},
			{"order.paid", [3]bool{true, true, false}}, // archived in the third app only
			{"lesson.completed", [3]bool{false, false, false}},
			{"test.ping", [3]bool{true, true, true}},
		} {
			for j, id := range appIDs {
				err := cat.CheckPublish(ctx, id, tc.typ, json.RawMessage(`{"id":"x","orderId":"o"}`))
				if (err == nil) != tc.apps[j] {
					t.Errorf("case %d: app %d publishing %s: %v, want allowed %v", i, j, tc.typ, err, tc.apps[j])
				}
			}
		}

		// An app moved to a catalog without the moved types may add them
		// as its own: its copies for earlier releases make way.
		other, err := c.Catalog.Create().SetName("other").Save(sys)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.App.UpdateOneID(appIDs[1]).SetCatalogID(other.ID).Exec(sys); err != nil {
			t.Fatal(err)
		}
		moved := tenant.NewContext(ctx, tenant.Viewer{AppID: appIDs[1], KeyID: "key_test"})
		if _, err := cat.Create(moved, catalog.CreateInput{Name: "order.created", Description: "Now its own."}); err != nil {
			t.Errorf("the moved app adds order.created of its own: %v", err)
		}
		if _, err := cat.Import(moved, "", []catalog.Definition{{Name: "shipment.sent"}, {Name: "lesson.completed"}}, catalog.ImportOptions{}); err != nil {
			t.Errorf("the moved app imports types it had copies of: %v", err)
		}
		var ownNames []string
		if err := c.EventType.Query().Where(catalog.OwnTypes(appIDs[1])).Order(ent.Asc(eventtype.FieldName)).Select(eventtype.FieldName).Scan(sys, &ownNames); err != nil {
			t.Fatal(err)
		}
		if want := []string{"contact.created", "lesson.completed", "order.created", "order.paid", "shipment.sent"}; !slices.Equal(ownNames, want) {
			t.Errorf("the moved app's own types: %v, want %v", ownNames, want)
		}

		// Once done, it is not done again: identical types that apps add
		// of their own later stay theirs.
		before, err := c.EventType.Query().Count(sys)
		if err != nil {
			t.Fatal(err)
		}
		again, err := catalog.MigrateToShared(ctx, c)
		if err != nil || again.Ran {
			t.Fatalf("second migration: ran %v (%v), want it to do nothing", again.Ran, err)
		}
		if after, err := c.EventType.Query().Count(sys); err != nil || after != before {
			t.Errorf("second migration changed the event types: %d before, %d after (%v)", before, after, err)
		}
		if n, err := c.Catalog.Query().Where(entcatalog.IsDefault(true)).Count(sys); err != nil || n != 1 {
			t.Errorf("%d default catalogs (%v)", n, err)
		}
	})
}

func TestMigrateToShared_FreshDatabaseGetsOnlyTheSystemTypes(t *testing.T) {
	dialects(t, func(t *testing.T, c *ent.Client) {
		ctx := context.Background()
		m, err := catalog.MigrateToShared(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Ran || m.Apps != 0 || len(m.Shared)+len(m.Kept) != 0 {
			t.Errorf("migration of an empty database: %+v", m)
		}
		names, err := c.EventType.Query().Order(ent.Asc(eventtype.FieldName)).Select(eventtype.FieldName).Strings(tenant.System(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"test.ping", "webhook.certificate_expiring", "webhook.disabled", "webhook.failed"}; !slices.Equal(names, want) {
			t.Errorf("a new database has event types %v, want only %v", names, want)
		}
	})
}

func TestImport_IsAllOrNothingAndIdempotent(t *testing.T) {
	dialects(t, func(t *testing.T, c *ent.Client) {
		ctx := context.Background()
		if _, err := catalog.MigrateToShared(ctx, c); err != nil {
			t.Fatal(err)
		}
		def, err := catalog.Default(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		cat := catalog.New(c, time.Hour)
		sys := tenant.System(ctx)
		defs := []catalog.Definition{
			{Name: "invoice.paid", Description: "Paid.", Example: json.RawMessage(`{"id": 1}`)},
			{Name: "invoice.sent", JSONSchema: json.RawMessage(`{"type":"object"}`)},
		}
		// One invalid definition: nothing is imported.
		bad := append(slices.Clone(defs), catalog.Definition{Name: "Invoice"}, catalog.Definition{Name: "invoice.voided", JSONSchema: json.RawMessage(`{"type":5}`)})
		_, err = cat.Import(sys, def.ID, bad, catalog.ImportOptions{})
		var list fault.List
		if !asList(err, &list) || len(list) != 2 || list[0].Field != "input.eventTypes[2].name" || list[1].Field != "input.eventTypes[3].jsonSchema" {
			t.Fatalf("import with two invalid definitions: %v, want both reported", err)
		}
		if n, _ := c.EventType.Query().Where(eventtype.CatalogID(def.ID)).Count(sys); n != len(catalog.SystemTypes()) {
			t.Fatalf("a refused import left %d types, want the %d system ones", n, len(catalog.SystemTypes()))
		}

		res, err := cat.Import(sys, def.ID, defs, catalog.ImportOptions{})
		if err != nil || !slices.Equal(res.Created, []string{"invoice.paid", "invoice.sent"}) {
			t.Fatalf("first import: %+v %v", res, err)
		}
		res, err = cat.Import(sys, def.ID, defs, catalog.ImportOptions{})
		if err != nil || res.Changed() || res.Unchanged != 2 {
			t.Fatalf("the same import again: %+v %v, want nothing changed", res, err)
		}
		// Whitespace of JSON does not count as a change; the archived
		// state and a removed example do.
		defs[0].Example = json.RawMessage("{\n  \"id\": 1\n}")
		defs[1].Archived = true
		res, err = cat.Import(sys, def.ID, defs, catalog.ImportOptions{})
		if err != nil || len(res.Updated) != 0 || !slices.Equal(res.Archived, []string{"invoice.sent"}) || res.Unchanged != 1 {
			t.Fatalf("archiving import: %+v %v", res, err)
		}
		defs[0].Example = nil
		res, err = cat.Import(sys, def.ID, defs[:1], catalog.ImportOptions{DryRun: true, ArchiveMissing: true})
		if err != nil || !res.DryRun || !slices.Equal(res.Updated, []string{"invoice.paid"}) || len(res.Archived) != 0 {
			t.Fatalf("dry run: %+v %v (invoice.sent is archived already)", res, err)
		}
		et, err := c.EventType.Query().Where(eventtype.CatalogID(def.ID), eventtype.Name("invoice.paid")).Only(sys)
		if err != nil || len(et.Example) == 0 {
			t.Fatalf("the dry run changed invoice.paid: %+v %v", et, err)
		}
	})
}

func asList(err error, l *fault.List) bool {
	if err == nil {
		return false
	}
	return l.Add(err)
}
