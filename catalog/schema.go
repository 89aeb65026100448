package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/heraldhq/herald/fault"
)

// checkDocs validates the documentation of an event type: the schema must
// compile and the example must satisfy it.
func checkDocs(prefix, description string, example, schema json.RawMessage) error {
	if len(description) > 4096 {
		return fault.Invalid(prefix+"description", "must be at most 4096 characters")
	}
	if len(example) > 64<<10 {
		return fault.Invalid(prefix+"example", "must be at most 64 KiB")
	}
	if len(schema) > 64<<10 {
		return fault.Invalid(prefix+"jsonSchema", "must be at most 64 KiB")
	}
	if !present(schema) {
		return nil
	}
	s, err := compileSchema(schema)
	if err != nil {
		return fault.Invalid(prefix+"jsonSchema", "is not a usable JSON Schema: %v", err)
	}
	if !present(example) {
		return nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(example))
	if err != nil {
		return fault.Invalid(prefix+"example", "is not valid JSON: %v", err)
	}
	if err := s.Validate(doc); err != nil {
		return fault.Invalid(prefix+"example", "does not match jsonSchema: %s", schemaMessage(err))
	}
	return nil
}

// noLoader refuses to load referenced schemas: a schema may only refer to
// itself, so compiling one never reads files or the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q is not allowed: inline the referenced schema under $defs", url)
}

func compileSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		if _, isBool := doc.(bool); !isBool {
			return nil, errors.New("a schema must be a JSON object")
		}
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	// A hierarchical location, so that a relative $ref resolves to an
	// external URL (which noLoader refuses) instead of back to the schema.
	const loc = "https://herald.invalid/event-type-schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// schemaMessage flattens a validation error into one line.
func schemaMessage(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	out := ve.BasicOutput()
	var parts []string
	for _, e := range out.Errors {
		if e.Error == nil {
			continue
		}
		loc := e.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		parts = append(parts, fmt.Sprintf("at %s: %s", loc, e.Error.String()))
		if len(parts) == 3 {
			break
		}
	}
	if len(parts) == 0 {
		return strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return strings.Join(parts, "; ")
}

// present reports whether a stored or submitted JSON document is set: not
// empty and not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// orNil returns raw, or nil if it is not present.
func orNil(raw json.RawMessage) json.RawMessage {
	if !present(raw) {
		return nil
	}
	return raw
}
