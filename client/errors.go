package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Code is the extensions.code of an API error.
type Code string

// Codes Herald's API returns, and CodeHTTP for an answer that is not
// GraphQL.
const (
	CodeBadUserInput    Code = "BAD_USER_INPUT"
	CodeUnauthenticated Code = "UNAUTHENTICATED"
	CodeForbidden       Code = "FORBIDDEN"
	CodeNotFound        Code = "NOT_FOUND"
	CodeConflict        Code = "CONFLICT"
	CodeInternal        Code = "INTERNAL_SERVER_ERROR"
	// CodeHTTP: the server answered with an HTTP error and no GraphQL
	// response (a proxy's error page, another service at the URL).
	CodeHTTP Code = "HTTP"
)

// Error is an error the API answered with. When it answered with several,
// Error is the first and Others holds the rest (a form with several bad
// fields, say).
type Error struct {
	Code    Code
	Message string
	// Field is the input field at fault (extensions.field), if any.
	Field string
	// Reason is a finer cause some errors carry (extensions.reason).
	Reason string
	// Path is the response path of the error, such as "publishEvent".
	Path string
	// HTTPStatus is the response's status when it was not 200.
	HTTPStatus int
	// Others are the further errors of the same response.
	Others []*Error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	for _, o := range e.Others {
		b.WriteString("; ")
		b.WriteString(o.Message)
	}
	return b.String()
}

// IsCode reports whether err is, or wraps, an *Error with the code.
func IsCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// NetError means the server could not be reached, or the connection broke
// before it answered.
type NetError struct {
	// URL is the server's base URL.
	URL string
	// Op is the operation that was sent.
	Op  string
	Err error
}

// Error implements error.
func (e *NetError) Error() string {
	return fmt.Sprintf("cannot reach herald at %s: %v", e.URL, e.Err)
}

// Unwrap returns the underlying error.
func (e *NetError) Unwrap() error { return e.Err }

// ErrNotFound is wrapped by the errors of Get-style methods when the object
// does not exist (or is not visible to the key): test with IsCode(err,
// CodeNotFound) or errors.Is(err, ErrNotFound).
var ErrNotFound = errors.New("not found")

func notFound(kind, id string) error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("%s %q not found", kind, id)}
}

// Is makes errors.Is(err, ErrNotFound) true for NOT_FOUND errors.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Code == CodeNotFound
}

func hasCode(list gqlerror.List) bool {
	for _, e := range list {
		if _, ok := e.Extensions["code"].(string); ok {
			return true
		}
	}
	return false
}

// fromGQL converts GraphQL errors into an *Error.
func fromGQL(list gqlerror.List, status int) error {
	if len(list) == 0 {
		return nil
	}
	conv := func(g *gqlerror.Error) *Error {
		e := &Error{Message: g.Message, HTTPStatus: status, Path: g.Path.String()}
		if c, ok := g.Extensions["code"].(string); ok {
			e.Code = Code(c)
		}
		if f, ok := g.Extensions["field"].(string); ok {
			e.Field = f
		}
		if r, ok := g.Extensions["reason"].(string); ok {
			e.Reason = r
		}
		return e
	}
	first := conv(list[0])
	for _, g := range list[1:] {
		first.Others = append(first.Others, conv(g))
	}
	return first
}
