package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/tenant"
)

// internalError marks an error returned by a resolver that the caller cannot
// act on. Its detail is logged, never sent.
type internalError struct{ err error }

func (e internalError) Error() string { return e.err.Error() }
func (e internalError) Unwrap() error { return e.err }

// Middleware is the field middleware of the API: it applies page-size
// rules to connections and marks resolver errors that are not faults as
// internal, so the presenter can tell them from errors in the request
// itself (which gqlgen reports without passing through resolvers).
func Middleware(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := pageArgs(ctx, next)
	var list fault.List
	if errors.As(err, &list) && len(list) > 1 {
		// Every error of the list on its own, each presented like a
		// single fault (gqlgen adds the errors of a gqlerror.List one by
		// one).
		path := graphql.GetFieldContext(ctx).Path()
		out := make(gqlerror.List, len(list))
		for i, f := range list {
			out[i] = gqlerror.WrapPath(path, f)
		}
		return res, out
	}
	if err != nil && classify(err) == "" {
		var gq *gqlerror.Error
		if errors.As(err, &gq) {
			// ent's generated pagination checks the arguments of nested
			// connections while loading their parents, and reports bad
			// ones (first and last together, negative sizes) as wrapped
			// gqlerrors.
			err = &fault.Error{Code: fault.BadUserInput, Message: gq.Message}
		} else {
			err = internalError{err}
		}
	}
	return res, err
}

// classify returns the code of an error a caller can act on, or "".
func classify(err error) fault.Code {
	var nf *ent.NotFoundError
	var ce *ent.ConstraintError
	var ve *ent.ValidationError
	switch {
	case errors.As(err, new(*fault.Error)):
		f, _ := fault.As(err)
		return f.Code
	case errors.Is(err, tenant.ErrNoViewer):
		return fault.Unauthenticated
	case errors.As(err, &nf):
		return fault.NotFound
	case errors.As(err, &ce):
		return fault.Conflict
	case errors.As(err, &ve):
		return fault.BadUserInput
	}
	return ""
}

// ErrorPresenter returns the gqlgen error presenter: every error gets
// extensions.code; faults carry their message, field and reason; internal
// errors are logged with the operation and replaced by a generic message.
func ErrorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, e error) *gqlerror.Error {
		gerr := graphql.DefaultErrorPresenter(ctx, e)
		if gerr.Extensions == nil {
			gerr.Extensions = map[string]any{}
		}
		var internal internalError
		var gq *gqlerror.Error
		switch {
		case errors.As(e, &internal):
			present(gerr, internal.err, log, ctx)
		case classify(e) != "":
			present(gerr, e, log, ctx)
		case !errors.As(e, &gq):
			// A plain error that did not pass through Middleware: one
			// that generated code added with graphql.AddError, such as
			// ent's nodes reporting a failed query per ID.
			present(gerr, e, log, ctx)
		default:
			// Errors that did not come from a resolver are about the
			// request: parse and validation failures, bad variables and
			// arguments, limits, and the authentication check. Herald's
			// own extensions set a Herald code (UNAUTHENTICATED for a
			// missing key, ...), which stays; gqlgen's codes become the
			// reason of a BAD_USER_INPUT.
			code, _ := gerr.Extensions["code"].(string)
			if !isCode(code) {
				if code != "" {
					gerr.Extensions["reason"] = code
				}
				code = string(fault.BadUserInput)
				gerr.Extensions["code"] = code
			}
			if code == string(fault.BadUserInput) {
				if f := argumentField(ctx, gerr.Path); f != "" {
					gerr.Extensions["field"] = f
				}
			}
		}
		return gerr
	}
}

// isCode reports whether code is one of Herald's error codes.
func isCode(code string) bool {
	switch fault.Code(code) {
	case fault.BadUserInput, fault.Unauthenticated, fault.Forbidden, fault.NotFound, fault.Conflict, fault.Internal:
		return true
	}
	return false
}

// argumentField returns the argument path ("input.timeout",
// "input.headers[0].name") of an error gqlgen raised while decoding the
// arguments of the field in ctx, such as an invalid Duration, or "" for
// errors that are not about an argument.
func argumentField(ctx context.Context, path ast.Path) string {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return ""
	}
	base := fc.Path()
	if len(path) <= len(base) {
		return ""
	}
	if _, ok := path[len(base)].(ast.PathName); !ok {
		// Under the field's own path (nodes' per-ID errors): not an
		// argument.
		return ""
	}
	for i := range base {
		if path[i] != base[i] {
			return ""
		}
	}
	var b strings.Builder
	for _, el := range path[len(base):] {
		switch el := el.(type) {
		case ast.PathName:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(string(el))
		case ast.PathIndex:
			fmt.Fprintf(&b, "[%d]", int(el))
		}
	}
	return b.String()
}

func present(gerr *gqlerror.Error, err error, log *slog.Logger, ctx context.Context) {
	var nf *ent.NotFoundError
	var ce *ent.ConstraintError
	var ve *ent.ValidationError
	f, isFault := fault.As(err)
	switch {
	case isFault:
		gerr.Message = f.Error()
		gerr.Extensions["code"] = string(f.Code)
		if f.Field != "" {
			gerr.Extensions["field"] = f.Field
		}
		if f.Reason != "" {
			gerr.Extensions["reason"] = f.Reason
		}
	case errors.Is(err, tenant.ErrNoViewer):
		gerr.Message = "missing API key: send the header \"Authorization: Bearer <your hrld_ key>\""
		gerr.Extensions["code"] = string(fault.Unauthenticated)
	case errors.As(err, &nf):
		gerr.Message = "not found"
		gerr.Extensions["code"] = string(fault.NotFound)
	case errors.As(err, &ce):
		gerr.Message = "conflicts with an existing object"
		gerr.Extensions["code"] = string(fault.Conflict)
	case errors.As(err, &ve):
		gerr.Message = fmt.Sprintf("invalid value for %s", ve.Name)
		gerr.Extensions["code"] = string(fault.BadUserInput)
		gerr.Extensions["field"] = ve.Name
	default:
		op := ""
		if oc := graphql.GetOperationContext(ctx); oc != nil {
			op = oc.OperationName
		}
		log.ErrorContext(ctx, "graphql resolver failed", "operation", op, "path", gerr.Path.String(), "err", err)
		gerr.Message = "internal error: the failure was logged on the server"
		gerr.Extensions["code"] = string(fault.Internal)
	}
}

// Recover turns a panic in a resolver into an INTERNAL error and logs it.
func Recover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "graphql resolver panicked", "panic", p, "stack", string(debug.Stack()))
		return internalError{fmt.Errorf("panic: %v", p)}
	}
}
