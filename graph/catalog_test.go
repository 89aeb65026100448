package graph_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// defaultCatalog returns the ID of the catalog of the caller's app.
func appCatalog(t testing.TB, c *heraldtest.Client) string {
	t.Helper()
	var out struct {
		Viewer struct {
			App struct{ Catalog struct{ ID string } }
		}
	}
	c.Must(&out, `{ viewer { app { catalog { id } } } }`, nil)
	return out.Viewer.App.Catalog.ID
}

const createSharedTypeOp = `mutation($c: ID, $in: CreateEventTypeInput!) { createEventType(catalogId: $c, input: $in) { id name shared } }`

func TestSharedCatalog_AdminAddsForEveryAppAndAppsAddTheirOwn(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.Catalog = nil })
	admin := s.As(t, s.Token)
	_, tokenA := s.NewApp("alpha")
	_, tokenB := s.NewApp("beta")
	a, b := s.As(t, tokenA), s.As(t, tokenB)
	def := appCatalog(t, admin)
	if def == "" || appCatalog(t, a) != def || appCatalog(t, b) != def {
		t.Fatalf("the apps are not all in the default catalog %q", def)
	}

	// The admin adds a type to the shared catalog: every app has it.
	var shared struct{ CreateEventType struct{ Shared bool } }
	admin.Must(&shared, createSharedTypeOp, map[string]any{"c": def, "in": map[string]any{"name": "invoice.paid", "jsonSchema": map[string]any{"required": []string{"invoiceId"}}}})
	if !shared.CreateEventType.Shared {
		t.Errorf("a type created in the catalog is not shared")
	}
	for name, c := range map[string]*heraldtest.Client{"alpha": a, "beta": b} {
		if et := listEventTypes(t, c)["invoice.paid"]; !et.Shared {
			t.Errorf("%s does not see the shared invoice.paid: %+v", name, et)
		}
		publish(t, c, "invoice.paid", map[string]any{"invoiceId": "inv_1"})
		c.Do(`mutation { publishEvent(input: {eventType: "invoice.paid", payload: {}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.payload")
	}

	// An app key adds a type of its own: only its app has it.
	var own struct{ CreateEventType struct{ Shared bool } }
	a.Must(&own, createSharedTypeOp, map[string]any{"in": map[string]any{"name": "alpha.thing"}})
	if own.CreateEventType.Shared {
		t.Errorf("an app's own type says it is shared")
	}
	publish(t, a, "alpha.thing", map[string]any{})
	b.Do(`mutation { publishEvent(input: {eventType: "alpha.thing", payload: {}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.eventType")
	if _, ok := listEventTypes(t, b)["alpha.thing"]; ok {
		t.Errorf("beta sees alpha's own type")
	}

	// App keys cannot add to, or redefine, the shared catalog.
	a.Do(createSharedTypeOp, map[string]any{"c": def, "in": map[string]any{"name": "alpha.shared"}}).WantError(t, "FORBIDDEN")
	a.Do(createSharedTypeOp, map[string]any{"in": map[string]any{"name": "invoice.paid"}}).WantFault(t, "CONFLICT", "input.name")
	admin.Do(createSharedTypeOp, map[string]any{"c": def, "in": map[string]any{"name": "invoice.paid"}}).WantError(t, "CONFLICT")
	admin.Do(createSharedTypeOp, map[string]any{"c": "cat_01JDZ6Q4W8X3M5N7P9R2T4V6X8", "in": map[string]any{"name": "x.y"}}).WantFault(t, "BAD_USER_INPUT", "input.catalogId")

	// The admin changes the shared type: every app's publishing follows
	// at once.
	id := eventTypeID(t, admin, "invoice.paid")
	admin.Must(nil, `mutation($id: ID!) { updateEventType(id: $id, input: {jsonSchema: {required: ["invoiceId", "amount"]}}) { id } }`, map[string]any{"id": id})
	b.Do(`mutation { publishEvent(input: {eventType: "invoice.paid", payload: {invoiceId: "x"}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.payload")
	admin.Must(nil, `mutation($id: ID!) { archiveEventType(id: $id) { id } }`, map[string]any{"id": id})
	a.Do(`mutation { publishEvent(input: {eventType: "invoice.paid", payload: {invoiceId: "x", amount: 1}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.eventType")

	// An app's own types count against its EVENT_TYPES limit; the shared
	// catalog's do not.
	var limits struct {
		Viewer struct {
			App struct {
				Limits []struct {
					Name string
					Used *int
				}
			}
		}
	}
	a.Must(&limits, `{ viewer { app { limits { name used } } } }`, nil)
	for _, l := range limits.Viewer.App.Limits {
		if l.Name == "EVENT_TYPES" && (l.Used == nil || *l.Used != 1) {
			t.Errorf("alpha uses %v of EVENT_TYPES, want its 1 own type", l.Used)
		}
	}
}

func TestSharedCatalog_AnAppsOwnTypeTakesTheSharedOnesPlaceInItsView(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.Catalog = nil })
	admin := s.As(t, s.Token)
	_, tokenA := s.NewApp("alpha")
	a := s.As(t, tokenA)
	// alpha had the type first, of its own; then the platform shares one
	// of the same name.
	a.Must(nil, createSharedTypeOp, map[string]any{"in": map[string]any{"name": "invoice.paid", "description": "alpha's"}})
	admin.Must(nil, createSharedTypeOp, map[string]any{"c": appCatalog(t, admin), "in": map[string]any{"name": "invoice.paid", "description": "everyone's", "jsonSchema": map[string]any{"required": []string{"amount"}}}})

	got := listEventTypes(t, a)
	if et := got["invoice.paid"]; et.Shared || et.Description != "alpha's" {
		t.Errorf("alpha sees invoice.paid as %+v, want its own", et)
	}
	publish(t, a, "invoice.paid", map[string]any{}) // its own has no schema
	if et := listEventTypes(t, admin)["invoice.paid"]; !et.Shared || et.Description != "everyone's" {
		t.Errorf("the default app sees invoice.paid as %+v, want the shared one", et)
	}
}

func TestCatalogs_GroupAppsAndKeepTheirTypesApart(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	admin := s.As(t, s.Token)
	def := appCatalog(t, admin)

	var created struct{ CreateCatalog struct{ ID, Name string } }
	admin.Must(&created, `mutation { createCatalog(input: {name: "staging", description: "Test apps."}) { id name } }`, nil)
	staging := created.CreateCatalog.ID
	admin.Do(`mutation { createCatalog(input: {name: "staging"}) { id } }`, nil).WantFault(t, "CONFLICT", "input.name")
	admin.Do(`mutation { createCatalog(input: {name: " "}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.name")

	var app struct{ CreateApp struct{ ID string } }
	admin.Must(&app, `mutation($c: ID) { createApp(input: {name: "qa", catalogId: $c}) { id } }`, map[string]any{"c": staging})
	qa := admin.WithHeader("X-Herald-App", app.CreateApp.ID)
	if got := appCatalog(t, qa); got != staging {
		t.Fatalf("the qa app is in catalog %s, want staging %s", got, staging)
	}
	// A new catalog has the system types and nothing else.
	if got := listEventTypes(t, qa); len(got) != len(systemTypes) {
		t.Errorf("a new catalog's app sees %v, want only the system types", keys(got))
	}
	qa.Do(`mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.eventType")
	admin.Must(nil, createSharedTypeOp, map[string]any{"c": staging, "in": map[string]any{"name": "staging.only"}})
	publish(t, qa, "staging.only", map[string]any{})
	admin.Do(`mutation { publishEvent(input: {eventType: "staging.only", payload: {}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.eventType")

	// Catalog.eventTypes lists a catalog's types to admins.
	var list struct {
		Catalogs struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					ID, Name   string
					IsDefault  bool
					EventTypes struct{ TotalCount int }
					Apps       struct{ TotalCount int }
				}
			}
		}
	}
	admin.Must(&list, `{ catalogs(orderBy: {field: NAME}) { totalCount edges { node { id name isDefault eventTypes { totalCount } apps { totalCount } } } } }`, nil)
	if list.Catalogs.TotalCount != 2 || list.Catalogs.Edges[1].Node.Name != "staging" || list.Catalogs.Edges[1].Node.EventTypes.TotalCount != len(systemTypes)+1 ||
		list.Catalogs.Edges[1].Node.Apps.TotalCount != 1 || !list.Catalogs.Edges[0].Node.IsDefault {
		t.Errorf("catalogs = %+v", list.Catalogs)
	}
	// App keys see only their app's catalog.
	_, token := s.NewApp("plain")
	plain := s.As(t, token)
	plain.Must(&list, `{ catalogs { totalCount edges { node { id name isDefault eventTypes { totalCount } apps { totalCount } } } } }`, nil)
	if list.Catalogs.TotalCount != 1 || list.Catalogs.Edges[0].Node.ID != def || list.Catalogs.Edges[0].Node.Apps.TotalCount != 1 {
		t.Errorf("an app key sees catalogs %+v, want only its own, with only its app", list.Catalogs)
	}
	plain.Do(`mutation { createCatalog(input: {name: "mine"}) { id } }`, nil).WantError(t, "FORBIDDEN")
	plain.Do(`mutation($c: ID!) { updateApp(id: "x", input: {catalogId: $c}) { id } }`, map[string]any{"c": staging}).WantError(t, "FORBIDDEN")

	// A catalog in use, or the default, cannot be deleted; moving the
	// app out frees it.
	admin.Do(`mutation($id: ID!) { deleteCatalog(id: $id) { deletedId } }`, map[string]any{"id": staging}).WantError(t, "CONFLICT")
	admin.Do(`mutation($id: ID!) { deleteCatalog(id: $id) { deletedId } }`, map[string]any{"id": def}).WantError(t, "FORBIDDEN")
	admin.Must(nil, `mutation($id: ID!, $c: ID!) { updateApp(id: $id, input: {catalogId: $c}) { id } }`, map[string]any{"id": app.CreateApp.ID, "c": def})
	publish(t, qa, "order.created", map[string]any{})
	qa.Do(`mutation { publishEvent(input: {eventType: "staging.only", payload: {}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.eventType")
	admin.Must(nil, `mutation($id: ID!) { updateCatalog(id: $id, input: {name: "old staging"}) { id } }`, map[string]any{"id": staging})
	admin.Must(nil, `mutation($id: ID!) { deleteCatalog(id: $id) { deletedId } }`, map[string]any{"id": staging})
	admin.Do(`mutation($id: ID!) { deleteCatalog(id: $id) { deletedId } }`, map[string]any{"id": staging}).WantError(t, "NOT_FOUND")
}

const importOp = `mutation($c: ID, $in: ImportEventTypesInput!) {
	importEventTypes(catalogId: $c, input: $in) { created updated archived unarchived unchanged dryRun } }`

type importResult struct {
	Created, Updated, Archived, Unarchived []string
	Unchanged                              int
	DryRun                                 bool
}

func TestImportEventTypes_MakesTheCatalogWhatTheListSays(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.Catalog = nil })
	admin := s.As(t, s.Token)
	def := appCatalog(t, admin)
	list := []map[string]any{
		{"name": "invoice.paid", "description": "Paid.", "example": map[string]any{"invoiceId": "inv_1"}},
		{"name": "invoice.sent", "jsonSchema": map[string]any{"type": "object"}},
	}
	imp := func(c *heraldtest.Client, catalogID any, in map[string]any) importResult {
		t.Helper()
		var out struct{ ImportEventTypes importResult }
		c.Must(&out, importOp, map[string]any{"c": catalogID, "in": in})
		return out.ImportEventTypes
	}
	if r := imp(admin, def, map[string]any{"eventTypes": list, "dryRun": true}); !r.DryRun || !slices.Equal(r.Created, []string{"invoice.paid", "invoice.sent"}) {
		t.Fatalf("dry run: %+v", r)
	}
	if _, ok := listEventTypes(t, admin)["invoice.paid"]; ok {
		t.Fatal("the dry run created a type")
	}
	if r := imp(admin, def, map[string]any{"eventTypes": list}); len(r.Created) != 2 || r.DryRun {
		t.Fatalf("import: %+v", r)
	}
	if r := imp(admin, def, map[string]any{"eventTypes": list}); len(r.Created)+len(r.Updated)+len(r.Archived) != 0 || r.Unchanged != 2 {
		t.Fatalf("the same import again: %+v, want nothing changed", r)
	}
	_, token := s.NewApp("app")
	app := s.As(t, token)
	publish(t, app, "invoice.paid", map[string]any{})

	// The list is the truth for the types it names; the others stay
	// unless archiveMissing.
	list[0]["description"] = "Paid in full."
	if r := imp(admin, def, map[string]any{"eventTypes": list[:1]}); !slices.Equal(r.Updated, []string{"invoice.paid"}) || len(r.Archived) != 0 {
		t.Fatalf("updating import: %+v", r)
	}
	if r := imp(admin, def, map[string]any{"eventTypes": list[:1], "archiveMissing": true}); !slices.Equal(r.Archived, []string{"invoice.sent"}) {
		t.Fatalf("archiveMissing: %+v", r)
	}
	app.Do(`mutation { publishEvent(input: {eventType: "invoice.sent", payload: {}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.eventType")
	if r := imp(admin, def, map[string]any{"eventTypes": list}); !slices.Equal(r.Unarchived, []string{"invoice.sent"}) {
		t.Fatalf("unarchiving import: %+v", r)
	}

	// Every invalid type is reported at once, and nothing is imported.
	bad := append(slices.Clone(list), map[string]any{"name": "Bad"}, map[string]any{"name": "invoice.voided", "jsonSchema": map[string]any{"type": 5}},
		map[string]any{"name": "webhook.failed"}, map[string]any{"name": "invoice.paid"})
	r := admin.Do(importOp, map[string]any{"c": def, "in": map[string]any{"eventTypes": bad}})
	var fields []string
	for _, e := range r.Errors {
		f, _ := e.Extensions["field"].(string)
		fields = append(fields, f)
	}
	want := []string{"input.eventTypes[2].name", "input.eventTypes[3].jsonSchema", "input.eventTypes[4].name", "input.eventTypes[5].name"}
	if !slices.Equal(fields, want) || r.Code() != "BAD_USER_INPUT" {
		t.Errorf("invalid import: errors on %v, want %v: %s", fields, want, r.Body)
	}

	// App keys import their own types, within EVENT_TYPES, and not into
	// the shared catalog.
	app.Do(importOp, map[string]any{"c": def, "in": map[string]any{"eventTypes": list}}).WantError(t, "FORBIDDEN")
	app.Do(importOp, map[string]any{"in": map[string]any{"eventTypes": list}}).WantFault(t, "CONFLICT", "input.eventTypes[0].name")
	admin.Must(nil, `mutation($id: ID!) { updateApp(id: $id, input: {limits: [{name: EVENT_TYPES, limit: 2}]}) { id } }`, map[string]any{"id": appID(t, app)})
	three := []map[string]any{{"name": "app.one"}, {"name": "app.two"}, {"name": "app.three"}}
	if r := app.Do(importOp, map[string]any{"in": map[string]any{"eventTypes": three}}); r.Reason() != "QUOTA" {
		t.Errorf("importing 3 own types over a limit of 2: %s", r.Body)
	}
	if r := imp(app, nil, map[string]any{"eventTypes": three[:2]}); len(r.Created) != 2 {
		t.Errorf("own import: %+v", r)
	}
	if et := listEventTypes(t, app)["app.one"]; et.Shared {
		t.Errorf("an own import made a shared type")
	}
}

func appID(t testing.TB, c *heraldtest.Client) string {
	t.Helper()
	var out struct {
		Viewer struct{ App struct{ ID string } }
	}
	c.Must(&out, `{ viewer { app { id } } }`, nil)
	return out.Viewer.App.ID
}

// A customer's portal session reads its app's view of the catalog (the
// shared types and the app's own, each marked) but can change none of it:
// neither the shared catalog, nor the app's own types, nor the catalogs.
func TestSharedCatalog_PortalSessionReadsButNeverChanges(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.Catalog = nil })
	admin := s.As(t, s.Token)
	def := appCatalog(t, admin)
	alphaID, tokenA := s.NewApp("alpha")
	s.NewApp("beta-secret-name")
	a := s.As(t, tokenA)
	admin.Must(nil, createSharedTypeOp, map[string]any{"c": def, "in": map[string]any{"name": "invoice.paid", "description": "everyone's"}})
	a.Must(nil, createSharedTypeOp, map[string]any{"in": map[string]any{"name": "alpha.thing"}})
	sharedID, ownID := eventTypeID(t, admin, "invoice.paid"), eventTypeID(t, a, "alpha.thing")

	for _, readOnly := range []bool{false, true} {
		session := s.As(t, portalSession(t, s, map[string]any{"appId": alphaID, "readOnly": readOnly}))
		got := listEventTypes(t, session)
		if et, ok := got["invoice.paid"]; !ok || !et.Shared {
			t.Errorf("readOnly=%v: the portal sees invoice.paid as %+v (present %v), want the shared type", readOnly, et, ok)
		}
		if et, ok := got["alpha.thing"]; !ok || et.Shared {
			t.Errorf("readOnly=%v: the portal sees alpha.thing as %+v (present %v), want the app's own type", readOnly, et, ok)
		}
		if len(got) != len(systemTypes)+2 {
			t.Errorf("readOnly=%v: the portal sees %v, want the system types, invoice.paid and alpha.thing", readOnly, keys(got))
		}
		if id := appCatalog(t, session); id != def {
			t.Errorf("readOnly=%v: the portal's app is in catalog %q, want %q", readOnly, id, def)
		}
		r := session.Do(`{ catalogs { edges { node { name apps { edges { node { name } } } } } } }`, nil)
		if strings.Contains(string(r.Body), "beta-secret-name") {
			t.Errorf("readOnly=%v: the portal reads another app of the catalog: %s", readOnly, r.Body)
		}

		for name, op := range map[string]struct {
			query string
			vars  map[string]any
		}{
			"add to the shared catalog":  {createSharedTypeOp, map[string]any{"c": def, "in": map[string]any{"name": "portal.shared"}}},
			"add an own type":            {createSharedTypeOp, map[string]any{"in": map[string]any{"name": "portal.own"}}},
			"change a shared type":       {`mutation($id: ID!) { updateEventType(id: $id, input: {description: "mine"}) { id } }`, map[string]any{"id": sharedID}},
			"archive a shared type":      {`mutation($id: ID!) { archiveEventType(id: $id) { id } }`, map[string]any{"id": sharedID}},
			"change an own type":         {`mutation($id: ID!) { updateEventType(id: $id, input: {description: "mine"}) { id } }`, map[string]any{"id": ownID}},
			"import into the shared one": {importOp, map[string]any{"c": def, "in": map[string]any{"eventTypes": []map[string]any{{"name": "portal.shared"}}}}},
			"import own types":           {importOp, map[string]any{"in": map[string]any{"eventTypes": []map[string]any{{"name": "portal.own"}}}}},
			"create a catalog":           {`mutation { createCatalog(input: {name: "portal"}) { id } }`, nil},
			"rename the catalog":         {`mutation($id: ID!) { updateCatalog(id: $id, input: {name: "portal"}) { id } }`, map[string]any{"id": def}},
			"delete the catalog":         {`mutation($id: ID!) { deleteCatalog(id: $id) { deletedId } }`, map[string]any{"id": def}},
		} {
			if r := session.Do(op.query, op.vars); r.Code() != "FORBIDDEN" {
				t.Errorf("readOnly=%v: a portal session may %s: %s", readOnly, name, r.Body)
			}
		}
	}

	// Nothing changed: everyone still sees the catalog as the admin made it.
	if et := listEventTypes(t, admin)["invoice.paid"]; et.Description != "everyone's" || et.ArchivedAt != nil {
		t.Errorf("invoice.paid after the portal's attempts: %+v", et)
	}
	var cats struct{ Catalogs struct{ TotalCount int } }
	admin.Must(&cats, `{ catalogs { totalCount } }`, nil)
	if cats.Catalogs.TotalCount != 1 {
		t.Errorf("catalogs after the portal's attempts: %d, want 1", cats.Catalogs.TotalCount)
	}
	for _, n := range []string{"portal.shared", "portal.own"} {
		if _, ok := listEventTypes(t, a)[n]; ok {
			t.Errorf("the portal created %s", n)
		}
	}

	// App keys (without admin) change their own types but not the shared ones.
	a.Do(`mutation($id: ID!) { updateEventType(id: $id, input: {description: "mine"}) { id } }`, map[string]any{"id": sharedID}).WantError(t, "FORBIDDEN")
	a.Do(`mutation($id: ID!) { archiveEventType(id: $id) { id } }`, map[string]any{"id": sharedID}).WantError(t, "FORBIDDEN")
	a.Must(nil, `mutation($id: ID!) { updateEventType(id: $id, input: {description: "mine"}) { id } }`, map[string]any{"id": ownID})
}
