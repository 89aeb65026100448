package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// An operator manages an app's catalog from the console: with an admin key,
// adds a type to the app's shared catalog and one of the app's own, sees
// every mistake of a form at its field (the server's, and invalid JSON
// caught in the browser), edits a type, archives and unarchives one; the
// API then publishes what the console made and refuses what it archived.
// An app key manages only the app's own types, and a key that may only read
// the catalog sees no control that changes it.
func TestConsole_OperatorManagesTheCatalog(t *testing.T) {
	s := heraldtest.Start(t)
	admin := s.As(t, s.Token)
	var created struct{ CreateCatalog struct{ ID string } }
	admin.Must(&created, `mutation { createCatalog(input: {name: "retail"}) { id } }`, nil)
	catalogID := created.CreateCatalog.ID
	admin.Must(nil, `mutation($c: ID) { importEventTypes(catalogId: $c, input: {eventTypes: [
		{name: "invoice.sent", description: "An invoice was sent."}]}) { created } }`, map[string]any{"c": catalogID})
	newApp := func(name string) string {
		var app struct{ CreateApp struct{ ID string } }
		admin.Must(&app, `mutation($n: String!, $c: ID) { createApp(input: {name: $n, catalogId: $c}) { id } }`, map[string]any{"n": name, "c": catalogID})
		return app.CreateApp.ID
	}
	shopID, outletID := newApp("Shop"), newApp("Outlet")
	shop, outlet := admin.WithHeader("X-Herald-App", shopID), admin.WithHeader("X-Herald-App", outletID)

	p := openBrowser(t)
	p.axe = axeSource(t)
	p.signIn(s.URL, s.Token)
	p.do("open Shop's catalog", chromedp.Navigate(s.URL+"/console#/apps/"+shopID+"/catalog"))
	p.waitFor("the catalog", `document.querySelector("[data-testid=event-type][data-name='invoice.sent']") && (document.querySelector("[data-testid=catalog-name]") || {}).textContent === "retail"`)
	// Herald's own types have no controls; the shared ones do for an admin key.
	if n := p.count(`[data-testid=event-type][data-name='test.ping'] button`); n != 0 {
		t.Errorf("a system type shows %d controls", n)
	}
	if n := p.count(`[data-testid=event-type][data-name='invoice.sent'] [data-testid=edit-event-type]`); n != 1 {
		var cards []string
		p.eval(`[...document.querySelectorAll("[data-testid=event-type]")].map(e => e.dataset.name + " " + e.querySelectorAll("button").length)`, &cards)
		t.Errorf("a shared type shows %d Edit buttons to an admin key, want 1: %q", n, cards)
	}

	// One submit shows every mistake the server finds, at its field, in
	// words, and the focus goes to the first.
	p.click("Add event type", `[data-testid=add-event-type]`)
	p.waitFor("the form", `document.querySelector("dialog[open] [data-testid=event-type-where]")`)
	p.click("the shared catalog", `[data-testid=where-shared]`)
	p.typeInto(`[data-testid=event-type-name]`, "Invoice Voided")
	p.typeInto(`[data-testid=event-type-schema]`, `{"type": "object", "required": ["invoiceId"], "properties": {"invoiceId": {"type": "string"}}}`)
	p.typeInto(`[data-testid=event-type-example]`, `{"amount": 5}`)
	p.click("add", `[data-testid=save-event-type]`)
	invalid := func(testid string) string {
		return `document.querySelector("[data-testid=` + testid + `]").getAttribute("aria-invalid") === "true"`
	}
	focused := func(testid string) string {
		return `document.activeElement === document.querySelector("[data-testid=` + testid + `]")`
	}
	p.waitFor("the name's and the example's errors, the focus on the name",
		invalid("event-type-name")+` && `+invalid("event-type-example")+` && `+focused("event-type-name"))
	var errs []string
	p.eval(`[...document.querySelectorAll("dialog[open] [data-testid=field-error]")].map(e => e.textContent)`, &errs)
	if len(errs) != 2 || !strings.Contains(errs[0], "not a valid event type name") || !strings.Contains(errs[1], "Does not match the JSON Schema") {
		t.Errorf("field errors %q, want the name's and the example's (in words)", errs)
	}
	var formError string
	p.eval(`document.querySelector("[data-testid=event-type-form-error]").textContent`, &formError)
	if formError != "2 fields need your attention." {
		t.Errorf("form error %q", formError)
	}
	p.checkScreen("console-event-type-errors", true)

	// Invalid JSON is caught in the browser, at its field.
	p.typeInto(`[data-testid=event-type-name]`, "invoice.voided")
	p.typeInto(`[data-testid=event-type-example]`, `{"invoiceId": "inv_1"`)
	p.click("add", `[data-testid=save-event-type]`)
	p.waitFor("the example's JSON error, the focus on it",
		invalid("event-type-example")+` && !document.querySelector("[data-testid=event-type-name]").hasAttribute("aria-invalid") && `+focused("event-type-example")+
			` && (document.querySelector("dialog[open] [data-testid=field-error]") || {textContent: ""}).textContent.startsWith("This is not valid JSON")`)

	p.typeInto(`[data-testid=event-type-example]`, `{"invoiceId": "inv_1"}`)
	p.typeInto(`[data-testid=event-type-description]`, "An invoice was voided.")
	p.click("add", `[data-testid=save-event-type]`)
	p.waitFor("the shared type", `!document.querySelector("dialog[open]") && document.querySelector("[data-testid=event-type][data-name='invoice.voided'][data-shared=true]")`)

	// One of the app's own: its name cannot be one the shared catalog has.
	p.click("Add event type", `[data-testid=add-event-type]`)
	p.waitFor("the form", `(document.querySelector("dialog[open] [data-testid=where-own]") || {}).checked`)
	p.typeInto(`[data-testid=event-type-name]`, "invoice.voided")
	p.click("add", `[data-testid=save-event-type]`)
	p.waitFor("the name taken", invalid("event-type-name")+` && `+focused("event-type-name")+
		` && (document.querySelector("dialog[open] [data-testid=field-error]") || {textContent: ""}).textContent.includes("already a type of the shared catalog")`)
	p.typeInto(`[data-testid=event-type-name]`, "shop.reopened")
	p.typeInto(`[data-testid=event-type-description]`, "The shop opened.")
	p.click("add", `[data-testid=save-event-type]`)
	p.waitFor("the app's own type", `!document.querySelector("dialog[open]") && document.querySelector("[data-testid=event-type][data-name='shop.reopened'][data-shared=false]")`)

	// Edit the shared type's description and example.
	p.click("Edit invoice.voided", `[data-testid=event-type][data-name='invoice.voided'] [data-testid=edit-event-type]`)
	p.waitFor("the edit form", `(document.querySelector("dialog[open] [data-testid=event-type-example]") || {value: ""}).value.includes("inv_1")`)
	if n := p.count(`dialog[open] [data-testid=event-type-name], dialog[open] [data-testid=event-type-where]`); n != 0 {
		t.Errorf("the edit form offers to change the name or the catalog (%d controls)", n)
	}
	p.typeInto(`[data-testid=event-type-description]`, "An invoice was voided before it was paid.")
	p.typeInto(`[data-testid=event-type-example]`, `{"invoiceId": "inv_2001"}`)
	p.click("save", `[data-testid=save-event-type]`)
	p.waitFor("the new description", `!document.querySelector("dialog[open]") && document.querySelector("[data-testid=event-type][data-name='invoice.voided'] [data-testid=type-description]").textContent === "An invoice was voided before it was paid."`)

	// Archive the app's own type: it moves to Archived; publishing it is refused.
	p.click("Archive shop.reopened", `[data-testid=event-type][data-name='shop.reopened'] [data-testid=archive-event-type]`)
	p.click("confirm", `[data-testid=confirm-archive] [data-testid=confirm]`)
	p.waitFor("the type archived", `document.querySelector("[data-testid=archived] [data-testid=archived-type][data-name='shop.reopened']") && !document.querySelector("[data-testid=event-type][data-name='shop.reopened']")`)
	p.checkScreen("console-catalog-manage", true)
	publish := func(c *heraldtest.Client, eventType string) *heraldtest.Response {
		return c.Do(`mutation($t: String!, $p: JSON!) { publishEvent(input: {eventType: $t, payload: $p}) { id } }`,
			map[string]any{"t": eventType, "p": map[string]any{"invoiceId": "inv_7"}})
	}
	if r := publish(shop, "shop.reopened"); r.Code() != "BAD_USER_INPUT" || !strings.Contains(string(r.Body), "archived") {
		t.Errorf("publishing the archived type: %s", r.Body)
	}
	p.click("Unarchive shop.reopened", `[data-testid=archived-type][data-name='shop.reopened'] [data-testid=unarchive-event-type]`)
	p.waitFor("the type back", `document.querySelector("[data-testid=event-type][data-name='shop.reopened']") && !document.querySelector("[data-testid=archived]")`)

	// The API has what the console made: the shared type for every app of
	// the catalog (its schema enforced), the own type for Shop only.
	for _, c := range []struct {
		client    *heraldtest.Client
		eventType string
		want      string
	}{
		{shop, "shop.reopened", ""},
		{shop, "invoice.voided", ""},
		{outlet, "invoice.voided", ""},
		{outlet, "shop.reopened", "BAD_USER_INPUT"},
	} {
		if r := publish(c.client, c.eventType); r.Code() != c.want {
			t.Errorf("publish %s: %s, want %q", c.eventType, r.Body, c.want)
		}
	}
	if r := shop.Do(`mutation { publishEvent(input: {eventType: "invoice.voided", payload: {amount: 5}}) { id } }`, nil); r.Code() != "BAD_USER_INPUT" {
		t.Errorf("a payload against the schema set in the console: %s", r.Body)
	}
	var types struct {
		EventTypes struct {
			Edges []struct {
				Node struct {
					Name, Description string
					Shared            bool
					Example           json.RawMessage
				}
			}
		}
	}
	shop.Must(&types, `{ eventTypes(first: 5, where: {nameIn: ["invoice.voided", "shop.reopened"]}, orderBy: {field: NAME}) { edges { node { name description shared example } } } }`, nil)
	got := map[string]string{}
	for _, e := range types.EventTypes.Edges {
		got[e.Node.Name] = e.Node.Description + " " + strings.ReplaceAll(string(e.Node.Example), " ", "") + " " + map[bool]string{true: "shared", false: "own"}[e.Node.Shared]
	}
	want := map[string]string{
		"invoice.voided": `An invoice was voided before it was paid. {"invoiceId":"inv_2001"} shared`,
		"shop.reopened":  "The shop opened. null own",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s in the API: %q, want %q", name, got[name], w)
		}
	}
	p.checkConsole()

	// Shop's own key (full access to the app, not an admin key) manages
	// the app's own types only, and is not offered the shared catalog.
	newKey := func(scopes any) string {
		var key struct{ CreateAPIKey struct{ Token string } }
		admin.Must(&key, `mutation($a: ID!, $s: [APIKeyScope!]) { createAPIKey(input: {appId: $a, name: "Shop backend", scopes: $s}) { token } }`,
			map[string]any{"a": shopID, "s": scopes})
		return key.CreateAPIKey.Token
	}
	admin.Must(nil, `mutation($c: ID) { importEventTypes(catalogId: $c, input: {eventTypes: [
		{name: "invoice.sent", description: "An invoice was sent.", archived: true}]}) { archived } }`, map[string]any{"c": catalogID})
	app := openBrowser(t)
	app.axe = p.axe
	app.signIn(s.URL, newKey(nil))
	app.do("open the catalog", chromedp.Navigate(s.URL+"/console#/apps/"+shopID+"/catalog"))
	app.waitFor("the catalog", `document.querySelector("[data-testid=event-type][data-name='shop.reopened'] [data-testid=edit-event-type]") && document.querySelector("[data-testid=archived-type][data-name='invoice.sent']")`)
	for sel, want := range map[string]int{
		`[data-testid=event-type][data-name='invoice.voided'] button`:                          0,
		`[data-testid=archived-type][data-name='invoice.sent'] button`:                         0,
		`[data-testid=event-type][data-name='shop.reopened'] [data-testid=archive-event-type]`: 1,
	} {
		if n := app.count(sel); n != want {
			t.Errorf("an app key: %d of %s, want %d", n, sel, want)
		}
	}
	app.click("Add event type", `[data-testid=add-event-type]`)
	app.waitFor("the form", `document.querySelector("dialog[open] [data-testid=event-type-name]")`)
	if n := app.count(`[data-testid=event-type-where]`); n != 0 {
		t.Error("an app key is offered the shared catalog")
	}
	app.closeDialog("the form")
	app.checkConsole()

	// A key that may only read the catalog sees it, archived types
	// included, with no control that changes it.
	ro := openBrowser(t)
	ro.axe = p.axe
	ro.signIn(s.URL, newKey([]string{"CATALOG_READ", "ENDPOINTS_READ"}))
	ro.do("open the catalog", chromedp.Navigate(s.URL+"/console#/apps/"+shopID+"/catalog"))
	ro.waitFor("the catalog", `document.querySelector("[data-testid=event-type][data-name='shop.reopened']") && document.querySelector("[data-testid=archived-type][data-name='invoice.sent']")`)
	if n := ro.count(`[data-testid=add-event-type], [data-testid=edit-event-type], [data-testid=archive-event-type], [data-testid=unarchive-event-type]`); n != 0 {
		t.Errorf("a key without the right to manage the catalog sees %d controls that change it", n)
	}
	ro.checkScreen("console-catalog-read-only", true)
	ro.checkConsole()
}
