package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// LiveConfig configures live feeds. The zero value is usable.
type LiveConfig struct {
	// Heartbeat is how often the client pings the server (default 10s). A
	// connection on which nothing arrives for two heartbeats is dead: the
	// client drops it and reconnects.
	Heartbeat time.Duration
	// MinBackoff and MaxBackoff bound the wait before reconnecting
	// (defaults 500ms and 30s). It doubles after each failed try, with
	// jitter, and starts over once a connection has worked.
	MinBackoff, MaxBackoff time.Duration
	// OnStatus, when set, is told of every change of a feed's connection.
	// It is called from the feed's goroutine: keep it quick.
	OnStatus func(LiveStatus)
	// Dialer opens the websockets; nil: a dialer with a 10-second handshake
	// timeout that honours the HTTP(S)_PROXY environment variables.
	Dialer *websocket.Dialer
}

// LiveState is the state of a live feed's connection.
type LiveState int

// States of a live feed's connection.
const (
	// LiveConnecting: dialling and authenticating (Attempt counts the
	// tries since the feed last worked, from 1).
	LiveConnecting LiveState = iota
	// LiveConnected: subscribed; updates flow.
	LiveConnected
	// LiveDisconnected: the connection failed or dropped (Err says why);
	// the client reconnects after RetryIn.
	LiveDisconnected
)

// String returns "connecting", "connected" or "disconnected".
func (s LiveState) String() string {
	switch s {
	case LiveConnecting:
		return "connecting"
	case LiveConnected:
		return "connected"
	case LiveDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("LiveState(%d)", int(s))
}

// LiveStatus is a change of a live feed's connection.
type LiveStatus struct {
	State   LiveState
	Attempt int
	Err     error
	RetryIn time.Duration
}

// ErrDeadConnection is wrapped by the LiveStatus.Err of a connection that
// missed its heartbeats.
var ErrDeadConnection = errors.New("no heartbeat from the server: connection dead")

// DeliveryFeed narrows SubscribeDeliveries; zero fields do not filter.
type DeliveryFeed struct {
	EndpointID string
	// EventType is an exact type or a pattern such as "order.*".
	EventType string
	Status    DeliveryStatus
}

// SubscribeDeliveries follows every state change of the app's deliveries
// that f selects, calling handle for each, until ctx ends (it then returns
// nil), handle returns an error (returned as is) or the server refuses the
// feed for good (a revoked key, a missing scope: an *Error). It reconnects
// by itself when the connection drops or misses its heartbeats; changes
// that happen while it is disconnected are not replayed (list deliveries to
// catch up).
func (c *Client) SubscribeDeliveries(ctx context.Context, f DeliveryFeed, handle func(DeliveryChange) error) error {
	var status *DeliveryStatus
	if f.Status != "" {
		status = &f.Status
	}
	vars := &__deliveryUpdatedInput{EndpointID: optString(f.EndpointID), EventType: optString(f.EventType), Status: status}
	return subscribe(ctx, c, "deliveryUpdated", deliveryUpdated_Operation, vars, func(r *deliveryUpdatedResponse) error {
		return handle(r.DeliveryUpdated)
	})
}

// SubscribeEndpoints follows changes of the app's endpoints (of one, when
// endpointID is not empty): health, counters, activity. It behaves as
// SubscribeDeliveries does.
func (c *Client) SubscribeEndpoints(ctx context.Context, endpointID string, handle func(EndpointChange) error) error {
	vars := &__endpointUpdatedInput{EndpointID: optString(endpointID)}
	return subscribe(ctx, c, "endpointUpdated", endpointUpdated_Operation, vars, func(r *endpointUpdatedResponse) error {
		return handle(r.EndpointUpdated)
	})
}

// SubscribeEvents follows the app's newly published events (of a type or
// pattern such as "order.*", when eventType is not empty). It behaves as
// SubscribeDeliveries does.
func (c *Client) SubscribeEvents(ctx context.Context, eventType string, handle func(EventPublication) error) error {
	vars := &__eventPublishedInput{EventType: optString(eventType)}
	return subscribe(ctx, c, "eventPublished", eventPublished_Operation, vars, func(r *eventPublishedResponse) error {
		return handle(r.EventPublished)
	})
}

// subscribe runs one subscription operation with reconnection, decoding
// each result into T.
func subscribe[T any](ctx context.Context, c *Client, op, query string, vars any, handle func(*T) error) error {
	payload, err := json.Marshal(map[string]any{"operationName": op, "query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("encode %s: %w", op, err)
	}
	onNext := func(raw json.RawMessage, _ *liveConn) error {
		var r struct {
			Data   *T            `json:"data"`
			Errors gqlerror.List `json:"errors"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return &stopError{fmt.Errorf("decode %s update: %w", op, err)}
		}
		if len(r.Errors) > 0 {
			return fromGQL(r.Errors, 0)
		}
		if r.Data == nil {
			return nil
		}
		if err := handle(r.Data); err != nil {
			return &stopError{err}
		}
		return nil
	}
	return c.live(ctx, payload, onNext)
}

// stopError ends a feed without reconnecting.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }

// liveDefaults returns the live configuration with defaults filled in.
func (c *Client) liveDefaults() LiveConfig {
	lc := c.cfg.Live
	if lc.Heartbeat <= 0 {
		lc.Heartbeat = 10 * time.Second
	}
	if lc.MinBackoff <= 0 {
		lc.MinBackoff = 500 * time.Millisecond
	}
	if lc.MaxBackoff <= 0 {
		lc.MaxBackoff = 30 * time.Second
	}
	if lc.MaxBackoff < lc.MinBackoff {
		lc.MaxBackoff = lc.MinBackoff
	}
	if lc.Dialer == nil {
		lc.Dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment}
	}
	return lc
}

// backoff returns the wait before try attempt+1: MinBackoff doubled
// attempt-1 times, capped at MaxBackoff, between half and all of it.
func backoff(lc LiveConfig, attempt int) time.Duration {
	d := lc.MinBackoff
	for i := 1; i < attempt && d < lc.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, lc.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// live runs the subscription whose subscribe payload is given until ctx
// ends or it fails for good, reconnecting in between. onNext gets each
// result with the connection it came on, on which it may run other
// operations (liveConn.do) from another goroutine.
func (c *Client) live(ctx context.Context, payload json.RawMessage, onNext func(json.RawMessage, *liveConn) error) error {
	lc := c.liveDefaults()
	report := func(s LiveStatus) {
		if lc.OnStatus != nil {
			lc.OnStatus(s)
		}
	}
	attempt := 0
	for {
		attempt++
		report(LiveStatus{State: LiveConnecting, Attempt: attempt})
		worked, err := c.liveOnce(ctx, lc, payload, onNext, report)
		if ctx.Err() != nil {
			return nil
		}
		if s, ok := errors.AsType[*stopError](err); ok {
			return s.err
		}
		if e, ok := errors.AsType[*Error](err); ok && e.Reason != "SUBSCRIBER_LAGGED" {
			return e
		}
		if worked {
			attempt = 1
		}
		wait := backoff(lc, attempt)
		report(LiveStatus{State: LiveDisconnected, Attempt: attempt, Err: err, RetryIn: wait})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// wsMessage is a graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Close codes after which reconnecting cannot help.
var terminalClose = map[int]Code{
	4400: CodeBadUserInput,    // bad request
	4401: CodeUnauthenticated, // no or revoked key
	4403: CodeForbidden,
	4406: CodeBadUserInput, // subprotocol not acceptable
}

// liveOnce connects, subscribes and reads until the connection ends. worked
// reports whether the connection got as far as delivering updates or
// staying up a while, so the backoff starts over.
func (c *Client) liveOnce(ctx context.Context, lc LiveConfig, payload json.RawMessage, onNext func(json.RawMessage, *liveConn) error, report func(LiveStatus)) (worked bool, err error) {
	u := *c.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path += "/graphql"
	d := *lc.Dialer
	d.Subprotocols = []string{"graphql-transport-ws"}
	conn, resp, err := d.DialContext(ctx, u.String(), c.headers)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			var gr struct {
				Errors gqlerror.List `json:"errors"`
			}
			if json.Unmarshal(body, &gr) == nil && hasCode(gr.Errors) {
				e := fromGQL(gr.Errors, resp.StatusCode)
				if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
					// Worth another try: keep the message, not the *Error.
					return false, &NetError{URL: c.base.String(), Op: "websocket", Err: errors.New(e.Error())}
				}
				return false, e
			}
			return false, &NetError{URL: c.base.String(), Op: "websocket", Err: fmt.Errorf("upgrade answered HTTP %d", resp.StatusCode)}
		}
		return false, &NetError{URL: c.base.String(), Op: "websocket", Err: err}
	}
	defer conn.Close()
	conn.SetReadLimit(32 << 20)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var wmu sync.Mutex
	write := func(m wsMessage) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(lc.Heartbeat))
		return conn.WriteJSON(m)
	}
	init := map[string]string{"Authorization": "Bearer " + c.cfg.APIKey}
	if c.cfg.App != "" {
		init["X-Herald-App"] = c.cfg.App
	}
	raw, _ := json.Marshal(init)
	if err := write(wsMessage{Type: "connection_init", Payload: raw}); err != nil {
		return false, &NetError{URL: c.base.String(), Op: "connection_init", Err: err}
	}
	dead := 2 * lc.Heartbeat
	read := func() (wsMessage, error) {
		_ = conn.SetReadDeadline(time.Now().Add(dead))
		var m wsMessage
		_, data, err := conn.ReadMessage()
		if err != nil {
			if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
				if code, ok := terminalClose[ce.Code]; ok {
					return m, &Error{Code: code, Message: ce.Text}
				}
				return m, fmt.Errorf("server closed the connection (%d %s)", ce.Code, ce.Text)
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				return m, fmt.Errorf("%w (nothing for %s)", ErrDeadConnection, dead)
			}
			return m, err
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return m, fmt.Errorf("bad message from the server: %w", err)
		}
		return m, nil
	}
	for acked := false; !acked; {
		m, err := read()
		if err != nil {
			return false, err
		}
		switch m.Type {
		case "connection_ack":
			acked = true
		case "ping":
			if err := write(wsMessage{Type: "pong"}); err != nil {
				return false, err
			}
		}
	}
	if err := write(wsMessage{ID: "1", Type: "subscribe", Payload: payload}); err != nil {
		return false, err
	}
	ops := &liveConn{write: write, done: make(chan struct{}), pending: make(map[string]chan wsMessage)}
	defer close(ops.done)
	since := time.Now()
	report(LiveStatus{State: LiveConnected})

	hbCtx, hbStop := context.WithCancel(ctx)
	defer hbStop()
	go func() {
		t := time.NewTicker(lc.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				if write(wsMessage{Type: "ping"}) != nil {
					return
				}
			}
		}
	}()
	worked = false
	for {
		m, err := read()
		if !worked && time.Since(since) >= lc.MaxBackoff {
			worked = true
		}
		if err != nil {
			return worked, err
		}
		if m.ID != "" && m.ID != "1" {
			ops.route(m) // the result of another operation
			continue
		}
		switch m.Type {
		case "ping":
			if err := write(wsMessage{Type: "pong"}); err != nil {
				return worked, err
			}
		case "next":
			worked = true
			if err := onNext(m.Payload, ops); err != nil {
				return worked, err
			}
		case "error":
			var errs gqlerror.List
			if json.Unmarshal(m.Payload, &errs) != nil || len(errs) == 0 {
				errs = gqlerror.List{{Message: string(m.Payload)}}
			}
			return worked, fromGQL(errs, 0)
		case "complete":
			return worked, errors.New("the server ended the feed")
		}
	}
}

// liveConn is one connection of a live feed, on which the feed's handler
// runs other operations: a listener's reports.
type liveConn struct {
	write func(wsMessage) error
	// done is closed once the connection has ended.
	done chan struct{}

	mu      sync.Mutex
	seq     int
	pending map[string]chan wsMessage
}

// ended reports whether the connection has ended.
func (lc *liveConn) ended() bool {
	select {
	case <-lc.done:
		return true
	default:
		return false
	}
}

// route hands the result of an operation to the do that waits for it.
func (lc *liveConn) route(m wsMessage) {
	if m.Type != "next" && m.Type != "error" {
		return // its complete: do is done with it
	}
	lc.mu.Lock()
	c := lc.pending[m.ID]
	delete(lc.pending, m.ID)
	lc.mu.Unlock()
	if c != nil {
		c <- m
	}
}

// errConnectionEnded is returned by do when the connection ends before the
// operation's result arrives.
var errConnectionEnded = errors.New("the connection ended before the server answered")

// do runs an operation (a query or mutation, its subscribe payload) on the
// connection and returns its data, waiting up to timeout.
func (lc *liveConn) do(ctx context.Context, payload json.RawMessage, timeout time.Duration) (json.RawMessage, error) {
	c := make(chan wsMessage, 1)
	lc.mu.Lock()
	lc.seq++
	id := fmt.Sprintf("op%d", lc.seq)
	lc.pending[id] = c
	lc.mu.Unlock()
	defer func() {
		lc.mu.Lock()
		delete(lc.pending, id)
		lc.mu.Unlock()
	}()
	if lc.ended() {
		return nil, errConnectionEnded
	}
	if err := lc.write(wsMessage{ID: id, Type: "subscribe", Payload: payload}); err != nil {
		return nil, fmt.Errorf("send operation: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-c:
		if m.Type == "error" {
			var errs gqlerror.List
			if json.Unmarshal(m.Payload, &errs) != nil || len(errs) == 0 {
				errs = gqlerror.List{{Message: string(m.Payload)}}
			}
			return nil, fromGQL(errs, 0)
		}
		var r struct {
			Data   json.RawMessage `json:"data"`
			Errors gqlerror.List   `json:"errors"`
		}
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			return nil, fmt.Errorf("decode the answer: %w", err)
		}
		if len(r.Errors) > 0 {
			return nil, fromGQL(r.Errors, 0)
		}
		return r.Data, nil
	case <-lc.done:
		return nil, errConnectionEnded
	case <-t.C:
		return nil, fmt.Errorf("no answer within %s", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
