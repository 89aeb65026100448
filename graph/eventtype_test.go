package graph_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/examples"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// eventType is an EventType as the tests read it.
type eventType struct {
	ID          string
	Name        string
	Description string
	Example     json.RawMessage
	JSONSchema  json.RawMessage
	BuiltIn     bool
	Shared      bool
	ArchivedAt  *string
}

func listEventTypes(t testing.TB, c *heraldtest.Client) map[string]eventType {
	t.Helper()
	var out struct {
		EventTypes struct {
			TotalCount int
			Edges      []struct{ Node eventType }
		}
	}
	c.Must(&out, `{ eventTypes(first: 100) { totalCount edges { node { `+eventTypeFields+` } } } }`, nil)
	m := make(map[string]eventType, len(out.EventTypes.Edges))
	for _, e := range out.EventTypes.Edges {
		m[e.Node.Name] = e.Node
	}
	if len(m) != out.EventTypes.TotalCount {
		t.Fatalf("eventTypes: %d listed, totalCount %d", len(m), out.EventTypes.TotalCount)
	}
	return m
}

func getEventType(t testing.TB, c *heraldtest.Client, id string) eventType {
	t.Helper()
	var out struct{ Node *eventType }
	c.Must(&out, `query($id: ID!) { node(id: $id) { ... on EventType { `+eventTypeFields+` } } }`, map[string]any{"id": id})
	if out.Node == nil {
		t.Fatalf("event type %s: node is null", id)
	}
	return *out.Node
}

// exampleTypes returns the names of the example catalog's types, which
// heraldtest's servers import into their default catalog.
func exampleTypes(t testing.TB) []string {
	t.Helper()
	f, err := catalog.ParseFile(examples.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range f.EventTypes {
		names = append(names, d.Name)
	}
	return names
}

// systemTypes are Herald's own types, which every catalog has.
var systemTypes = []string{"test.ping", "webhook.failed", "webhook.disabled", "webhook.certificate_expiring"}

func TestEventTypes_OnlySystemTypesUntilSomeoneAddsThem(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.Catalog = nil })
	_, appToken := s.NewApp("second")
	for name, token := range map[string]string{"default app": s.Token, "new app": appToken} {
		c := s.As(t, token)
		got := listEventTypes(t, c)
		if len(got) != len(systemTypes) {
			t.Errorf("%s: event types %v, want only the system types %v", name, keys(got), systemTypes)
		}
		for _, n := range systemTypes {
			if et, ok := got[n]; !ok || !et.BuiltIn || !et.Shared || et.Description == "" || len(et.Example) == 0 {
				t.Errorf("%s: system type %s = %+v (listed %v), want built in, shared, documented", name, n, et, ok)
			}
		}
		c.Do(`mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { id } }`, nil).WantFault(t, "BAD_USER_INPUT", "input.eventType")
	}
}

func TestEventTypes_TheExampleCatalogIsEveryAppsShared(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	_, appToken := s.NewApp("second")
	want := append(exampleTypes(t), systemTypes...)
	for name, token := range map[string]string{"default app": s.Token, "new app": appToken} {
		got := listEventTypes(t, s.As(t, token))
		if len(got) != len(want) {
			t.Errorf("%s: %d event types, want %d", name, len(got), len(want))
		}
		for _, n := range want {
			et, ok := got[n]
			switch {
			case !ok:
				t.Errorf("%s: %s missing", name, n)
			case !et.Shared || et.ArchivedAt != nil || et.Description == "" || len(et.Example) == 0:
				t.Errorf("%s: %s = %+v, want shared, active, with description and example", name, n, et)
			case et.BuiltIn != catalog.IsSystem(n):
				t.Errorf("%s: %s builtIn = %v, want it only for system types", name, n, et.BuiltIn)
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestCreateEventType_StoresDocumentation(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	id := createEventType(t, c, map[string]any{
		"name": "invoice.paid", "description": "An invoice was paid.",
		"example":    map[string]any{"invoiceId": "inv_1", "amount": 100},
		"jsonSchema": map[string]any{"type": "object", "required": []string{"invoiceId"}},
	})
	et := getEventType(t, c, id)
	if et.Name != "invoice.paid" || et.Description != "An invoice was paid." || et.BuiltIn || et.ArchivedAt != nil {
		t.Errorf("created event type = %+v", et)
	}
	if string(et.Example) != `{"amount":100,"invoiceId":"inv_1"}` || string(et.JSONSchema) != `{"required":["invoiceId"],"type":"object"}` {
		t.Errorf("example %s, jsonSchema %s", et.Example, et.JSONSchema)
	}
	// It can be subscribed to and published.
	createEndpoint(t, c, map[string]any{"url": "https://example.com/h", "eventTypes": []string{"invoice.paid"}, "isActive": false})
	publish(t, c, "invoice.paid", map[string]any{"invoiceId": "inv_2"})

	// Without a schema any object goes; schemas of older drafts work.
	createEventType(t, c, map[string]any{"name": "invoice.sent"})
	publish(t, c, "invoice.sent", map[string]any{"anything": []int{1}})
	for i, draft := range []string{
		"http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-07/schema#",
		"https://json-schema.org/draft/2019-09/schema", "https://json-schema.org/draft/2020-12/schema",
	} {
		name := fmt.Sprintf("invoice.draft%d", i)
		createEventType(t, c, map[string]any{"name": name, "jsonSchema": map[string]any{"$schema": draft, "type": "object", "required": []string{"id"}}})
		publish(t, c, name, map[string]any{"id": 1})
		c.Do(`mutation($t: String!) { publishEvent(input: {eventType: $t, payload: {}}) { id } }`, map[string]any{"t": name}).WantFault(t, "BAD_USER_INPUT", "input.payload")
	}
}

func TestCreateEventType_RejectsInvalidInput(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)

	tests := []struct {
		name  string
		input map[string]any
		field string
	}{
		{"upper case", map[string]any{"name": "Invoice.Paid"}, "input.name"},
		{"one segment", map[string]any{"name": "invoice"}, "input.name"},
		{"empty segment", map[string]any{"name": "invoice..paid"}, "input.name"},
		{"wildcard", map[string]any{"name": "invoice.*"}, "input.name"},
		{"space", map[string]any{"name": "invoice paid"}, "input.name"},
		{"too long", map[string]any{"name": "a." + strings.Repeat("b", 127)}, "input.name"},
		{"reserved prefix", map[string]any{"name": "webhook.custom"}, "input.name"},
		{"system type name", map[string]any{"name": "webhook.failed"}, "input.name"},
		{"schema with a bad keyword value", map[string]any{"name": "a.b", "jsonSchema": map[string]any{"type": 5}}, "input.jsonSchema"},
		{"schema that is a string", map[string]any{"name": "a.b", "jsonSchema": "object"}, "input.jsonSchema"},
		{"schema with a bad pattern", map[string]any{"name": "a.b", "jsonSchema": map[string]any{"type": "string", "pattern": "("}}, "input.jsonSchema"},
		{"schema with an external ref", map[string]any{"name": "a.b", "jsonSchema": map[string]any{"$ref": "https://example.com/schema.json"}}, "input.jsonSchema"},
		{"schema with a file ref", map[string]any{"name": "a.b", "jsonSchema": map[string]any{"$ref": "file:///etc/passwd"}}, "input.jsonSchema"},
		{"example not matching schema", map[string]any{
			"name":       "a.b",
			"jsonSchema": map[string]any{"type": "object", "required": []string{"amount"}},
			"example":    map[string]any{"invoiceId": "inv_1"},
		}, "input.example"},
		{"description too long", map[string]any{"name": "a.b", "description": strings.Repeat("d", 4097)}, "input.description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := s.As(t, s.Token).Do(`mutation($in: CreateEventTypeInput!) { createEventType(input: $in) { id } }`, map[string]any{"in": tt.input})
			r.WantFault(t, "BAD_USER_INPUT", tt.field)
		})
	}
	t.Cleanup(func() {
		if n, want := len(listEventTypes(t, s.As(t, s.Token))), len(exampleTypes(t))+len(systemTypes); n != want {
			t.Errorf("%d event types after invalid creates, want only the %d there were", n, want)
		}
	})
}

func TestCreateEventType_ExternalRefIsNotFetched(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)

	r := s.As(t, s.Token).Do(`mutation($in: CreateEventTypeInput!) { createEventType(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"name": "a.b", "jsonSchema": map[string]any{"$ref": rc.Hook("/schema.json")}}})
	r.WantFault(t, "BAD_USER_INPUT", "input.jsonSchema")
	if n := len(rc.Requests()); n != 0 {
		t.Errorf("compiling the schema made %d requests to its $ref", n)
	}
}

func TestCreateEventType_DuplicateNameConflicts(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	createEventType(t, c, map[string]any{"name": "invoice.paid"})
	for _, name := range []string{"invoice.paid", "order.created"} {
		r := c.Do(`mutation($n: String!) { createEventType(input: {name: $n}) { id } }`, map[string]any{"n": name})
		r.WantError(t, "CONFLICT")
		if r.Reason() != "EVENT_TYPE_EXISTS" {
			t.Errorf("%s: reason = %q, want EVENT_TYPE_EXISTS", name, r.Reason())
		}
	}
	// Another app may use the same name.
	_, other := s.NewApp("other")
	createEventType(t, s.As(t, other), map[string]any{"name": "invoice.paid"})
}

// A form shows every mistake after one submit: createEventType reports each
// invalid field, and a name already taken at the name field.
func TestCreateEventType_ReportsEveryInvalidFieldAtOnce(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	const create = `mutation($c: ID, $in: CreateEventTypeInput!) { createEventType(catalogId: $c, input: $in) { id } }`

	r := c.Do(create, map[string]any{"in": map[string]any{
		"name":       "Invoice Voided",
		"jsonSchema": map[string]any{"type": "object", "required": []string{"amount"}},
		"example":    map[string]any{"invoiceId": "inv_1"},
	}})
	if got := fields(r); !slices.Equal(got, []string{"input.example", "input.name"}) {
		t.Errorf("error fields = %q, want the name's and the example's\n%s", got, r.Body)
	}
	for _, e := range r.Errors {
		if e.Extensions["code"] != "BAD_USER_INPUT" {
			t.Errorf("error %+v: want BAD_USER_INPUT", e)
		}
	}

	// A taken name: among the app's own types, and in the shared catalog.
	createEventType(t, c, map[string]any{"name": "invoice.voided"})
	r = c.Do(create, map[string]any{"in": map[string]any{"name": "invoice.voided"}})
	r.WantFault(t, "CONFLICT", "input.name")
	var v struct {
		Viewer struct {
			App struct{ Catalog struct{ ID string } }
		}
	}
	c.Must(&v, `{ viewer { app { catalog { id } } } }`, nil)
	r = c.Do(create, map[string]any{"c": v.Viewer.App.Catalog.ID, "in": map[string]any{"name": "order.created"}})
	r.WantFault(t, "CONFLICT", "input.name")
	if r.Reason() != "EVENT_TYPE_EXISTS" {
		t.Errorf("reason = %q, want EVENT_TYPE_EXISTS", r.Reason())
	}
}

func TestUpdateEventType_ChangesOnlyGivenFields(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	const update = `mutation($id: ID!, $in: UpdateEventTypeInput!) { updateEventType(id: $id, input: $in) { ` + eventTypeFields + ` } }`
	type updated struct{ UpdateEventType eventType }

	id := createEventType(t, c, map[string]any{
		"name": "invoice.paid", "description": "old",
		"example":    map[string]any{"amount": 1},
		"jsonSchema": map[string]any{"type": "object"},
	})

	var out updated
	c.Must(&out, update, map[string]any{"id": id, "in": map[string]any{"description": "new"}})
	if et := out.UpdateEventType; et.Description != "new" || string(et.Example) != `{"amount":1}` || string(et.JSONSchema) != `{"type":"object"}` {
		t.Errorf("after changing the description: %+v", et)
	}

	c.Must(&out, update, map[string]any{"id": id, "in": map[string]any{"example": nil}})
	if et := out.UpdateEventType; et.Example != nil && string(et.Example) != "null" || string(et.JSONSchema) != `{"type":"object"}` || et.Description != "new" {
		t.Errorf("after example: null: example %s, jsonSchema %s, description %q", et.Example, et.JSONSchema, et.Description)
	}

	c.Must(&out, update, map[string]any{"id": id, "in": map[string]any{"jsonSchema": nil, "example": map[string]any{"x": true}}})
	if et := out.UpdateEventType; et.JSONSchema != nil && string(et.JSONSchema) != "null" || string(et.Example) != `{"x":true}` {
		t.Errorf("after jsonSchema: null: example %s, jsonSchema %s", et.Example, et.JSONSchema)
	}
	if et := getEventType(t, c, id); et.JSONSchema != nil && string(et.JSONSchema) != "null" {
		t.Errorf("stored jsonSchema = %s, want null", et.JSONSchema)
	}

	// Built-in (non-system) types can be documented further.
	c.Must(&out, update, map[string]any{"id": eventTypeID(t, c, "order.created"), "in": map[string]any{"description": "Ours."}})
	if out.UpdateEventType.Description != "Ours." {
		t.Errorf("built-in description = %q", out.UpdateEventType.Description)
	}
}

func TestUpdateEventType_RejectsInconsistentDocumentation(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	const update = `mutation($id: ID!, $in: UpdateEventTypeInput!) { updateEventType(id: $id, input: $in) { id } }`

	id := createEventType(t, c, map[string]any{
		"name": "invoice.paid", "example": map[string]any{"amount": 1},
		"jsonSchema": map[string]any{"type": "object", "required": []string{"amount"}},
	})
	c.Do(update, map[string]any{"id": id, "in": map[string]any{"example": map[string]any{"total": 1}}}).WantFault(t, "BAD_USER_INPUT", "input.example")
	c.Do(update, map[string]any{"id": id, "in": map[string]any{"jsonSchema": map[string]any{"type": "object", "required": []string{"total"}}}}).WantFault(t, "BAD_USER_INPUT", "input.example")
	c.Do(update, map[string]any{"id": id, "in": map[string]any{"jsonSchema": map[string]any{"type": "nope"}}}).WantFault(t, "BAD_USER_INPUT", "input.jsonSchema")
	if et := getEventType(t, c, id); string(et.Example) != `{"amount":1}` || !strings.Contains(string(et.JSONSchema), `"amount"`) {
		t.Errorf("refused updates changed the type: %+v", et)
	}
}

func TestSystemEventTypes_CannotBeChangedOrArchived(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)

	ops := map[string]string{
		"update":    `mutation($id: ID!) { updateEventType(id: $id, input: {description: "mine"}) { id } }`,
		"archive":   `mutation($id: ID!) { archiveEventType(id: $id) { id } }`,
		"unarchive": `mutation($id: ID!) { unarchiveEventType(id: $id) { id } }`,
	}
	for _, name := range []string{"test.ping", "webhook.failed", "webhook.disabled"} {
		for op, q := range ops {
			t.Run(name+"/"+op, func(t *testing.T) {
				t.Parallel()
				c := s.As(t, s.Token)
				c.Do(q, map[string]any{"id": eventTypeID(t, c, name)}).WantError(t, "FORBIDDEN")
			})
		}
	}
	t.Cleanup(func() {
		got := listEventTypes(t, s.As(t, s.Token))
		for _, name := range []string{"test.ping", "webhook.failed", "webhook.disabled"} {
			if et := got[name]; et.ArchivedAt != nil || et.Description == "mine" {
				t.Errorf("system type %s changed: %+v", name, et)
			}
		}
	})
}

func TestArchiveEventType_BlocksPublishingUntilUnarchived(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	id := eventTypeID(t, c, "order.paid")
	var out struct{ ArchiveEventType eventType }
	c.Must(&out, `mutation($id: ID!) { archiveEventType(id: $id) { `+eventTypeFields+` } }`, map[string]any{"id": id})
	if out.ArchiveEventType.ArchivedAt == nil {
		t.Fatalf("archivedAt is null after archiving")
	}
	// Archiving twice is harmless.
	c.Must(nil, `mutation($id: ID!) { archiveEventType(id: $id) { id } }`, map[string]any{"id": id})

	const pub = `mutation { publishEvent(input: {eventType: "order.paid", payload: {orderId: "ord_1"}}) { id } }`
	r := c.Do(pub, nil)
	r.WantFault(t, "BAD_USER_INPUT", "input.eventType")
	if !strings.Contains(r.Errors[0].Message, "archived") {
		t.Errorf("message %q does not say the type is archived", r.Errors[0].Message)
	}
	c.Do(`mutation { publishEvents(input: [{eventType: "order.created", payload: {}}, {eventType: "order.paid", payload: {}}]) { id } }`, nil).
		WantFault(t, "BAD_USER_INPUT", "input[1].eventType")
	c.Do(createEndpointOp, map[string]any{"in": endpointInput(map[string]any{"url": "https://example.com/h", "eventTypes": []string{"order.paid"}})}).
		WantFault(t, "BAD_USER_INPUT", "input.eventTypes")

	var un struct{ UnarchiveEventType eventType }
	c.Must(&un, `mutation($id: ID!) { unarchiveEventType(id: $id) { `+eventTypeFields+` } }`, map[string]any{"id": id})
	if un.UnarchiveEventType.ArchivedAt != nil {
		t.Errorf("archivedAt = %v after unarchiving", *un.UnarchiveEventType.ArchivedAt)
	}
	c.Must(nil, pub, nil)
}

func TestPublishEvent_ValidatesPayloadAgainstJSONSchema(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	id := createEventType(t, c, map[string]any{
		"name": "invoice.paid",
		"jsonSchema": map[string]any{
			"type":     "object",
			"required": []string{"invoiceId", "amount"},
			"properties": map[string]any{
				"invoiceId": map[string]any{"type": "string", "pattern": "^inv_"},
				"amount":    map[string]any{"type": "integer", "minimum": 1},
			},
		},
	})
	publish(t, c, "invoice.paid", map[string]any{"invoiceId": "inv_1", "amount": 5})

	const pub = `mutation($p: JSON!) { publishEvent(input: {eventType: "invoice.paid", payload: $p}) { id } }`
	tests := []struct {
		name    string
		payload any
		mention string // the message must name the problem
	}{
		{"missing property", map[string]any{"invoiceId": "inv_1"}, "amount"},
		{"wrong type", map[string]any{"invoiceId": "inv_1", "amount": "five"}, "/amount"},
		{"below minimum", map[string]any{"invoiceId": "inv_1", "amount": 0}, "/amount"},
		{"pattern mismatch", map[string]any{"invoiceId": "INV-1", "amount": 5}, "/invoiceId"},
	}
	for _, tt := range tests {
		r := c.Do(pub, map[string]any{"p": tt.payload})
		r.WantFault(t, "BAD_USER_INPUT", "input.payload")
		if msg := r.Errors[0].Message; !strings.Contains(msg, tt.mention) || !strings.Contains(msg, "invoice.paid") {
			t.Errorf("%s: message %q should name %q and the event type", tt.name, msg, tt.mention)
		}
	}
	for _, p := range []any{[]int{1}, "text", 5} {
		c.Do(pub, map[string]any{"p": p}).WantFault(t, "BAD_USER_INPUT", "input.payload")
	}

	// Dropping the schema accepts what it refused.
	c.Must(nil, `mutation($id: ID!) { updateEventType(id: $id, input: {jsonSchema: null}) { id } }`, map[string]any{"id": id})
	c.Must(nil, pub, map[string]any{"p": map[string]any{"invoiceId": "inv_1"}})
	// Adding one takes effect at once.
	c.Must(nil, `mutation($id: ID!) { updateEventType(id: $id, input: {jsonSchema: {type: "object", required: ["total"]}}) { id } }`, map[string]any{"id": id})
	c.Do(pub, map[string]any{"p": map[string]any{"invoiceId": "inv_1"}}).WantFault(t, "BAD_USER_INPUT", "input.payload")
}

func TestPublishEvent_RejectsUnknownAndReservedTypes(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)

	const pub = `mutation($t: String!) { publishEvent(input: {eventType: $t, payload: {}}) { id } }`
	for _, typ := range []string{"invoice.voided", "webhook.failed", "webhook.anything", "test.pong", "Order.Created", "order"} {
		c.Do(pub, map[string]any{"t": typ}).WantFault(t, "BAD_USER_INPUT", "input.eventType")
	}
	var events struct{ Events struct{ TotalCount int } }
	c.Must(&events, `{ events { totalCount } }`, nil)
	if events.Events.TotalCount != 0 {
		t.Errorf("%d events stored by refused publishes", events.Events.TotalCount)
	}
}
