package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Definition is an event type as a catalog file holds it, and as the
// importEventTypes mutation takes it: everything about the type except
// where it lives. Importing a definition makes the type exactly so (an
// omitted description, example or schema is removed; an omitted archived
// is false).
type Definition struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Example     json.RawMessage `json:"example,omitempty"`
	JSONSchema  json.RawMessage `json:"jsonSchema,omitempty"`
	Archived    bool            `json:"archived,omitempty"`
}

// File is a catalog file: what `herald catalog export` writes and
// `herald catalog import` reads, so that a platform can keep its catalog
// in its repository and apply it from CI. Its one field, eventTypes, is
// the importEventTypes mutation's list of the same name. Herald's system
// types (test.ping, webhook.*) are not in files: every catalog has them.
type File struct {
	EventTypes []Definition `json:"eventTypes"`
}

// ParseFile reads a catalog file. It refuses fields it does not know (a
// misspelt "jsonschema" would otherwise be dropped without a word) and
// anything after the document.
func ParseFile(data []byte) (*File, error) {
	if err := checkKeys(data); err != nil {
		return nil, fmt.Errorf("read catalog file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("read catalog file: %w", describeJSONError(data, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("read catalog file: unexpected data after the JSON document")
	}
	if f.EventTypes == nil {
		return nil, errors.New(`read catalog file: no "eventTypes" list: a catalog file is {"eventTypes": [{"name": "order.created", ...}, ...]}`)
	}
	return &f, nil
}

// checkKeys refuses keys that are not the format's, exactly: encoding/json
// would take "jsonschema" for jsonSchema and drop "jsonSchemas" without a
// word.
func checkKeys(data []byte) error {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil // the typed decode reports it, with its line
	}
	for k := range doc {
		if k != "eventTypes" {
			return fmt.Errorf("unknown field %q: a catalog file has only \"eventTypes\"", k)
		}
	}
	var types []map[string]json.RawMessage
	if err := json.Unmarshal(doc["eventTypes"], &types); err != nil {
		return nil
	}
	known := map[string]bool{"name": true, "description": true, "example": true, "jsonSchema": true, "archived": true}
	for i, t := range types {
		for k := range t {
			if !known[k] {
				return fmt.Errorf("eventTypes[%d]: unknown field %q: an event type has name, description, example, jsonSchema and archived", i, k)
			}
		}
	}
	return nil
}

// describeJSONError adds the line of a syntax or type error.
func describeJSONError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	return fmt.Errorf("line %d: %w", line, err)
}

// Marshal writes the file as `herald catalog export` does: types in name
// order, the keys of their examples and schemas sorted, indented with two
// spaces, ending in a newline; the same catalog always makes the same
// bytes, so that files under version control change only where the
// catalog did. Importing what it writes into the catalog it was exported
// from changes nothing.
func (f *File) Marshal() ([]byte, error) {
	types := slices.Clone(f.EventTypes)
	if types == nil {
		types = []Definition{}
	}
	slices.SortFunc(types, func(a, b Definition) int { return strings.Compare(a.Name, b.Name) })
	for i := range types {
		var err error
		if types[i].Example, err = canonical(types[i].Example); err != nil {
			return nil, fmt.Errorf("write catalog file: example of %s: %w", types[i].Name, err)
		}
		if types[i].JSONSchema, err = canonical(types[i].JSONSchema); err != nil {
			return nil, fmt.Errorf("write catalog file: jsonSchema of %s: %w", types[i].Name, err)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(File{EventTypes: types}); err != nil {
		return nil, fmt.Errorf("write catalog file: %w", err)
	}
	return b.Bytes(), nil
}

// canonical returns a JSON document with its objects' keys sorted and its
// numbers as written, or nil for an absent or null one.
func canonical(raw json.RawMessage) (json.RawMessage, error) {
	if !present(raw) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
