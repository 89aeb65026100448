package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// client calls Herald's GraphQL API over HTTP with keep-alive connections,
// spreading calls over the replicas round robin.
type client struct {
	urls  []string
	next  atomic.Uint64
	token string
	hc    *http.Client
}

func newClient(baseURLs []string, token string) *client {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	c := &client{token: token, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
	for _, u := range baseURLs {
		c.urls = append(c.urls, u+"/graphql")
	}
	return c
}

type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// do runs an operation and decodes its data into out (if not nil).
func (c *client) do(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	url := c.urls[int(c.next.Add(1)%uint64(len(c.urls)))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	if len(env.Errors) > 0 {
		return fmt.Errorf("graphql: %s (%v)", env.Errors[0].Message, env.Errors[0].Extensions["code"])
	}
	if out != nil {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}

// createEndpoint creates an endpoint and returns its ID.
func (c *client) createEndpoint(ctx context.Context, name, url string, eventTypes []string, retry map[string]any) (string, error) {
	in := map[string]any{}
	if retry != nil {
		in["retryPolicy"] = retry
	}
	return c.createEndpointWith(ctx, name, url, eventTypes, in)
}

// createEndpointWith creates an endpoint with more of CreateEndpointInput
// (filter, rateLimit, ordering, ...) and returns its ID.
func (c *client) createEndpointWith(ctx context.Context, name, url string, eventTypes []string, more map[string]any) (string, error) {
	in := map[string]any{"name": name, "url": url, "eventTypes": eventTypes, "allowDuplicate": true}
	if url == "" {
		delete(in, "url") // a broker endpoint: its configuration is in more
	}
	for k, v := range more {
		in[k] = v
	}
	var out struct {
		CreateEndpoint struct{ Endpoint struct{ ID string } }
	}
	err := c.do(ctx, `mutation($in: CreateEndpointInput!) { createEndpoint(input: $in) { endpoint { id } } }`, map[string]any{"in": in}, &out)
	return out.CreateEndpoint.Endpoint.ID, err
}

// newApp creates an app with its own admin key and returns a client for it.
func (c *client) newApp(ctx context.Context, name string) (*client, error) {
	var app struct{ CreateApp struct{ ID string } }
	if err := c.do(ctx, `mutation($n: String!) { createApp(input: {name: $n, acceptUnknownEventTypes: true}) { id } }`, map[string]any{"n": name}, &app); err != nil {
		return nil, err
	}
	var key struct{ CreateAPIKey struct{ Token string } }
	// input.appId, deprecated, is what binaries before the top-level
	// appId argument understand too (--against runs older ones).
	if err := c.do(ctx, `mutation($a: ID!) { createAPIKey(input: {appId: $a, name: "bench", admin: true}) { token } }`,
		map[string]any{"a": app.CreateApp.ID}, &key); err != nil {
		return nil, err
	}
	return &client{urls: c.urls, token: key.CreateAPIKey.Token, hc: c.hc}, nil
}

// ensureEventType adds an event type to the default app unless its
// catalog has it already (servers from before shared catalogs seeded
// order.created in every app; today's have only Herald's system types
// until someone adds more).
func (c *client) ensureEventType(ctx context.Context, name string) error {
	err := c.do(ctx, `mutation($n: String!) { createEventType(input: {name: $n}) { id } }`, map[string]any{"n": name}, nil)
	if err != nil && strings.Contains(err.Error(), "(CONFLICT)") {
		return nil
	}
	return err
}

// allowUnknownTypes lets the default app publish bench event types.
func (c *client) allowUnknownTypes(ctx context.Context) error {
	var v struct {
		Viewer struct{ App struct{ ID string } }
	}
	if err := c.do(ctx, `{ viewer { app { id } } }`, nil, &v); err != nil {
		return err
	}
	return c.do(ctx, `mutation($id: ID!) { updateApp(id: $id, input: {acceptUnknownEventTypes: true}) { id } }`, map[string]any{"id": v.Viewer.App.ID}, nil)
}

// event returns a publish input whose payload carries its publish time.
func event(typ string, n int) map[string]any {
	return map[string]any{"eventType": typ, "payload": map[string]any{
		"sentAt":   time.Now().UnixNano(),
		"orderId":  fmt.Sprintf("ord_%08d", n),
		"customer": map[string]any{"id": "cus_4711", "email": "ada@example.com", "name": "Ada Lovelace"},
		"currency": "EUR",
		"total":    4990,
		"items":    []map[string]any{{"sku": "TSHIRT-M", "quantity": 2, "price": 2495}},
	}}
}

const publishBatch = `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`
const publishOne = `mutation($in: PublishEventInput!) { publishEvent(input: $in) { id } }`

// successCount sums the successful attempts of the endpoints, asking for
// at most 100 at a time (the most one nodes query takes).
func (c *client) successCount(ctx context.Context, ids []string) (int, error) {
	n := 0
	for chunk := range slices.Chunk(ids, 100) {
		var out struct {
			Nodes []struct{ SuccessCount int }
		}
		if err := c.do(ctx, `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Endpoint { successCount } } }`, map[string]any{"ids": chunk}, &out); err != nil {
			return 0, err
		}
		for _, e := range out.Nodes {
			n += e.SuccessCount
		}
	}
	return n, nil
}

// allowEndpoints raises the default app's endpoint limit to n. A server
// that has no such limit (an older binary) is left as it is.
func (c *client) allowEndpoints(ctx context.Context, n int) error {
	var v struct {
		Viewer struct{ App struct{ ID string } }
	}
	if err := c.do(ctx, `{ viewer { app { id } } }`, nil, &v); err != nil {
		return err
	}
	err := c.do(ctx, `mutation($id: ID!, $n: Int) { updateApp(id: $id, input: {limits: [{name: ENDPOINTS, limit: $n}]}) { id } }`,
		map[string]any{"id": v.Viewer.App.ID, "n": n}, nil)
	if err != nil && strings.Contains(err.Error(), `"limits" is not defined`) {
		return nil
	}
	return err
}

// wsSubscriber is a graphql-transport-ws client holding one subscription.
type wsSubscriber struct {
	conn *websocket.Conn
}

func subscribeWS(baseURL, token, query string, vars map[string]any) (*wsSubscriber, error) {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(baseURL, "http")+"/graphql", nil)
	if err != nil {
		return nil, err
	}
	if err := conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}}); err != nil {
		conn.Close()
		return nil, err
	}
	var ack struct{ Type string }
	if err := conn.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		conn.Close()
		return nil, fmt.Errorf("no connection_ack: %v %q", err, ack.Type)
	}
	if err := conn.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}}); err != nil {
		conn.Close()
		return nil, err
	}
	return &wsSubscriber{conn: conn}, nil
}

// next returns the next "next" payload's data, answering pings.
func (s *wsSubscriber) next() (json.RawMessage, error) {
	for {
		var m struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := s.conn.ReadJSON(&m); err != nil {
			return nil, err
		}
		switch m.Type {
		case "ping":
			_ = s.conn.WriteJSON(map[string]any{"type": "pong"})
		case "next":
			var p struct {
				Data   json.RawMessage `json:"data"`
				Errors []gqlError      `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				return nil, err
			}
			if len(p.Errors) > 0 {
				return nil, fmt.Errorf("subscription error: %s", p.Errors[0].Message)
			}
			return p.Data, nil
		case "error":
			return nil, fmt.Errorf("subscription error: %s", m.Payload)
		case "complete":
			return nil, io.EOF
		}
	}
}

func (s *wsSubscriber) close() { _ = s.conn.Close() }
