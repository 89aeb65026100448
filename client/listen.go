package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"
)

// CreateListener opens a listener: a temporary endpoint of the app whose
// deliveries go to a Listen session instead of HTTP. It returns the
// listener with its signing secret (whsec_…), which verifies what the
// session forwards.
func (c *Client) CreateListener(ctx context.Context, in CreateListenerInput) (ep *Endpoint, secret string, err error) {
	r, err := createListener(ctx, c.gql, &in)
	if err != nil {
		return nil, "", err
	}
	return &r.CreateListener.Endpoint, r.CreateListener.Secret, nil
}

// RevealEndpointSecret returns an endpoint's current signing secret.
func (c *Client) RevealEndpointSecret(ctx context.Context, id string) (string, error) {
	r, err := revealEndpointSecret(ctx, c.gql, id)
	if err != nil {
		return "", err
	}
	return r.RevealEndpointSecret.Secret, nil
}

// ListenerDelivery is a delivery pushed to a listener's session: the
// request to forward, as Herald signed it.
type ListenerDelivery struct {
	DeliveryID string
	EventID    string
	EventType  string
	// Attempt is the attempt's number (1 is the first).
	Attempt int
	Body    []byte
	// Header holds Herald's headers (webhook-id, webhook-timestamp,
	// webhook-signature, X-Herald-*), Content-Type and User-Agent.
	Header http.Header
	// Timeout bounds the local request: Herald waits for its report only
	// a little longer.
	Timeout time.Duration

	token string
}

// ListenerResult is the local answer to a forwarded delivery.
type ListenerResult struct {
	// Status is the HTTP status (0: no answer; Err says why).
	Status int
	Header http.Header
	Body   []byte
	// Duration is how long the local request took.
	Duration time.Duration
	Err      error
}

// ListenHandler is what a Listen session does with what it receives.
type ListenHandler struct {
	// Connected, if set, is told each time a session begins (after every
	// reconnection) how many deliveries wait: the session catches up on
	// them first, in the order they fall due.
	Connected func(waiting int)
	// Forward forwards a delivery and returns the local answer, which is
	// reported to Herald and recorded as the attempt's outcome. Calls are
	// one at a time, in the order the deliveries were pushed. Required.
	Forward func(ctx context.Context, d *ListenerDelivery) ListenerResult
	// Reported, if set, is told how each report went: nil, or why Herald
	// did not take it (the connection ended first, or the attempt had
	// ended: the delivery is pushed again).
	Reported func(d *ListenerDelivery, r ListenerResult, err error)
}

// reportTimeout bounds the wait for the answer to a report.
const reportTimeout = 10 * time.Second

// Listen holds a listener (see CreateListener) and forwards its deliveries
// through h until ctx ends (it then returns nil) or the server ends the
// session for good: the listener was deleted, disabled, or taken over by
// another session (an *Error). It reconnects by itself as the live feeds
// do (Config.Live), and a delivery pushed on a connection that ended before
// it was forwarded is skipped: Herald pushes it again on the next one.
// Deliveries wait for the listener while it is disconnected.
func (c *Client) Listen(ctx context.Context, listenerID string, h ListenHandler) error {
	if h.Forward == nil {
		return fmt.Errorf("listen: ListenHandler.Forward is required")
	}
	payload, err := json.Marshal(map[string]any{"operationName": "listen", "query": listen_Operation, "variables": map[string]any{"listenerId": listenerID}})
	if err != nil {
		return fmt.Errorf("encode listen: %w", err)
	}
	type item struct {
		d    *ListenerDelivery
		conn *liveConn
	}
	queue := make(chan item, 64)
	workerDone := make(chan struct{})
	wctx, stopWorker := context.WithCancel(ctx)
	defer func() {
		stopWorker()
		<-workerDone
	}()
	// One worker forwards, across connections, so that a delivery pushed
	// again after a reconnection never runs beside its first push.
	go func() {
		defer close(workerDone)
		for {
			var it item
			select {
			case <-wctx.Done():
				return
			case it = <-queue:
			}
			if it.conn.ended() {
				continue // pushed again on the next connection
			}
			res := h.Forward(wctx, it.d)
			err := c.report(wctx, it.conn, listenerID, it.d, res)
			if h.Reported != nil {
				h.Reported(it.d, res, err)
			}
		}
	}()
	return c.live(ctx, payload, func(raw json.RawMessage, conn *liveConn) error {
		var r struct {
			Data   *listenResponse `json:"data"`
			Errors gqlerror.List   `json:"errors"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return &stopError{fmt.Errorf("decode listen message: %w", err)}
		}
		if len(r.Errors) > 0 {
			return fromGQL(r.Errors, 0)
		}
		if r.Data == nil {
			return nil
		}
		m := r.Data.Listen
		switch {
		case m.Kind == ListenerMessageKindConnected:
			if h.Connected != nil {
				h.Connected(derefInt(m.Waiting))
			}
		case m.Kind == ListenerMessageKindDelivery && m.Delivery != nil:
			p := m.Delivery
			d := &ListenerDelivery{DeliveryID: p.DeliveryId, EventID: p.EventId, EventType: p.EventType, Attempt: p.Attempt,
				Body: []byte(p.Body), Header: http.Header{}, Timeout: time.Duration(p.TimeoutMs) * time.Millisecond, token: p.Token}
			for _, x := range p.Headers {
				d.Header.Set(x.Name, x.Value)
			}
			select {
			case queue <- item{d: d, conn: conn}:
			case <-ctx.Done():
			}
		}
		return nil
	})
}

// report sends a forwarded delivery's local answer on the connection it
// was pushed on.
func (c *Client) report(ctx context.Context, conn *liveConn, listenerID string, d *ListenerDelivery, r ListenerResult) error {
	in := ListenerReportInput{ListenerId: listenerID, DeliveryId: d.DeliveryID, Token: d.token}
	ms := int(r.Duration / time.Millisecond)
	in.DurationMs = &ms
	if r.Status != 0 {
		in.Status = &r.Status
		body := string(r.Body)
		in.Body = &body
		for name, vs := range r.Header {
			for _, v := range vs {
				in.Headers = append(in.Headers, HeaderInput{Name: name, Value: v})
			}
		}
	} else {
		msg := "no answer"
		if r.Err != nil {
			msg = r.Err.Error()
		}
		in.Error = &msg
	}
	payload, err := json.Marshal(map[string]any{"operationName": "reportListenerDelivery", "query": reportListenerDelivery_Operation,
		"variables": map[string]any{"input": in}})
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = conn.do(ctx, payload, reportTimeout)
	return err
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
