// Package scalar implements Herald's custom GraphQL scalars: Time (RFC 3339,
// normalised to UTC), JSON (any JSON value, kept as raw bytes) and Duration
// (Go duration strings such as "5s" or "1h30m").
package scalar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/heraldhq/herald/destination"
)

// MarshalTime writes t as an RFC 3339 string in UTC.
func MarshalTime(t time.Time) graphql.Marshaler {
	if t.IsZero() {
		return graphql.Null
	}
	return graphql.WriterFunc(func(w io.Writer) {
		b := make([]byte, 0, 40)
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
		_, _ = w.Write(b)
	})
}

// UnmarshalTime reads an RFC 3339 string and returns it in UTC, because
// stored times are compared as UTC text.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("time must be an RFC 3339 string such as \"2026-11-25T12:00:00Z\", got %T", v)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339 (for example \"2026-11-25T12:00:00Z\")", s)
	}
	return t.UTC(), nil
}

// MarshalJSON writes raw JSON as is ("null" when empty).
func MarshalJSON(v json.RawMessage) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		if len(v) == 0 {
			_, _ = io.WriteString(w, "null")
			return
		}
		_, _ = w.Write(v)
	})
}

// UnmarshalJSON accepts any JSON value from variables or an inline literal
// and returns its compact encoding.
func UnmarshalJSON(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case json.RawMessage:
		return v, nil
	case []byte:
		if !json.Valid(v) {
			return nil, fmt.Errorf("invalid JSON")
		}
		return json.RawMessage(v), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("value is not representable as JSON: %w", err)
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// MarshalDuration writes d as a Go duration string without zero units
// ("12h" rather than "12h0m0s", "1m30s", "250ms").
func MarshalDuration(d time.Duration) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(FormatDuration(d)))
	})
}

// FormatDuration formats d like time.Duration.String but drops zero
// minutes and seconds: "12h", "1h30m", "5m", "1m30s", "250ms".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// UnmarshalDuration reads a Go duration string such as "250ms", "5s" or
// "2h30m".
func UnmarshalDuration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("duration must be a string such as \"5s\" or \"2h30m\", got %T", v)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q is not valid: use a number with a unit (ms, s, m, h), such as \"5s\" or \"2h30m\"", s)
	}
	return d, nil
}

// MarshalEndpointType writes a destination type as its GraphQL enum value.
func MarshalEndpointType(t destination.Type) graphql.Marshaler {
	if t == "" {
		t = destination.HTTP
	}
	return graphql.WriterFunc(func(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(t))) })
}

// UnmarshalEndpointType reads an EndpointType enum value (GraphQL has
// checked it is one).
func UnmarshalEndpointType(v any) (destination.Type, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("endpoint type must be a string such as \"RABBITMQ\", got %T", v)
	}
	return destination.Type(s), nil
}
