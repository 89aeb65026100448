// Package heraldtest runs a real Herald server for tests: a temporary
// SQLite database, the full HTTP handler behind an httptest server, the
// dispatch engine, and helpers to call the GraphQL API and to stand up
// webhook receivers with injected faults.
package heraldtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/examples"
	"github.com/heraldhq/herald/server"
)

// Server is a running Herald server.
type Server struct {
	*server.Server
	// URL is the base URL ("http://127.0.0.1:port").
	URL string
	// Token is the admin API key of the default app.
	Token string
	// AppID is the default app.
	AppID string
	// DBPath is the SQLite file.
	DBPath string

	t         testing.TB
	hs        *httptest.Server
	cfg       server.Config
	closeOnce sync.Once
}

// Start starts a server whose destination policy allows private addresses
// (receivers are httptest servers on 127.0.0.1) and plain http, and whose
// default catalog, which every app of the test shares, has the example
// catalog's types (examples/catalog.json: order.created, …), as
// herald serve --dev does. configure may change the configuration before
// the server starts (Catalog = nil: only the system types). The server is
// closed when the test ends.
func Start(t testing.TB, configure ...func(*server.Config)) *Server {
	t.Helper()
	cfg := server.Config{
		DBPath:                   filepath.Join(t.TempDir(), "herald.db"),
		AllowHTTP:                true,
		AllowPrivateDestinations: true,
		PollInterval:             20 * time.Millisecond,
		ShutdownGrace:            2 * time.Second,
		Logger:                   Logger(t),
		Catalog:                  examples.Catalog,
	}
	for _, f := range configure {
		f(&cfg)
	}
	return start(t, cfg, "")
}

func start(t testing.TB, cfg server.Config, token string) *Server {
	t.Helper()
	if cfg.EncryptionKeys == "" && cfg.EncryptionKeyFile == "" && db.IsPostgres(cfg.DB) {
		cfg.EncryptionKeys = EncryptionKeys // the same on every replica
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start herald: %v", err)
	}
	if token == "" {
		token = srv.BootstrapToken()
	}
	if token == "" {
		t.Fatalf("start herald: no bootstrap token on a fresh database")
	}
	hs := httptest.NewServer(srv.Handler())
	srv.Start()
	s := &Server{Server: srv, URL: hs.URL, Token: token, DBPath: cfg.DBPath, t: t, hs: hs, cfg: cfg}
	t.Cleanup(s.Close)
	var v struct {
		Viewer struct{ App struct{ ID string } }
	}
	s.Do(s.Token, `{ viewer { app { id } } }`, nil).Decode(t, &v)
	s.AppID = v.Viewer.App.ID
	return s
}

// Close stops the server (as Server.Close does: in-flight attempts finish,
// queued deliveries are released). It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.hs.CloseClientConnections()
		s.hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Server.Close(ctx); err != nil {
			s.t.Errorf("close herald: %v", err)
		}
	})
}

// Restart closes s and starts a new server on the same database and
// configuration (changed by configure), with the same admin token.
func (s *Server) Restart(configure ...func(*server.Config)) *Server {
	s.t.Helper()
	s.Close()
	cfg := s.cfg
	for _, f := range configure {
		f(&cfg)
	}
	return start(s.t, cfg, s.Token)
}

// Replica starts another server on s's database (a PostgreSQL one: SQLite
// has one server per file), with s's configuration changed by configure
// and s's admin token, as a second replica of a deployment.
func (s *Server) Replica(configure ...func(*server.Config)) *Server {
	s.t.Helper()
	cfg := s.cfg
	for _, f := range configure {
		f(&cfg)
	}
	return start(s.t, cfg, s.Token)
}

// Logger returns a logger that writes to the test log, at warning level
// unless HERALD_TEST_LOG=debug.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("HERALD_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Response is a GraphQL response.
type Response struct {
	Status int
	Data   json.RawMessage
	Errors []Error
	Body   []byte
}

// Error is a GraphQL error.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code returns the extensions.code of the first error, or "".
func (r *Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// Field returns the extensions.field of the first error, or "".
func (r *Response) Field() string {
	if len(r.Errors) == 0 {
		return ""
	}
	f, _ := r.Errors[0].Extensions["field"].(string)
	return f
}

// Decode fails the test if the response has errors, and decodes data into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("GraphQL errors (HTTP %d): %s", r.Status, r.Body)
	}
	if v == nil {
		return
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", r.Data, err)
	}
}

// WantError fails the test unless the response has an error with the code.
func (r *Response) WantError(t testing.TB, code string) {
	t.Helper()
	if got := r.Code(); got != code {
		t.Fatalf("want error code %s, got %q (HTTP %d): %s", code, got, r.Status, r.Body)
	}
	if r.Errors[0].Message == "" {
		t.Fatalf("error with code %s has no message: %s", code, r.Body)
	}
}

// Do posts a GraphQL operation with token (no Authorization header if "").
func (s *Server) Do(token, query string, vars map[string]any) *Response {
	return s.DoWith(token, nil, query, vars)
}

// DoWith is Do with extra request headers.
func (s *Server) DoWith(token string, header http.Header, query string, vars map[string]any) *Response {
	s.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		s.t.Fatalf("encode request: %v", err)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		s.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read response: %v", err)
	}
	r := &Response{Status: resp.StatusCode, Body: raw}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []Error         `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		s.t.Fatalf("response is not GraphQL JSON (HTTP %d): %s", resp.StatusCode, raw)
	}
	r.Data, r.Errors = env.Data, env.Errors
	return r
}

// NewApp creates an app with an app-scoped (non-admin) key and returns the
// app's ID and the key.
func (s *Server) NewApp(name string) (appID, token string) {
	s.t.Helper()
	var out struct {
		CreateApp struct{ ID string }
	}
	s.Do(s.Token, `mutation($n: String!) { createApp(input: {name: $n}) { id } }`, map[string]any{"n": name}).Decode(s.t, &out)
	var key struct {
		CreateAPIKey struct{ Token string }
	}
	s.Do(s.Token, `mutation($a: ID!) { createAPIKey(appId: $a, input: {name: "test"}) { token } }`,
		map[string]any{"a": out.CreateApp.ID}).Decode(s.t, &key)
	return out.CreateApp.ID, key.CreateAPIKey.Token
}

// CreateEndpoint creates an endpoint with the given input fields (name
// defaults to "test endpoint", eventTypes to ["*"]) and returns its ID and
// signing secret.
func (s *Server) CreateEndpoint(token string, input map[string]any) (id, secret string) {
	s.t.Helper()
	in := map[string]any{"name": "test endpoint", "eventTypes": []string{"*"}}
	for k, v := range input {
		in[k] = v
	}
	var out struct {
		CreateEndpoint struct {
			Secret   string
			Endpoint struct{ ID string }
		}
	}
	s.Do(token, `mutation($in: CreateEndpointInput!) { createEndpoint(input: $in) { secret endpoint { id } } }`,
		map[string]any{"in": in}).Decode(s.t, &out)
	return out.CreateEndpoint.Endpoint.ID, out.CreateEndpoint.Secret
}

// Publish publishes one event and returns its ID.
func (s *Server) Publish(token, eventType string, payload any) string {
	s.t.Helper()
	var out struct {
		PublishEvent struct{ ID string }
	}
	s.Do(token, `mutation($t: String!, $p: JSON!) { publishEvent(input: {eventType: $t, payload: $p}) { id } }`,
		map[string]any{"t": eventType, "p": payload}).Decode(s.t, &out)
	return out.PublishEvent.ID
}

// Delivery is a delivery as the tests read it.
type Delivery struct {
	ID                 string
	Status             string
	AttemptCount       int
	LastResponseStatus *int
	LastError          *string
	EventType          string
	EndpointID         string
	NextAttemptAt      *time.Time
	Attempts           struct {
		Edges []struct{ Node Attempt }
	}
}

// Attempt is an attempt as the tests read it.
type Attempt struct {
	ID                    string
	AttemptNumber         int
	Trigger               string
	Succeeded             bool
	ResponseStatus        *int
	ResponseBody          string
	ResponseBodyTruncated bool
	DurationMs            int
	ErrorMessage          *string
	RequestURL            string
	RequestHeaders        []struct{ Name, Value string }
	StartedAt             time.Time
}

// String describes a delivery and its attempts in words, so that a failed
// test says what happened rather than printing pointers.
func (d Delivery) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "delivery %s (%s to endpoint %s): %s after %d attempts", d.ID, d.EventType, d.EndpointID, d.Status, d.AttemptCount)
	if d.LastResponseStatus != nil {
		fmt.Fprintf(&b, ", last status %d", *d.LastResponseStatus)
	}
	if d.LastError != nil {
		fmt.Fprintf(&b, ", last error %q", *d.LastError)
	}
	if d.NextAttemptAt != nil {
		fmt.Fprintf(&b, ", next attempt at %s", d.NextAttemptAt.UTC().Format(time.RFC3339Nano))
	}
	for _, e := range d.Attempts.Edges {
		b.WriteString("\n\t")
		b.WriteString(e.Node.String())
	}
	return b.String()
}

// String describes an attempt in one line.
func (a Attempt) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "attempt %d (%s) at %s, %d ms: ", a.AttemptNumber, a.Trigger, a.StartedAt.UTC().Format("15:04:05.000"), a.DurationMs)
	if a.Succeeded {
		b.WriteString("succeeded")
	} else {
		b.WriteString("failed")
	}
	if a.ResponseStatus != nil {
		fmt.Fprintf(&b, ", status %d", *a.ResponseStatus)
	}
	if a.ErrorMessage != nil {
		fmt.Fprintf(&b, ", error %q", *a.ErrorMessage)
	}
	return b.String()
}

// DeliveryFields selects every field of Delivery (with its first 20
// attempts).
const DeliveryFields = `id status attemptCount lastResponseStatus lastError eventType endpointID nextAttemptAt
	attempts(first: 20, orderBy: {field: ATTEMPT_NUMBER}) { edges { node {
		id attemptNumber trigger succeeded responseStatus responseBody responseBodyTruncated durationMs errorMessage requestURL
		requestHeaders { name value } startedAt } } }`

// Deliveries returns the deliveries of an event. It reads them ten at a
// time: a delivery with its attempts' bodies and headers weighs much in
// the complexity limit.
func (s *Server) Deliveries(token, eventID string) []Delivery {
	s.t.Helper()
	var ds []Delivery
	var after any
	for {
		var out struct {
			Deliveries struct {
				Edges    []struct{ Node Delivery }
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		s.Do(token, `query($e: ID!, $after: Cursor) { deliveries(first: 10, after: $after, where: {eventID: $e}) {
			edges { node { `+DeliveryFields+` } } pageInfo { hasNextPage endCursor } } }`,
			map[string]any{"e": eventID, "after": after}).Decode(s.t, &out)
		for _, e := range out.Deliveries.Edges {
			ds = append(ds, e.Node)
		}
		if !out.Deliveries.PageInfo.HasNextPage {
			return ds
		}
		after = out.Deliveries.PageInfo.EndCursor
	}
}

// WaitDelivery polls the only delivery of an event until cond holds or the
// timeout passes, and returns it.
func (s *Server) WaitDelivery(token, eventID string, timeout time.Duration, cond func(Delivery) bool) Delivery {
	s.t.Helper()
	var last []Delivery
	ok := Eventually(timeout, func() bool {
		last = s.Deliveries(token, eventID)
		return len(last) == 1 && cond(last[0])
	})
	if !ok {
		s.t.Fatalf("delivery of event %s did not reach the wanted state within %s; last seen:\n%v", eventID, timeout, last)
	}
	return last[0]
}

// Eventually polls cond every 10ms until it returns true or timeout passes,
// and reports whether it did.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Request is a request a Receiver got.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// Receiver is a webhook receiver: an httptest server that records every
// request and answers with its handler.
type Receiver struct {
	*httptest.Server

	mu       sync.Mutex
	requests []Request
	handler  func(n int, w http.ResponseWriter, r *http.Request)
	notify   chan struct{}
}

// NewReceiver starts a receiver whose handler gets the 1-based number of
// each request (so faults can depend on it) and can read the body again.
// A nil handler answers 200.
func NewReceiver(t testing.TB, handler func(n int, w http.ResponseWriter, r *http.Request)) *Receiver {
	t.Helper()
	rc := &Receiver{handler: handler, notify: make(chan struct{}, 1)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()})
		n := len(rc.requests)
		h := rc.handler
		rc.mu.Unlock()
		select {
		case rc.notify <- struct{}{}:
		default:
		}
		if h == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body)) // the handler may read it again
		h(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// Requests returns a copy of the requests received so far.
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Request(nil), rc.requests...)
}

// WaitRequests waits until the receiver has at least n requests.
func (rc *Receiver) WaitRequests(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	var got []Request
	if !Eventually(timeout, func() bool { got = rc.Requests(); return len(got) >= n }) {
		t.Fatalf("receiver got %d requests within %s, want %d", len(got), timeout, n)
	}
	return got
}

// Hook returns the receiver's URL with a path.
func (rc *Receiver) Hook(path string) string {
	return fmt.Sprintf("%s%s", rc.URL, path)
}

// SyncBuffer is a bytes.Buffer that a process's output goroutine and the
// test can share.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
