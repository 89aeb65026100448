package destination

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/heraldhq/herald/secret"
)

// Spec declares a destination type once, for everything that shows or
// checks it: the API's configuration object and its field errors, the
// portal's and console's forms, the masking of its secrets, and the docs.
// A new destination type is a package that returns its Spec, added to the
// registry.
type Spec struct {
	// Type is the endpoint type in the API: "RABBITMQ".
	Type Type
	// Name is what people call it: "RabbitMQ".
	Name string
	// Field is the API field of the endpoint that holds the
	// configuration ("rabbitmq"); "" for HTTP, whose configuration is the
	// endpoint's own url, auth and headers.
	Field string
	// Summary says in a sentence what an endpoint of the type does.
	Summary string
	// Fields declare the configuration, in the order forms show them.
	Fields []Field
	// Check validates a configuration at save, after the fields' own
	// checks (Field), and returns it as it is to be stored. Errors name
	// the field (see FieldError). Nil for HTTP.
	Check func(cfg json.RawMessage, p Policy) (Checked, error)
	// Open returns the type's driver.
	Open func(Env) (Driver, error)
	// Managed types are created through an API of their own (listeners,
	// by createListener), not configured through createEndpoint: they
	// have no configuration object (no Field, no Check), the endpoint
	// forms do not offer them, and endpoints of another type cannot
	// become one.
	Managed bool
}

// Checked is a configuration that passed its checks.
type Checked struct {
	// Config is the configuration as stored.
	Config json.RawMessage
	// Address is where events go, without credentials, stored as the
	// endpoint's url: "amqp://broker.example.com:5672/orders" (see
	// Info.Address).
	Address string
}

// FieldKind is the kind of value a configuration field holds.
type FieldKind string

// Field kinds.
const (
	// String: one line of text.
	String FieldKind = "STRING"
	// Text: text of several lines (a PEM certificate, a JSON key file).
	Text FieldKind = "TEXT"
	// Int: a whole number.
	Int FieldKind = "INT"
	// Bool: true or false.
	Bool FieldKind = "BOOLEAN"
	// List: a list of strings.
	List FieldKind = "LIST"
	// Choice: one of Field.Choices.
	Choice FieldKind = "CHOICE"
)

// Field declares one field of a destination type's configuration.
type Field struct {
	// Name is the field's name in the API and in stored JSON: "routingKey".
	Name string
	// Label is what a form shows: "Routing key".
	Label string
	Kind  FieldKind
	// Required fields must be set (non-empty).
	Required bool
	// Secret fields are credentials: write-only, masked when read (at
	// most their last four characters show), kept when a masked value is
	// sent back, never logged, and encrypted at rest by whatever stores
	// endpoint secrets.
	Secret bool
	// Choices are the values of a Choice field.
	Choices []string
	// Default is the value used when the field is empty, as shown ("" if
	// none).
	Default string
	// Placeholder is an example value, for forms.
	Placeholder string
	// Help explains the field in a sentence or two.
	Help string
	// MaxLen bounds a string's length in bytes (default 2048; Text 64 KiB).
	MaxLen int
}

func (f *Field) maxLen() int {
	switch {
	case f.MaxLen > 0:
		return f.MaxLen
	case f.Kind == Text:
		return 64 << 10
	default:
		return 2048
	}
}

// FieldError reports an invalid configuration field.
type FieldError struct {
	// Field is the field's name ("routingKey"); nested parts follow a dot.
	Field string
	// Message says what is wrong, following the field's name: "is
	// required".
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Invalid returns a *FieldError.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// field returns the spec's field called name.
func (s *Spec) field(name string) *Field {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// normalize checks a configuration against the declared fields: no
// unknown fields, each value of its kind and size, required ones set,
// choices among Choices. Masked secrets sent back as read take their
// stored value. It returns the configuration re-encoded with empty values
// dropped.
func (s *Spec) normalize(in, stored json.RawMessage) (json.RawMessage, error) {
	var vals map[string]any
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	if len(bytes.TrimSpace(in)) == 0 || bytes.Equal(bytes.TrimSpace(in), []byte("null")) {
		vals = map[string]any{}
	} else if err := dec.Decode(&vals); err != nil {
		return nil, &FieldError{Field: "", Message: "must be an object: " + err.Error()}
	}
	var old map[string]any
	if len(stored) > 0 {
		_ = json.Unmarshal(stored, &old)
	}
	out := make(map[string]any, len(vals))
	for name, v := range vals {
		f := s.field(name)
		if f == nil {
			return nil, Invalid(name, "is not a field of %s destinations; they have %s", s.Name, strings.Join(s.fieldNames(), ", "))
		}
		if v == nil {
			continue
		}
		switch f.Kind {
		case String, Text, Choice:
			str, ok := v.(string)
			if !ok {
				return nil, Invalid(name, "must be a string")
			}
			if f.Secret {
				prev, _ := old[name].(string)
				str = secret.Unmask(str, prev)
			} else {
				str = strings.TrimSpace(str)
			}
			if str == "" {
				continue
			}
			if len(str) > f.maxLen() {
				return nil, Invalid(name, "is %d bytes long; the limit is %d", len(str), f.maxLen())
			}
			if !utf8.ValidString(str) {
				return nil, Invalid(name, "is not valid UTF-8")
			}
			if f.Kind == String && strings.ContainsAny(str, "\r\n") {
				return nil, Invalid(name, "must be one line")
			}
			if f.Kind == Choice && !slices.Contains(f.Choices, str) {
				return nil, Invalid(name, "must be one of %s, got %q", strings.Join(f.Choices, ", "), str)
			}
			out[name] = str
		case Int:
			n, ok := v.(json.Number)
			if !ok {
				return nil, Invalid(name, "must be a whole number")
			}
			i, err := n.Int64()
			if err != nil {
				return nil, Invalid(name, "must be a whole number, got %s", n)
			}
			out[name] = i
		case Bool:
			b, ok := v.(bool)
			if !ok {
				return nil, Invalid(name, "must be true or false")
			}
			out[name] = b
		case List:
			items, ok := v.([]any)
			if !ok {
				return nil, Invalid(name, "must be a list of strings")
			}
			var list []string
			for i, it := range items {
				str, ok := it.(string)
				if !ok {
					return nil, Invalid(fmt.Sprintf("%s.%d", name, i), "must be a string")
				}
				if str = strings.TrimSpace(str); str == "" {
					continue
				}
				if len(str) > f.maxLen() {
					return nil, Invalid(fmt.Sprintf("%s.%d", name, i), "is %d bytes long; the limit is %d", len(str), f.maxLen())
				}
				list = append(list, str)
			}
			if len(list) > 100 {
				return nil, Invalid(name, "has %d entries; the limit is 100", len(list))
			}
			if len(list) > 0 {
				out[name] = list
			}
		}
	}
	for _, f := range s.Fields {
		if _, ok := out[f.Name]; f.Required && !ok {
			return nil, Invalid(f.Name, "is required")
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode %s configuration: %w", s.Name, err)
	}
	return b, nil
}

func (s *Spec) fieldNames() []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}

// Mask returns a stored configuration with its secret fields masked (at
// most their last four characters show), as the API shows it.
func (s *Spec) Mask(cfg json.RawMessage) json.RawMessage {
	return secret.MaskConfig(cfg, s.Secrets())
}

// Secrets returns the names of the spec's secret fields.
func (s *Spec) Secrets() []string {
	var names []string
	for _, f := range s.Fields {
		if f.Secret {
			names = append(names, f.Name)
		}
	}
	return names
}

// Decode reads a stored configuration into T, refusing unknown fields.
func Decode[T any](cfg json.RawMessage) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(cfg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("decode configuration: %w", err)
	}
	return v, nil
}

// Encode returns a configuration as stored.
func Encode(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	return b, nil
}

// errNoCheck is returned for types without a configuration object.
var errNoCheck = errors.New("this destination type has no configuration object")
