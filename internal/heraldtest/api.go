package heraldtest

import (
	"net/http"
	"regexp"
	"testing"
)

// Reason returns the extensions.reason of the first error, or "".
func (r *Response) Reason() string {
	if len(r.Errors) == 0 {
		return ""
	}
	s, _ := r.Errors[0].Extensions["reason"].(string)
	return s
}

// WantFault fails the test unless the first error has the code and, when
// field is not empty, the extensions.field.
func (r *Response) WantFault(t testing.TB, code, field string) {
	t.Helper()
	r.WantError(t, code)
	if field != "" && r.Field() != field {
		t.Fatalf("error %s: want extensions.field %q, got %q: %s", code, field, r.Field(), r.Body)
	}
}

// leakRE matches error messages that reveal Herald's internals: SQL, ent's
// error prefixes, stack traces.
var leakRE = regexp.MustCompile(`(?i)\bsql|\bSELECT\b|\bent: |goroutine|\.go:\d+`)

// CheckErrors fails the test if an error of the response has no
// extensions.code or a message that reveals internals (SQL, ent errors,
// stack traces).
func (r *Response) CheckErrors(t testing.TB) {
	t.Helper()
	for _, e := range r.Errors {
		if c, _ := e.Extensions["code"].(string); c == "" {
			t.Errorf("error without extensions.code: %s", r.Body)
		}
		if m := leakRE.FindString(e.Message); m != "" {
			t.Errorf("error message leaks internals (%q): %s", m, e.Message)
		}
	}
}

// Client calls the API as one caller: a token and optional extra headers.
// Every response it returns has been checked with CheckErrors.
type Client struct {
	s      *Server
	t      testing.TB
	token  string
	header http.Header
}

// As returns a Client that calls the API with token ("" for none), failing
// t on errors that lack a code or leak internals.
func (s *Server) As(t testing.TB, token string) *Client {
	return &Client{s: s, t: t, token: token}
}

// WithHeader returns a copy of c that also sends the header.
func (c *Client) WithHeader(name, value string) *Client {
	h := c.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(name, value)
	return &Client{s: c.s, t: c.t, token: c.token, header: h}
}

// Do posts a GraphQL operation.
func (c *Client) Do(query string, vars map[string]any) *Response {
	c.t.Helper()
	r := c.s.DoWith(c.token, c.header, query, vars)
	r.CheckErrors(c.t)
	return r
}

// Must posts a GraphQL operation, fails the test if it returns errors, and
// decodes its data into v (if not nil).
func (c *Client) Must(v any, query string, vars map[string]any) {
	c.t.Helper()
	c.Do(query, vars).Decode(c.t, v)
}
