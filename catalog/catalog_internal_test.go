package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/webhook"
)

// schemaServer serves a valid schema and counts requests, to prove that
// compiling never fetches it.
func schemaServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/schema+json")
		_, _ = w.Write([]byte(`{"type":"string"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// schemaFile writes a valid schema to a file, to prove that compiling never
// reads it (it would compile if it did).
func schemaFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "string.json")
	if err := os.WriteFile(p, []byte(`{"type":"string"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompileSchema_RefusesExternalRefWithoutFetching(t *testing.T) {
	srv, hits := schemaServer(t)
	file := schemaFile(t)
	tests := []struct {
		name   string
		schema string
	}{
		{"http ref", `{"$ref":"` + srv.URL + `/string.json"}`},
		{"https ref", `{"$ref":"https://schemas.example.invalid/string.json"}`},
		{"file ref", `{"$ref":"file://` + file + `"}`},
		{"nested http ref", `{"type":"object","properties":{"a":{"$ref":"` + srv.URL + `/string.json"}}}`},
		{"ref under $defs", `{"$defs":{"x":{"$ref":"file://` + file + `"}},"$ref":"#/$defs/x"}`},
		{"relative ref against an http $id", `{"$id":"` + srv.URL + `/root.json","$ref":"string.json"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := compileSchema(json.RawMessage(tt.schema))
			if err == nil {
				t.Fatalf("compileSchema(%s) succeeded, want external $ref refused", tt.schema)
			}
			if s != nil {
				t.Errorf("compileSchema returned a schema with an error")
			}
			if !strings.Contains(err.Error(), "external $ref") {
				t.Errorf("error = %v, want it to say external $ref is not allowed", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("schema server was asked %d times, want 0", n)
	}
}

func TestCompileSchema_RefusesRelativeExternalRef(t *testing.T) {
	file := schemaFile(t)
	for _, schema := range []string{`{"$ref":"other.json"}`, `{"$ref":"` + file + `"}`} {
		if _, err := compileSchema(json.RawMessage(schema)); err == nil {
			t.Errorf("compileSchema(%s) succeeded, want the relative external $ref refused", schema)
		}
	}
}

func TestCompileSchema_AcceptsInternalRefs(t *testing.T) {
	tests := []struct {
		name    string
		schema  string
		valid   []string
		invalid []string
	}{
		{
			name:    "$defs ref",
			schema:  `{"type":"object","$defs":{"id":{"type":"string","pattern":"^ord_"}},"properties":{"orderId":{"$ref":"#/$defs/id"}},"required":["orderId"]}`,
			valid:   []string{`{"orderId":"ord_1"}`},
			invalid: []string{`{"orderId":1}`, `{"orderId":"cus_1"}`, `{}`},
		},
		{
			name:    "definitions ref",
			schema:  `{"definitions":{"n":{"type":"integer"}},"properties":{"total":{"$ref":"#/definitions/n"}}}`,
			valid:   []string{`{"total":3}`},
			invalid: []string{`{"total":"3"}`},
		},
		{
			name:    "recursive $defs ref",
			schema:  `{"$defs":{"node":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}`,
			valid:   []string{`{"children":[{"children":[]}]}`},
			invalid: []string{`{"children":[1]}`},
		},
		{
			name:    "draft 2020-12 $schema",
			schema:  `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}`,
			valid:   []string{`{}`},
			invalid: []string{`[]`},
		},
		{
			name:    "draft-07 $schema",
			schema:  `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`,
			valid:   []string{`{}`},
			invalid: []string{`[]`},
		},
		{"true schema", `true`, []string{`{}`, `1`}, nil},
		{"false schema", `false`, nil, []string{`{}`}},
		{"empty schema", `{}`, []string{`{}`, `[]`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := compileSchema(json.RawMessage(tt.schema))
			if err != nil {
				t.Fatalf("compileSchema: %v", err)
			}
			for _, doc := range tt.valid {
				if err := s.Validate(mustJSON(t, doc)); err != nil {
					t.Errorf("%s rejected: %v", doc, err)
				}
			}
			for _, doc := range tt.invalid {
				if err := s.Validate(mustJSON(t, doc)); err == nil {
					t.Errorf("%s accepted", doc)
				}
			}
		})
	}
}

func TestCompileSchema_RefusesNonSchemas(t *testing.T) {
	tests := []struct {
		name, schema, msg string
	}{
		{"array", `[]`, "must be a JSON object"},
		{"string", `"object"`, "must be a JSON object"},
		{"number", `1`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"invalid JSON", `{"type":`, "invalid JSON"},
		{"empty", ``, "invalid JSON"},
		{"bad keyword value", `{"type":5}`, "metaschema"},
		{"missing internal ref", `{"$ref":"#/$defs/missing"}`, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := compileSchema(json.RawMessage(tt.schema))
			if err == nil {
				t.Fatalf("compileSchema(%s) succeeded", tt.schema)
			}
			if s != nil {
				t.Errorf("compileSchema returned a schema with an error")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %v, want it to contain %q", err, tt.msg)
			}
		})
	}
}

var schemaPart = regexp.MustCompile(`^at /[^:]*: \S`)

func TestSchemaMessage(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		doc    string
		want   []string // exact parts, in order; nil to check the form only
		parts  int
	}{
		{
			name:   "root error",
			schema: `{"type":"object"}`, doc: `[]`,
			want: []string{"at /: got array, want object"},
		},
		{
			name:   "nested path",
			schema: `{"properties":{"items":{"type":"array","items":{"type":"integer"}}}}`, doc: `{"items":[1,"x"]}`,
			want: []string{"at /items/1: got string, want integer"},
		},
		{
			name:   "missing properties in one part",
			schema: `{"required":["a","b"]}`, doc: `{}`,
			want: []string{"at /: missing properties 'a', 'b'"},
		},
		{
			name:   "at most three parts",
			schema: `{"properties":{"a":{"type":"string"},"b":{"type":"string"},"c":{"type":"string"},"d":{"type":"string"},"e":{"type":"string"}}}`,
			doc:    `{"a":1,"b":1,"c":1,"d":1,"e":1}`,
			parts:  3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := compileSchema(json.RawMessage(tt.schema))
			if err != nil {
				t.Fatal(err)
			}
			verr := s.Validate(mustJSON(t, tt.doc))
			if verr == nil {
				t.Fatalf("%s validated", tt.doc)
			}
			msg := schemaMessage(verr)
			if strings.Contains(msg, "\n") {
				t.Errorf("message has a line break: %q", msg)
			}
			parts := strings.Split(msg, "; ")
			for _, p := range parts {
				if !schemaPart.MatchString(p) {
					t.Errorf("part %q is not of the form \"at /path: reason\"", p)
				}
			}
			if tt.want != nil && strings.Join(tt.want, "; ") != msg {
				t.Errorf("schemaMessage = %q, want %q", msg, strings.Join(tt.want, "; "))
			}
			if tt.parts != 0 && len(parts) != tt.parts {
				t.Errorf("schemaMessage has %d parts, want %d: %q", len(parts), tt.parts, msg)
			}
		})
	}
}

func TestSchemaMessage_OtherErrorsVerbatim(t *testing.T) {
	err := errors.New("boom")
	if got := schemaMessage(err); got != "boom" {
		t.Errorf("schemaMessage(%v) = %q, want %q", err, got, "boom")
	}
}

// jsonOfSize returns a JSON object of exactly n bytes (n >= 8).
func jsonOfSize(n int) json.RawMessage {
	return json.RawMessage(`{"a":"` + strings.Repeat("x", n-8) + `"}`)
}

func TestCheckDocs(t *testing.T) {
	const schema = `{"type":"object","properties":{"orderId":{"type":"string"}},"required":["orderId"]}`
	tests := []struct {
		name        string
		description string
		example     string
		schema      string
		field       string // "" for no error
	}{
		{"nothing", "", "", "", ""},
		{"example without schema", "An order.", `{"orderId":1}`, "", ""},
		{"null schema is absent", "", `{"orderId":1}`, `null`, ""},
		{"example satisfies schema", "", `{"orderId":"ord_1"}`, schema, ""},
		{"schema without example", "", "", schema, ""},
		{"null example is absent", "", `null`, schema, ""},
		{"example violates schema", "", `{"orderId":1}`, schema, "input.example"},
		{"example misses required", "", `{}`, schema, "input.example"},
		{"example not JSON", "", `{"orderId":`, schema, "input.example"},
		{"schema not an object", "", `{}`, `[]`, "input.jsonSchema"},
		{"schema not JSON", "", `{}`, `{"type":`, "input.jsonSchema"},
		{"schema with external ref", "", `{}`, `{"$ref":"https://example.com/s.json"}`, "input.jsonSchema"},
		{"description at limit", strings.Repeat("d", 4096), "", "", ""},
		{"description over limit", strings.Repeat("d", 4097), "", "", "input.description"},
		{"example at 64 KiB", "", string(jsonOfSize(64 << 10)), "", ""},
		{"example over 64 KiB", "", string(jsonOfSize(64<<10 + 1)), "", "input.example"},
		{"example over 64 KiB with schema", "", string(jsonOfSize(64<<10 + 1)), `true`, "input.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDocs("input.", tt.description, raw(tt.example), raw(tt.schema))
			if tt.field == "" {
				if err != nil {
					t.Errorf("checkDocs = %v, want nil", err)
				}
				return
			}
			var f *fault.Error
			if !errors.As(err, &f) {
				t.Fatalf("checkDocs = %v, want a fault for %q", err, tt.field)
			}
			if f.Code != fault.BadUserInput || f.Field != tt.field {
				t.Errorf("fault = %s %q (%v), want %s %q", f.Code, f.Field, err, fault.BadUserInput, tt.field)
			}
		})
	}
}

func TestCheckDocs_ExampleMismatchSaysWhere(t *testing.T) {
	err := checkDocs("", "", raw(`{"orderId":1}`), raw(`{"properties":{"orderId":{"type":"string"}}}`))
	if err == nil || !strings.Contains(err.Error(), "at /orderId: got number, want string") {
		t.Errorf("checkDocs = %v, want it to locate the mismatch at /orderId", err)
	}
}

func TestCheckDocs_SchemaAtLimitAccepted(t *testing.T) {
	s := `{"description":"` + strings.Repeat("x", 64<<10-18) + `"}`
	if len(s) != 64<<10 {
		t.Fatalf("schema is %d bytes", len(s))
	}
	if err := checkDocs("input.", "", nil, raw(s)); err != nil {
		t.Errorf("64 KiB schema: %v", err)
	}
}

func TestCheckDocs_OversizedSchemaNamesJSONSchemaField(t *testing.T) {
	s := `{"description":"` + strings.Repeat("x", 64<<10) + `"}`
	err := checkDocs("input.", "", nil, raw(s))
	if f, ok := fault.As(err); !ok || f.Field != "input.jsonSchema" {
		t.Errorf("checkDocs = %v, want a fault for input.jsonSchema", err)
	}
}

func TestBuiltins_NamesAreValidAndUnique(t *testing.T) {
	seen := make(map[string]bool)
	for _, b := range Builtins() {
		if !webhook.ValidEventTypeName(b.Name) {
			t.Errorf("builtin %q is not a valid event type name", b.Name)
		}
		if seen[b.Name] {
			t.Errorf("builtin %q is listed twice", b.Name)
		}
		seen[b.Name] = true
	}
	if len(seen) == 0 {
		t.Fatal("no builtins")
	}
}

func TestBuiltins_SystemFlagMatchesIsSystem(t *testing.T) {
	var system []string
	for _, b := range Builtins() {
		if b.System != IsSystem(b.Name) {
			t.Errorf("builtin %q: System = %v, IsSystem = %v", b.Name, b.System, IsSystem(b.Name))
		}
		if b.System {
			system = append(system, b.Name)
		}
		if !b.System && strings.HasPrefix(b.Name, ReservedPrefix) {
			t.Errorf("builtin %q uses the reserved prefix but is not a system type", b.Name)
		}
	}
	want := []string{TypeTestPing, TypeWebhookFailed, TypeWebhookDisabled, TypeCertificateExpiring}
	if strings.Join(system, ",") != strings.Join(want, ",") {
		t.Errorf("system builtins = %q, want %q", system, want)
	}
}

func TestIsSystem(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"test.ping", true},
		{"webhook.failed", true},
		{"webhook.disabled", true},
		{"webhook.other", false},
		{"test.pong", false},
		{"order.created", false},
		{"Test.Ping", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsSystem(tt.name); got != tt.want {
			t.Errorf("IsSystem(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBuiltins_DocsPassCheckDocs(t *testing.T) {
	for _, b := range Builtins() {
		if b.Description == "" {
			t.Errorf("builtin %q has no description", b.Name)
		}
		var obj map[string]any
		if err := json.Unmarshal(b.Example, &obj); err != nil {
			t.Errorf("builtin %q: example is not a JSON object: %v", b.Name, err)
		}
		if err := checkDocs("", b.Description, b.Example, nil); err != nil {
			t.Errorf("builtin %q: %v", b.Name, err)
		}
	}
}

func raw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(s)))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return v
}
