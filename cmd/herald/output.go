package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heraldhq/herald/client"
)

// Exit codes of herald's commands (docs/cli.md lists them).
const (
	exitOK = 0
	// exitFailure: the command failed for another reason (the server's
	// internal error, a test delivery that failed, a server that would not
	// start).
	exitFailure = 1
	// exitUsage: the command line or its input is wrong (a bad flag, bad
	// JSON, a value the API refused as BAD_USER_INPUT).
	exitUsage = 2
	// exitAuth: not logged in, a wrong or revoked key (UNAUTHENTICATED), or
	// a key without the scope (FORBIDDEN).
	exitAuth = 3
	// exitNotFound: the object does not exist (NOT_FOUND).
	exitNotFound = 4
	// exitConflict: the change conflicts with what exists (CONFLICT).
	exitConflict = 5
	// exitUnreachable: the server could not be reached, or what answered
	// is not a Herald server.
	exitUnreachable = 6
)

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode returns the exit code of err.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	if _, ok := errors.AsType[*client.NetError](err); ok {
		return exitUnreachable
	}
	if e, ok := errors.AsType[*client.Error](err); ok {
		switch e.Code {
		case client.CodeBadUserInput:
			return exitUsage
		case client.CodeUnauthenticated, client.CodeForbidden:
			return exitAuth
		case client.CodeNotFound:
			return exitNotFound
		case client.CodeConflict:
			return exitConflict
		case client.CodeHTTP:
			return exitUnreachable
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return exitUnreachable
	}
	// cobra's own errors about the command line.
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.HasPrefix(msg, p) {
			return exitUsage
		}
	}
	return exitFailure
}

// hint returns what to do about err, or "".
func hint(err error) string {
	if _, ok := errors.AsType[*client.NetError](err); ok {
		return "is Herald running there? Start one with \"herald serve --dev\", or point herald at another with --url, HERALD_URL or \"herald login\"."
	}
	e, ok := errors.AsType[*client.Error](err)
	if !ok {
		return ""
	}
	switch e.Code {
	case client.CodeUnauthenticated:
		return "check the API key: run \"herald login\" again, or set HERALD_API_KEY."
	case client.CodeForbidden:
		return "the key lacks the scope for this, or may not act in that app: use a key with the scope (or an admin key)."
	case client.CodeHTTP:
		return "check the URL: it should be Herald's base URL, such as http://localhost:8080."
	}
	return ""
}

// reportError prints err for a person, or as JSON with --json.
func reportError(w io.Writer, err error, asJSON bool) {
	if asJSON {
		out := map[string]any{"message": err.Error(), "exitCode": exitCode(err)}
		if e, ok := errors.AsType[*client.Error](err); ok {
			out["message"], out["code"] = e.Message, e.Code
			if e.Field != "" {
				out["field"] = e.Field
			}
			if len(e.Others) > 0 {
				out["others"] = e.Others
			}
		}
		if h := hint(err); h != "" {
			out["hint"] = h
		}
		b, _ := json.Marshal(map[string]any{"error": out})
		fmt.Fprintln(w, string(b))
		return
	}
	msg := err.Error()
	if e, ok := errors.AsType[*client.Error](err); ok {
		msg = e.Message
		if e.Field != "" && !strings.Contains(msg, e.Field) {
			msg += " (" + e.Field + ")"
		}
		for _, o := range e.Others {
			msg += "\n  also: " + o.Message
		}
	}
	fmt.Fprintln(w, "herald:", msg)
	if h := hint(err); h != "" {
		fmt.Fprintln(w, "hint:", h)
	}
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(toAny(header)...)
	}
	return t
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (t *table) row(cols ...any) {
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, cell(c))
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() error { return t.tw.Flush() }

// cell formats a value for a table: nil pointers as "-", times in local
// time to the second.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return strings.ReplaceAll(x, "\t", " ")
	case *string:
		if x == nil {
			return "-"
		}
		return cell(*x)
	case *int:
		if x == nil {
			return "-"
		}
		return fmt.Sprint(*x)
	case time.Time:
		if x.IsZero() {
			return "-"
		}
		return x.Local().Format("2006-01-02 15:04:05")
	case *time.Time:
		if x == nil {
			return "-"
		}
		return cell(*x)
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case []string:
		return strings.Join(x, ",")
	}
	return fmt.Sprint(v)
}

// fields prints "name: value" lines, aligned.
func fields(w io.Writer, kv ...any) error {
	t := newTable(w)
	for i := 0; i+1 < len(kv); i += 2 {
		t.row(fmt.Sprint(kv[i])+":", kv[i+1])
	}
	return t.flush()
}

// morePages tells a person how to see the next page.
func morePages(w io.Writer, hasNext bool, cursor string, total, shown int) {
	if hasNext {
		fmt.Fprintf(w, "%d of %d shown; next page: --after %s\n", shown, total, cursor)
	}
}
