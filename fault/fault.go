// Package fault defines the errors Herald reports to API callers.
//
// Domain packages return a *fault.Error when the caller can act on the
// failure (bad input, missing object, conflicting state). The GraphQL
// presenter maps the Code to extensions.code; every other error is reported
// as INTERNAL without detail.
package fault

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies an error for API callers. The values are the GraphQL
// extensions.code strings.
type Code string

// Codes reported to API callers.
const (
	BadUserInput    Code = "BAD_USER_INPUT"
	Unauthenticated Code = "UNAUTHENTICATED"
	Forbidden       Code = "FORBIDDEN"
	NotFound        Code = "NOT_FOUND"
	Conflict        Code = "CONFLICT"
	Internal        Code = "INTERNAL"
)

// Error is an error a caller can act on.
type Error struct {
	// Code classifies the error.
	Code Code
	// Field names the input field at fault, as a dotted path relative to
	// the operation's arguments ("input.url", "input.retryPolicy.maxDelay").
	Field string
	// Reason is an optional machine-readable detail, such as
	// "WEBHOOK_EXISTS" for a conflict.
	Reason string
	// Message says what is wrong and how to fix it, for a person.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Invalid reports bad input in the named field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: BadUserInput, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf reports that the object the caller named does not exist or is not
// visible to the caller.
func NotFoundf(format string, args ...any) *Error {
	return &Error{Code: NotFound, Message: fmt.Sprintf(format, args...)}
}

// Conflictf reports that the request conflicts with the current state.
// reason is a machine-readable detail such as "WEBHOOK_EXISTS".
func Conflictf(reason, format string, args ...any) *Error {
	return &Error{Code: Conflict, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Forbiddenf reports that the caller is authenticated but may not do this.
func Forbiddenf(format string, args ...any) *Error {
	return &Error{Code: Forbidden, Message: fmt.Sprintf(format, args...)}
}

// Unauthenticatedf reports a missing or unusable credential.
func Unauthenticatedf(format string, args ...any) *Error {
	return &Error{Code: Unauthenticated, Message: fmt.Sprintf(format, args...)}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Prefix returns a copy of err with prefix prepended to its Field path, so a
// validator of a nested input can report "retryPolicy.maxDelay" and its
// caller "input.retryPolicy.maxDelay". Errors that are not *Error are
// returned unchanged.
func Prefix(prefix string, err error) error {
	e, ok := As(err)
	if !ok {
		return err
	}
	c := *e
	switch {
	case c.Field == "":
		c.Field = prefix
	default:
		c.Field = prefix + "." + c.Field
	}
	return &c
}

// List is several errors a caller can act on at once, such as every invalid
// field of a form: the GraphQL presenter reports each as an error of its
// own, so a client can show them all after one request.
type List []*Error

// Error implements error.
func (l List) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the errors of the list.
func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Add appends the faults of err (an *Error, a List, or an error wrapping
// one) and reports whether it could: an error that is not a fault is not
// something the caller can act on, and the caller returns it instead.
func (l *List) Add(err error) bool {
	var list List
	if errors.As(err, &list) {
		*l = append(*l, list...)
		return true
	}
	if e, ok := As(err); ok {
		*l = append(*l, e)
		return true
	}
	return false
}

// Err returns nil for an empty list, its error for a list of one, and the
// list otherwise.
func (l List) Err() error {
	switch len(l) {
	case 0:
		return nil
	case 1:
		return l[0]
	}
	return l
}
