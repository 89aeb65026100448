package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/tenant"
)

// HeaderApp is the header an admin key sends to act in another app.
const HeaderApp = "X-Herald-App"

type authErrKey struct{}

// authenticate resolves the Authorization header to a viewer. A request
// without a usable key still reaches the GraphQL handler, where
// requireViewer lets through only introspection (the schema is public) and
// answers everything else with UNAUTHENTICATED.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := graph.WithRequestURL(r.Context(), requestURL(r))
		authz := r.Header.Get("Authorization")
		if authz == "" {
			ctx = context.WithValue(ctx, authErrKey{}, fault.Unauthenticatedf("missing API key: send the header \"Authorization: Bearer <your hrld_ key>\""))
		} else {
			v, err := s.auth.Authenticate(ctx, authz, r.Header.Get(HeaderApp))
			if err != nil {
				if _, ok := fault.As(err); !ok {
					// The key could not be checked (the database is
					// unreachable, say): a GraphQL error clients can
					// parse, and a status that says to try again.
					s.log.ErrorContext(ctx, "authenticate", "err", err)
					w.Header().Set("Retry-After", "1")
					writeGraphQLError(w, http.StatusServiceUnavailable, fault.Internal,
						"Herald could not check the API key right now (its database did not answer); try again shortly")
					return
				}
				ctx = context.WithValue(ctx, authErrKey{}, err)
			} else {
				ctx = tenant.NewContext(ctx, v)
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireViewer is a gqlgen extension that refuses operations without an
// authenticated viewer, except pure introspection.
type requireViewer struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = requireViewer{}

func (requireViewer) ExtensionName() string                   { return "RequireViewer" }
func (requireViewer) Validate(graphql.ExecutableSchema) error { return nil }

func (requireViewer) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if _, ok := tenant.FromContext(ctx); ok || oc.Operation == nil {
		return nil
	}
	if isIntrospection(oc.Operation.SelectionSet, oc.Doc.Fragments) {
		return nil
	}
	err, _ := ctx.Value(authErrKey{}).(error)
	f, ok := fault.As(err)
	if !ok {
		f = fault.Unauthenticatedf("missing API key: send the header \"Authorization: Bearer <your hrld_ key>\"")
	}
	return faultError(f)
}

// faultError turns a fault into a GraphQL error for extensions that refuse
// an operation before it runs.
func faultError(f *fault.Error) *gqlerror.Error {
	gerr := gqlerror.Errorf("%s", f.Message)
	gerr.Extensions = map[string]any{"code": string(f.Code)}
	if f.Reason != "" {
		gerr.Extensions["reason"] = f.Reason
	}
	return gerr
}

// requestURL returns the scheme and host a request reached Herald with.
// Behind a TLS-terminating proxy set Config.PublicURL instead.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// isIntrospection reports whether every top-level field of set is an
// introspection field.
func isIntrospection(set ast.SelectionSet, frags ast.FragmentDefinitionList) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if !strings.HasPrefix(s.Name, "__") {
				return false
			}
		case *ast.InlineFragment:
			if !isIntrospection(s.SelectionSet, frags) {
				return false
			}
		case *ast.FragmentSpread:
			f := frags.ForName(s.Name)
			if f == nil || !isIntrospection(f.SelectionSet, frags) {
				return false
			}
		}
	}
	return true
}

// anonymousBodyLimit bounds the body of a request without a usable key:
// introspection fits in a few kilobytes.
const anonymousBodyLimit = 64 << 10

// limitBody refuses request bodies larger than MaxRequestBytes (64 KiB
// without a usable key: only introspection works then) with 413, whether
// their length is declared or they are chunked, and bounds the time to
// read them and to answer. It runs after authenticate, so that no body is
// read for a caller the server does not know.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.cfg.MaxRequestBytes
		if _, ok := tenant.FromContext(r.Context()); !ok {
			limit = min(limit, anonymousBodyLimit)
		}
		if !websocket.IsWebSocketUpgrade(r) {
			rc := http.NewResponseController(w)
			now := time.Now()
			_ = rc.SetReadDeadline(now.Add(s.cfg.BodyTimeout))
			_ = rc.SetWriteDeadline(now.Add(s.cfg.ResponseTimeout))
		}
		tooLarge := func(size string) {
			hint := "split large batches"
			if limit == anonymousBodyLimit {
				hint = "send an API key (Authorization: Bearer hrld_…): without one only introspection works"
			}
			writeGraphQLError(w, http.StatusRequestEntityTooLarge, fault.BadUserInput,
				fmt.Sprintf("request body is %s bytes; the limit is %d: %s", size, limit, hint))
		}
		switch {
		case r.ContentLength > limit:
			tooLarge(strconv.FormatInt(r.ContentLength, 10))
			return
		case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
			// Chunked: read up to one byte past the limit to find out.
			body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
			if err != nil {
				writeGraphQLError(w, http.StatusBadRequest, fault.BadUserInput, "could not read the request body in time")
				return
			}
			if int64(len(body)) > limit {
				tooLarge("over " + strconv.FormatInt(limit, 10))
				return
			}
			r.Body = newReadBody(body)
			r = r.WithContext(context.WithValue(r.Context(), bodySizeKey{}, int64(len(body))))
		default:
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			r = r.WithContext(context.WithValue(r.Context(), bodySizeKey{}, r.ContentLength))
		}
		next.ServeHTTP(w, r)
	})
}

type bodySizeKey struct{}

// bodySize returns the size of the request body of ctx's HTTP request (0
// for websocket operations).
func bodySize(ctx context.Context) int64 {
	n, _ := ctx.Value(bodySizeKey{}).(int64)
	return n
}

func writeGraphQLError(w http.ResponseWriter, status int, code fault.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": string(code)}}},
	})
}

// cors answers CORS preflights and sets CORS headers for allowed origins.
func (s *Server) cors(next http.Handler) http.Handler {
	origins := s.cfg.CORSOrigins
	if len(origins) == 0 {
		return next
	}
	any := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (any || slices.Contains(origins, origin)) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, "+HeaderApp)
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Max-Age", "600")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type requestIDKey struct{}

// logRequests logs one line per request with its status and duration, and
// gives every request an ID (X-Request-Id) that its error logs repeat.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = audit.WithOrigin(ctx, audit.Origin{RemoteAddr: r.RemoteAddr, RequestID: id})
		next.ServeHTTP(rec, r.WithContext(ctx))
		level := levelFor(rec.status)
		if !s.log.Enabled(r.Context(), level) {
			return
		}
		s.log.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr))
	})
}

// levelFor logs server errors as errors, client errors as information and
// the rest as debug noise.
func levelFor(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case status >= 400:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// recoverPanics turns a panic outside the GraphQL executor into a 500.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("http handler panicked", "panic", p, "stack", string(debug.Stack()))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status and size of a response. It keeps
// the Hijacker and Flusher of the writer it wraps (websockets need them).
type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: response writer cannot be hijacked")
	}
	r.status = http.StatusSwitchingProtocols
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
