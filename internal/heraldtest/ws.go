package heraldtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// GraphQL websocket subprotocols.
const (
	// TransportWS is graphql-transport-ws, the graphql-ws library's protocol.
	TransportWS = "graphql-transport-ws"
	// LegacyWS is graphql-ws, the subscriptions-transport-ws protocol.
	LegacyWS = "graphql-ws"
)

// WSMessage is a protocol message.
type WSMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// WS is a GraphQL websocket client speaking either subprotocol.
type WS struct {
	Proto string
	conn  *websocket.Conn
	in    chan WSMessage

	wmu       sync.Mutex
	pending   map[string][]WSMessage // messages read for other operations
	mu        sync.Mutex
	closeCode int
	closeText string
	closed    chan struct{}
}

// DialWS opens a websocket to /graphql with the subprotocol and extra
// request headers.
func (s *Server) DialWS(proto string, header http.Header) (*WS, *http.Response, error) {
	return DialWS(s.URL, proto, header)
}

// DialWS opens a websocket to baseURL's /graphql (a herald process's
// URL, say) with the subprotocol and extra request headers.
func DialWS(baseURL, proto string, header http.Header) (*WS, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 5 * time.Second}
	url := "ws" + strings.TrimPrefix(baseURL, "http") + "/graphql"
	conn, resp, err := d.Dial(url, header)
	if err != nil {
		return nil, resp, err
	}
	c := &WS{Proto: proto, conn: conn, in: make(chan WSMessage, 1024), closed: make(chan struct{}), pending: map[string][]WSMessage{}}
	go c.read()
	return c, resp, nil
}

func (c *WS) read() {
	defer close(c.closed)
	for {
		var m WSMessage
		err := c.conn.ReadJSON(&m)
		if err != nil {
			var ce *websocket.CloseError
			c.mu.Lock()
			if errors.As(err, &ce) {
				c.closeCode, c.closeText = ce.Code, ce.Text
			} else {
				c.closeCode = -1
			}
			c.mu.Unlock()
			return
		}
		if m.Type == "ping" && c.Proto == TransportWS {
			c.send(WSMessage{Type: "pong"})
		}
		select {
		case c.in <- m:
		default: // a test that stopped reading; drop
		}
	}
}

func (c *WS) send(m WSMessage) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteJSON(m)
}

// Init sends connection_init with payload and waits for connection_ack. It
// returns an error if the server refuses (see CloseCode).
func (c *WS) Init(payload map[string]any) error {
	raw, _ := json.Marshal(payload)
	if err := c.send(WSMessage{Type: "connection_init", Payload: raw}); err != nil {
		return err
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-c.in:
			switch m.Type {
			case "connection_ack":
				return nil
			case "connection_error":
				return fmt.Errorf("connection_error: %s", m.Payload)
			}
		case <-c.closed:
			code, text := c.CloseCode()
			return fmt.Errorf("closed %d %q before connection_ack", code, text)
		case <-deadline:
			return errors.New("no connection_ack within 5s")
		}
	}
}

// Subscribe starts an operation with the given id.
func (c *WS) Subscribe(id, query string, vars map[string]any) error {
	raw, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	typ := "subscribe"
	if c.Proto == LegacyWS {
		typ = "start"
	}
	return c.send(WSMessage{ID: id, Type: typ, Payload: raw})
}

// Stop ends the operation with the given id.
func (c *WS) Stop(id string) error {
	typ := "complete"
	if c.Proto == LegacyWS {
		typ = "stop"
	}
	return c.send(WSMessage{ID: id, Type: typ})
}

// Result is what an operation produced: data, errors, or its end.
type Result struct {
	Data     json.RawMessage
	Errors   []Error
	Complete bool
}

// Next waits for the next result of operation id. Keep-alives are
// skipped; results of other operations are kept for their own Next calls.
// Next is not safe for concurrent use.
func (c *WS) Next(t testing.TB, id string, timeout time.Duration) Result {
	t.Helper()
	deadline := time.After(timeout)
	for {
		m, ok := c.take(id)
		if !ok {
			select {
			case m = <-c.in:
			case <-c.closed:
				code, text := c.CloseCode()
				t.Fatalf("connection closed (%d %q) while waiting for operation %s", code, text, id)
			case <-deadline:
				t.Fatalf("no message for operation %s within %s", id, timeout)
			}
			if m.ID != id {
				if m.ID != "" {
					c.pending[m.ID] = append(c.pending[m.ID], m)
				}
				continue
			}
		}
		switch m.Type {
		case "next", "data":
			var p struct {
				Data   json.RawMessage `json:"data"`
				Errors []Error         `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				t.Fatalf("bad %s payload: %s", m.Type, m.Payload)
			}
			return Result{Data: p.Data, Errors: p.Errors}
		case "error":
			var errs []Error
			if err := json.Unmarshal(m.Payload, &errs); err != nil {
				var one Error
				_ = json.Unmarshal(m.Payload, &one)
				errs = []Error{one}
			}
			return Result{Errors: errs}
		case "complete":
			return Result{Complete: true}
		}
	}
}

// take returns the oldest kept message of operation id.
func (c *WS) take(id string) (WSMessage, bool) {
	q := c.pending[id]
	if len(q) == 0 {
		return WSMessage{}, false
	}
	c.pending[id] = q[1:]
	return q[0], true
}

// Messages returns the channel of every message received (for keep-alive
// tests).
func (c *WS) Messages() <-chan WSMessage { return c.in }

// WaitClosed waits until the server closes the connection and returns the
// close code and reason.
func (c *WS) WaitClosed(timeout time.Duration) (int, string, bool) {
	select {
	case <-c.closed:
		code, text := c.CloseCode()
		return code, text, true
	case <-time.After(timeout):
		return 0, "", false
	}
}

// CloseCode returns the code and reason the server closed with (0 if still
// open, -1 if the connection broke without a close frame).
func (c *WS) CloseCode() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode, c.closeText
}

// Close closes the connection abruptly (no close handshake), as a vanishing
// client would.
func (c *WS) Close() { _ = c.conn.Close() }
