package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/auth"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/tenant"
)

// Close codes Herald uses on GraphQL websockets (both subprotocols).
const (
	// CloseUnauthorized: the connection_init carried no usable API key, or
	// the connection's key (or portal session) was revoked or expired.
	CloseUnauthorized = 4401
	// CloseTooManyConnections: the API key has too many live connections.
	CloseTooManyConnections = 4429
)

// gorillaWebsockets accepts GraphQL websocket connections with
// gorilla/websocket for gqlgen's transport, checks the Origin header, and
// keeps track of open connections and their API keys so that shutdown and
// revocations can close them.
type gorillaWebsockets struct {
	upgrader websocket.Upgrader

	mu    sync.Mutex
	conns map[*gorillaConn]struct{}
}

func newGorillaWebsockets() *gorillaWebsockets {
	g := &gorillaWebsockets{conns: make(map[*gorillaConn]struct{})}
	g.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Reuse the HTTP server's read buffer, and share write buffers
		// between connections: most live connections are idle most of the
		// time, so they need not each own buffers.
		ReadBufferSize:  0,
		WriteBufferSize: 4096,
		WriteBufferPool: &sync.Pool{},
		// Origins are checked by checkOrigin before gqlgen sees the
		// request, so a refusal is a clean 403 rather than a log line.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return g
}

// checkOrigin refuses websocket upgrades from browser pages of other
// origins, which could otherwise ride on a user's credentials.
func (s *Server) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) && !originAllowed(r, s.cfg.CORSOrigins) {
			writeGraphQLError(w, http.StatusForbidden, fault.Forbidden,
				fmt.Sprintf("websocket connections from origin %q are not allowed: add it to --cors-origins", r.Header.Get("Origin")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// originAllowed accepts requests without an Origin (non-browser clients),
// same-origin requests, and the configured CORS origins.
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(allowed, "*") || slices.Contains(allowed, origin)
}

type connSlotKey struct{}

// connSlot carries a websocket connection and its upgrade request's headers
// from Accept, which sees the request, to the transport's InitFunc, which
// sees only the request's context.
type connSlot struct {
	conn   *gorillaConn
	header http.Header
	// upgraded, if set, is closed once the connection is upgraded (see
	// detachWebsocket).
	upgraded chan struct{}
}

// withConnSlot gives every websocket upgrade request an empty connSlot.
func withConnSlot(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			r = r.WithContext(context.WithValue(r.Context(), connSlotKey{}, &connSlot{}))
		}
		next.ServeHTTP(w, r)
	})
}

// Accept implements transport.WebsocketImplementation.
func (g *gorillaWebsockets) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	up := g.upgrader
	up.Subprotocols = opts.Subprotocols
	ws, err := up.Upgrade(w, r, opts.ResponseHeader)
	if err != nil {
		return nil, err
	}
	c := &gorillaConn{ws: ws, g: g}
	c.read.Store(time.Now().UnixNano())
	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	if slot, ok := r.Context().Value(connSlotKey{}).(*connSlot); ok {
		slot.conn, slot.header = c, r.Header
		if slot.upgraded != nil {
			close(slot.upgraded)
		}
	}
	return c, nil
}

// detachWebsocket serves a websocket upgrade request on a goroutine of its
// own, and returns as soon as the connection is upgraded (or the upgrade
// fails and its answer is written): the connection is hijacked, so the
// HTTP server's goroutine for it ends there. The connection's read loop
// then runs on a stack of a dozen frames instead of forty (the HTTP
// server's and every middleware's), and the garbage collector scans every
// goroutine's stack at every cycle: with 500 live connections, scanning
// stacks was half of each cycle's work.
//
// The request's context is detached from the HTTP server's, which cancels
// it when the handler returns, and cancelled when the connection ends, as
// it was when the connection held the handler.
func (s *Server) detachWebsocket(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// withConnSlot gave a slot to websocket upgrades, and only to them.
		slot, _ := r.Context().Value(connSlotKey{}).(*connSlot)
		if slot == nil {
			next.ServeHTTP(w, r)
			return
		}
		upgraded, done := make(chan struct{}), make(chan struct{})
		slot.upgraded = upgraded
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		r = r.WithContext(ctx)
		go func() {
			defer close(done)
			defer cancel()
			defer func() {
				// Past the upgrade no middleware is left to recover: a
				// panic here would end the process.
				if p := recover(); p != nil {
					s.log.Error("websocket connection panicked", "panic", p, "stack", string(debug.Stack()))
					if slot.conn == nil {
						// Not upgraded: the handler waits for done.
						http.Error(w, "internal error", http.StatusInternalServerError)
						return
					}
					_ = slot.conn.Close()
				}
			}()
			next.ServeHTTP(w, r)
		}()
		select {
		case <-upgraded:
		case <-done:
		}
	})
}

// bind records the API key a connection authenticated with, for closeKey,
// and, for a key that expires, closes the connection when it does.
func (g *gorillaWebsockets) bind(c *gorillaConn, keyID string, expires time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c.keyID = keyID
	if !expires.IsZero() && c.expiry == nil {
		c.expiry = time.AfterFunc(time.Until(expires), func() {
			_ = c.WriteClose(CloseUnauthorized, "API key or portal session expired")
			_ = c.Close()
		})
	}
}

// closeKey closes every open connection of an API key with code and reason,
// all at once (each close frame may wait a second for a slow peer), and
// returns how many it closed.
func (g *gorillaWebsockets) closeKey(keyID string, code int, reason string) int {
	g.mu.Lock()
	var conns []*gorillaConn
	for c := range g.conns {
		if c.keyID == keyID {
			conns = append(conns, c)
		}
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			_ = c.WriteClose(code, reason)
			_ = c.Close()
		})
	}
	wg.Wait()
	return len(conns)
}

// keys returns the API keys of the open connections, once each.
func (g *gorillaWebsockets) keys() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := make(map[string]bool)
	var out []string
	for c := range g.conns {
		if c.keyID != "" && !seen[c.keyID] {
			seen[c.keyID] = true
			out = append(out, c.keyID)
		}
	}
	return out
}

// closeAll tells every open connection the server is going away.
func (g *gorillaWebsockets) closeAll() {
	g.mu.Lock()
	conns := make([]*gorillaConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		_ = c.WriteClose(websocket.CloseGoingAway, "server shutting down")
		_ = c.Close()
	}
}

func (g *gorillaWebsockets) open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// gorillaConn adapts a gorilla connection to transport.WebsocketConn.
type gorillaConn struct {
	ws     *websocket.Conn
	g      *gorillaWebsockets
	keyID  string      // the API key it authenticated with; guarded by g.mu
	expiry *time.Timer // closes the connection when its key expires; guarded by g.mu

	wmu       sync.Mutex // gorilla allows one writer at a time
	closeOnce sync.Once
	// read is when the connection last received a message (unix nanos):
	// a listen session closes a connection that stays silent.
	read atomic.Int64
}

// lastRead returns when the connection last received a message (or was
// accepted).
func (c *gorillaConn) lastRead() time.Time { return time.Unix(0, c.read.Load()) }

var (
	_ transport.WebsocketConn          = (*gorillaConn)(nil)
	_ transport.WebsocketReadLimiter   = (*gorillaConn)(nil)
	_ transport.WebsocketReadDeadliner = (*gorillaConn)(nil)
)

func (c *gorillaConn) NextReader() (int, io.Reader, error) {
	t, r, err := c.ws.NextReader()
	if err == nil {
		c.read.Store(time.Now().UnixNano())
	}
	if err != nil && websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		return t, nil, transport.ErrWebsocketClosed
	}
	return t, r, err
}

func (c *gorillaConn) WriteJSON(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteJSON(v)
}

func (c *gorillaConn) WriteClose(code int, message string) error {
	if len(message) > 123 { // the limit of a close frame's reason
		message = message[:120] + "..."
	}
	return c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, message), time.Now().Add(time.Second))
}

func (c *gorillaConn) Subprotocol() string { return c.ws.Subprotocol() }

func (c *gorillaConn) SetReadLimit(n int64) { c.ws.SetReadLimit(n) }

func (c *gorillaConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

func (c *gorillaConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.g.mu.Lock()
		delete(c.g.conns, c)
		if c.expiry != nil {
			c.expiry.Stop()
		}
		c.g.mu.Unlock()
		err = c.ws.Close()
	})
	return err
}

// liveLimits counts live connections per API key.
type liveLimits struct {
	perKey int
	mu     sync.Mutex
	byKey  map[string]int
}

func (l *liveLimits) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byKey[key] >= l.perKey {
		return false
	}
	l.byKey[key]++
	return true
}

func (l *liveLimits) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byKey[key]--; l.byKey[key] <= 0 {
		delete(l.byKey, key)
	}
}

// liveAuth is how a websocket connection authenticated: kept in its
// context so that every operation on it checks the key again.
type liveAuth struct {
	keyID         string
	authorization string
	actAs         string
}

type liveAuthKey struct{}

// websocketTransport returns the gqlgen websocket transport: it
// authenticates connection_init (or the upgrade request's Authorization
// header), limits connections per key and subscriptions per connection,
// and pings idle connections. Revoking a key closes its connections (see
// New), and recheckLiveKey checks it again on every operation.
func (s *Server) websocketTransport() transport.Websocket {
	return transport.Websocket{
		Implementation:        s.websockets,
		KeepAlivePingInterval: s.cfg.KeepAlive, // graphql-ws: "ka" messages
		PingPongInterval:      s.cfg.KeepAlive, // graphql-transport-ws: ping, and close if no pong
		InitTimeout:           10 * time.Second,
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			slot, _ := ctx.Value(connSlotKey{}).(*connSlot)
			if slot == nil {
				slot = &connSlot{}
			}
			la := liveCredentials(p, slot.header)
			v, err := s.liveViewer(ctx, la)
			if err != nil {
				return reject(ctx, CloseUnauthorized, err)
			}
			if !s.live.acquire(v.KeyID) {
				return reject(ctx, CloseTooManyConnections,
					fmt.Errorf("this API key already has %d live connections, the limit", s.live.perKey))
			}
			la.keyID = v.KeyID
			if slot.conn != nil {
				s.websockets.bind(slot.conn, v.KeyID, v.ExpiresAt)
				// A revocation reported after the check above but before
				// bind did not find this connection: check again, now
				// that any later revocation will.
				if _, err := s.liveViewer(ctx, la); err != nil {
					s.live.release(v.KeyID)
					return reject(ctx, CloseUnauthorized, err)
				}
			}
			ctx = tenant.NewContext(ctx, v)
			ctx = context.WithValue(ctx, liveAuthKey{}, la)
			if conn := slot.conn; conn != nil {
				ctx = graph.WithLiveness(ctx, graph.Liveness{LastRead: conn.lastRead, Close: func() { _ = conn.Close() }})
			}
			return graph.WithConnection(ctx, s.cfg.MaxSubscriptionsPerConnection), nil, nil
		},
		CloseFunc: func(ctx context.Context, _ int) {
			if la, ok := ctx.Value(liveAuthKey{}).(liveAuth); ok {
				s.live.release(la.keyID)
			}
		},
	}
}

// liveCredentials returns the credentials of a websocket connection: the
// connection_init payload's Authorization (and X-Herald-App) win over the
// upgrade request's headers.
func liveCredentials(p transport.InitPayload, upgrade http.Header) liveAuth {
	if authz := p.Authorization(); authz != "" {
		actAs := p.GetString(HeaderApp)
		if actAs == "" {
			actAs = p.GetString(strings.ToLower(HeaderApp))
		}
		return liveAuth{authorization: authz, actAs: actAs}
	}
	return liveAuth{authorization: upgrade.Get("Authorization"), actAs: upgrade.Get(HeaderApp)}
}

// liveViewer authenticates a websocket connection's credentials.
func (s *Server) liveViewer(ctx context.Context, la liveAuth) (tenant.Viewer, error) {
	if la.authorization == "" {
		return tenant.Viewer{}, fault.Unauthenticatedf("missing API key: send {\"Authorization\": \"Bearer <key>\"} in connection_init")
	}
	return s.auth.Authenticate(ctx, la.authorization, la.actAs)
}

// recheckLiveKey is a gqlgen extension that authenticates every operation
// on a websocket connection again, so that a revoked key stops working at
// once even on a connection whose closing raced the operation, or whose
// revocation this process has not been told about yet (the key cache
// expires within seconds).
type recheckLiveKey struct {
	auth *auth.Authenticator
	log  *slog.Logger
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = recheckLiveKey{}

func (recheckLiveKey) ExtensionName() string                   { return "RecheckLiveKey" }
func (recheckLiveKey) Validate(graphql.ExecutableSchema) error { return nil }

func (e recheckLiveKey) MutateOperationContext(ctx context.Context, _ *graphql.OperationContext) *gqlerror.Error {
	la, ok := ctx.Value(liveAuthKey{}).(liveAuth)
	if !ok {
		return nil // HTTP requests are authenticated one by one
	}
	if _, err := e.auth.Authenticate(ctx, la.authorization, la.actAs); err != nil {
		f, ok := fault.As(err)
		if !ok {
			e.log.ErrorContext(ctx, "authenticate websocket operation", "key_id", la.keyID, "err", err)
			f = &fault.Error{Code: fault.Internal, Message: "internal error"}
		}
		return faultError(f)
	}
	return nil
}

// reject ends connection_init with a close code and a short reason.
func reject(ctx context.Context, code int, err error) (context.Context, *transport.InitPayload, error) {
	msg := err.Error()
	if f, ok := fault.As(err); ok {
		msg = f.Message
	}
	if !errors.Is(err, context.Canceled) {
		ctx = transport.WithWebsocketCloseCode(ctx, code)
		ctx = transport.AppendCloseReason(ctx, msg)
	}
	return ctx, nil, errors.New(msg)
}
