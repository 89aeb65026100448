package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// emptyCatalog starts a server whose catalogs hold only the system types.
func emptyCatalog(t *testing.T) *heraldtest.Server {
	return heraldtest.Start(t, func(c *server.Config) { c.Catalog = nil })
}

func TestCLI_CatalogImportAndExportRoundTrip(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := newCLI(t, emptyCatalog(t))
	if out := a.ok("catalog", "export"); out != "{\n  \"eventTypes\": []\n}\n" {
		t.Errorf("export of a catalog with only the system types:\n%s", out)
	}

	// The example catalog imports, once: the second import changes
	// nothing, and the export is the file itself.
	exampleFile := filepath.Join("..", "..", "examples", "catalog.json")
	contains(t, a.ok("catalog", "import", exampleFile), `Imported into catalog "default": 26 created, 0 updated`)
	contains(t, a.ok("catalog", "import", exampleFile), "0 created, 0 updated, 0 archived, 0 unarchived, 26 unchanged")
	if out := a.ok("catalog", "export"); out != string(example) {
		t.Errorf("the export of the imported example differs from examples/catalog.json:\n%s", out)
	}

	// Changed in one installation (a type archived, one with a schema),
	// the export carries the changes into another: the second exports
	// the same file.
	a.s.As(t, a.s.Token).Must(nil, `mutation($c: ID) { createEventType(catalogId: $c, input: {name: "invoice.paid", description: "Paid & done.",
		example: {invoiceId: "inv_1", amount: 150}, jsonSchema: {type: "object", required: ["invoiceId"]}}) { id } }`,
		map[string]any{"c": catalogID(t, a.s)})
	var et struct {
		EventTypes struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	a.s.As(t, a.s.Token).Must(&et, `{ eventTypes(where: {name: "order.paid"}) { edges { node { id } } } }`, nil)
	a.s.As(t, a.s.Token).Must(nil, `mutation($id: ID!) { archiveEventType(id: $id) { id } }`, map[string]any{"id": et.EventTypes.Edges[0].Node.ID})
	exported := a.ok("catalog", "export")
	contains(t, exported, `"archived": true`, `"name": "invoice.paid"`, `"description": "Paid & done."`, `"amount": 150`)

	b := newCLI(t, emptyCatalog(t))
	contains(t, b.runIn(exported, "catalog", "import", "--dry-run", "-").stdout, "Dry run (nothing changed)", "27 created")
	if out := b.ok("catalog", "export"); out != "{\n  \"eventTypes\": []\n}\n" {
		t.Fatalf("the dry run imported:\n%s", out)
	}
	if r := b.runIn(exported, "catalog", "import", "-"); r.code != 0 || !strings.Contains(r.stdout, "27 created") {
		t.Fatalf("import from standard input: %+v", r)
	}
	path := filepath.Join(t.TempDir(), "catalog.json")
	b.ok("catalog", "export", path)
	if got, err := os.ReadFile(path); err != nil || string(got) != exported {
		t.Errorf("the second installation exports (%v):\n%s\nwant the first's:\n%s", err, got, exported)
	}

	// Types a file leaves out stay, unless --archive-missing.
	one := `{"eventTypes": [{"name": "order.created", "description": "An order was placed.", "example": {"currency": "EUR", "customerId": "cus_77", "items": [{"price": 2495, "quantity": 2, "sku": "TSHIRT-M"}], "orderId": "ord_1042", "total": 4990}}]}`
	contains(t, b.runIn(one, "catalog", "import", "-").stdout, "0 created, 0 updated, 0 archived, 0 unarchived, 1 unchanged")
	contains(t, b.runIn(one, "catalog", "import", "--archive-missing", "-").stdout, "25 archived", "archived:  contact.created, contact.deleted")

	// An app's own types go with --own.
	_, token := a.s.NewApp("shop")
	shop := newCLI(t, a.s)
	shop.vars["HERALD_API_KEY"] = token
	own := `{"eventTypes": [{"name": "shop.opened", "description": "Only this app."}]}`
	contains(t, shop.runIn(own, "catalog", "import", "--own", "-").stdout, `the app's own types: 1 created`)
	if out := shop.ok("catalog", "export", "--own"); !strings.Contains(out, `"name": "shop.opened"`) || strings.Contains(out, "order.created") {
		t.Errorf("export --own:\n%s", out)
	}
	if out := shop.ok("catalog", "export"); strings.Contains(out, "shop.opened") {
		t.Errorf("the shared catalog's export holds an app's own type:\n%s", out)
	}
	shop.fails(exitAuth, "only admin keys import into a shared catalog", "catalog", "import", exampleFile)
}

func TestCLI_CatalogImportSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	s := emptyCatalog(t)
	e := newCLI(t, s)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{\n  \"eventTypes\": [\n    {\"name\": \"a.b\",}\n  ]\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.fails(exitUsage, "line 3", "catalog", "import", bad)
	e.fails(exitUsage, `unknown field "jsonschema"`, "catalog", "import", writeTemp(t, `{"eventTypes": [{"name": "a.b", "jsonschema": {}}]}`))
	e.fails(exitUsage, `no "eventTypes" list`, "catalog", "import", writeTemp(t, `{}`))
	r := e.fails(exitUsage, "input.eventTypes[0].name", "catalog", "import", writeTemp(t, `{"eventTypes": [{"name": "Bad"}, {"name": "webhook.failed"}]}`))
	contains(t, r.stderr, "input.eventTypes[1].name")
	e.fails(exitNotFound, `catalog "staging" not found`, "catalog", "export", "--catalog", "staging")
	e.fails(exitUsage, "exclude each other", "catalog", "export", "--catalog", "staging", "--own")

	// A catalog by name.
	s.As(t, s.Token).Must(nil, `mutation { createCatalog(input: {name: "staging"}) { id } }`, nil)
	contains(t, e.runIn(`{"eventTypes": [{"name": "staging.only"}]}`, "catalog", "import", "--catalog", "staging", "-").stdout, `catalog "staging": 1 created`)
	contains(t, e.ok("catalog", "export", "--catalog", "staging"), "staging.only")
	if out := e.ok("catalog", "export"); strings.Contains(out, "staging.only") {
		t.Errorf("the default catalog holds staging's type:\n%s", out)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func catalogID(t *testing.T, s *heraldtest.Server) string {
	t.Helper()
	var out struct {
		Viewer struct {
			App struct{ Catalog struct{ ID string } }
		}
	}
	s.As(t, s.Token).Must(&out, `{ viewer { app { catalog { id } } } }`, nil)
	return out.Viewer.App.Catalog.ID
}
