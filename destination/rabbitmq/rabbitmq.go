// Package rabbitmq is Herald's RabbitMQ destination: each delivery is a
// persistent message published to an exchange with a routing key computed
// from the event's type, mandatory (a message no queue takes is a
// failure, not a silent drop) and confirmed by the broker (publisher
// confirms): an attempt succeeds only once the broker has taken
// responsibility for the message. Connections go through the destination
// policy and are shared by every endpoint on the same broker with the same
// credentials, with one channel per exchange.
package rabbitmq

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/heraldhq/herald/destination"
)

// Type is the RabbitMQ destination type.
const Type destination.Type = "RABBITMQ"

// Config is a RabbitMQ endpoint's configuration.
type Config struct {
	// URL is the broker's amqp:// or amqps:// URL with its virtual host,
	// without credentials.
	URL      string `json:"url"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Exchange receives the messages ("": the default exchange, which
	// routes to the queue named by the routing key).
	Exchange string `json:"exchange,omitempty"`
	// RoutingKey is a template over the event type (default
	// "{eventType}").
	RoutingKey destination.Template `json:"routingKey,omitempty"`
}

// Spec declares the RabbitMQ destination type.
func Spec() *destination.Spec {
	return &destination.Spec{
		Type:    Type,
		Name:    "RabbitMQ",
		Field:   "rabbitmq",
		Summary: "Publishes each event to a RabbitMQ exchange as a persistent message, confirmed by the broker.",
		Fields: []destination.Field{
			{Name: "url", Label: "Broker URL", Kind: destination.String, Required: true, Placeholder: "amqps://rabbit.example.com:5671/production",
				Help: "amqp:// or amqps:// (TLS), with the virtual host as the path; without credentials."},
			{Name: "username", Label: "Username", Kind: destination.String, Help: "Default: guest."},
			{Name: "password", Label: "Password", Kind: destination.String, Secret: true},
			{Name: "exchange", Label: "Exchange", Kind: destination.String, Placeholder: "webhooks",
				Help: "The exchange that receives the messages; empty for the default exchange, which routes to the queue named by the routing key. It must exist."},
			{Name: "routingKey", Label: "Routing key", Kind: destination.String, Default: destination.TemplateEventType, Placeholder: "orders.{eventType}",
				Help: "{eventType} is replaced by the event's type."},
		},
		Check: check,
		Open:  func(env destination.Env) (destination.Driver, error) { return newDriver(env), nil },
	}
}

// check validates a configuration at save.
func check(raw json.RawMessage, p destination.Policy) (destination.Checked, error) {
	c, err := destination.Decode[Config](raw)
	if err != nil {
		return destination.Checked{}, err
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return destination.Checked{}, destination.Invalid("url", "is not a valid URL: %v", err)
	case u.Scheme != "amqp" && u.Scheme != "amqps":
		return destination.Checked{}, destination.Invalid("url", "must start with amqp:// or amqps://, got %q", u.Scheme+"://")
	case u.User != nil:
		return destination.Checked{}, destination.Invalid("url", "contains credentials; remove them and set username and password instead")
	case u.RawQuery != "" || u.Fragment != "":
		return destination.Checked{}, destination.Invalid("url", "must not have a query or fragment")
	case strings.Count(strings.TrimPrefix(u.Path, "/"), "/") > 0:
		return destination.Checked{}, destination.Invalid("url", "has path %q; the path is the virtual host, a single segment (encode a / in its name as %%2F)", u.Path)
	}
	port := uint16(5672)
	if u.Scheme == "amqps" {
		port = 5671
	}
	host, port, ok := destination.SplitHostPort(u.Host, port)
	if !ok {
		return destination.Checked{}, destination.Invalid("url", "has no valid host and port")
	}
	if err := p.CheckHost(host, port); err != nil {
		var he *destination.HostError
		if errors.As(err, &he) {
			return destination.Checked{}, destination.Invalid("url", "%s", he.Error())
		}
		return destination.Checked{}, destination.Invalid("url", "%v", err)
	}
	if c.RoutingKey == "" {
		c.RoutingKey = destination.TemplateEventType
	}
	if msg := destination.CheckTemplate(string(c.RoutingKey)); msg != "" {
		return destination.Checked{}, destination.Invalid("routingKey", "%s", msg)
	}
	if len(c.RoutingKey) > 255 || len(c.Exchange) > 255 {
		return destination.Checked{}, destination.Invalid("exchange", "and routing key are at most 255 bytes")
	}
	stored, err := destination.Encode(c)
	if err != nil {
		return destination.Checked{}, err
	}
	return destination.Checked{Config: stored, Address: address(u, c.Exchange)}, nil
}

// address describes where an endpoint publishes, without credentials.
func address(u *url.URL, exchange string) string {
	a := u.Scheme + "://" + u.Host + u.Path
	if exchange != "" {
		a += "?exchange=" + url.QueryEscape(exchange)
	}
	return a
}

// driver publishes to RabbitMQ over pooled connections.
type driver struct {
	env  destination.Env
	pool *destination.Pool[*conn]
}

func newDriver(env destination.Env) *driver {
	return &driver{env: env, pool: destination.NewPool(env.IdleTimeout, func(c *conn) error { return c.c.Close() })}
}

func (d *driver) Close() error { return d.pool.Close() }

// Prepare parses an endpoint's configuration.
func (d *driver) Prepare(ep *destination.Endpoint) (destination.Target, error) {
	c, err := destination.Decode[Config](ep.Config)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	dial := *u
	if c.Username != "" || c.Password != "" {
		user := c.Username
		if user == "" {
			user = "guest"
		}
		dial.User = url.UserPassword(user, c.Password)
	}
	t := &target{d: d, dialURL: dial.String(), cfg: c, timeout: ep.Timeout}
	t.info = destination.Info{Address: address(u, c.Exchange), System: "rabbitmq", Destination: c.Exchange, Host: u.Hostname()}
	if t.info.Destination == "" {
		t.info.Destination = "(default exchange)"
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		t.info.Port = p
	} else if u.Scheme == "amqps" {
		t.info.Port = 5671
	} else {
		t.info.Port = 5672
	}
	return t, nil
}

type target struct {
	d       *driver
	dialURL string // with credentials: the pool's key
	cfg     Config
	timeout time.Duration
	info    destination.Info
}

func (t *target) Info() destination.Info { return t.info }

// Send publishes one message and waits for the broker's confirmation.
func (t *target) Send(ctx context.Context, m *destination.Message) *destination.Result {
	started := t.d.env.Now()
	key := t.cfg.RoutingKey.Expand(m.EventType)
	r := &destination.Result{Started: started, RequestURL: t.info.Address + sep(t.info.Address) + "routingKey=" + url.QueryEscape(key)}
	hs := m.BrokerHeaders(started)
	r.RequestHeaders = hs
	finish := func(o destination.Outcome, msg string) *destination.Result {
		return destination.Finish(ctx, r, t.d.env.Now(), o, msg)
	}
	actx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	c, release, err := t.d.pool.Acquire(actx, t.dialURL, func(ctx context.Context) (*conn, error) {
		return destination.OpenContext(ctx, func() (*conn, error) { return t.d.dial(t.dialURL, t.timeout) }, func(c *conn) { c.c.Close() })
	})
	if err != nil {
		o, msg := classify(err, t.timeout)
		return finish(o, msg)
	}
	ch, err := c.channel(t.cfg.Exchange)
	if err != nil {
		release(c.c.IsClosed())
		o, msg := classify(err, t.timeout)
		return finish(o, msg)
	}
	table := make(amqp.Table, len(hs))
	for _, h := range hs {
		table[h.Name] = h.Value
	}
	pub := amqp.Publishing{
		Headers: table, ContentType: "application/json", DeliveryMode: amqp.Persistent,
		MessageId: m.ID, Timestamp: started, Type: m.EventType, AppId: "herald", Body: m.Body,
	}
	returned, err := ch.publish(actx, t.cfg.Exchange, key, m.DeliveryID, pub)
	if err != nil {
		broken := c.c.IsClosed()
		release(broken)
		o, msg := classify(err, t.timeout)
		return finish(o, msg)
	}
	release(false)
	if returned != nil {
		return finish(destination.Retryable, fmt.Sprintf("unroutable: the broker returned the message (%d %s): no queue is bound to exchange %q with routing key %q",
			returned.ReplyCode, returned.ReplyText, t.cfg.Exchange, key))
	}
	r.ResponseBody = fmt.Sprintf("confirmed by the broker: exchange %q, routing key %q", t.cfg.Exchange, key)
	return finish(destination.Delivered, "")
}

func sep(a string) string {
	if strings.Contains(a, "?") {
		return "&"
	}
	return "?"
}

// dial opens a connection through the destination policy, with the
// handshake bounded by timeout.
func (d *driver) dial(rawURL string, timeout time.Duration) (*conn, error) {
	dialer := d.env.Dialer(timeout)
	c, err := amqp.DialConfig(rawURL, amqp.Config{
		Heartbeat:       10 * time.Second,
		Locale:          "en_US",
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		Properties:      amqp.Table{"product": "Herald", "connection_name": "herald"},
		Dial: func(network, addr string) (net.Conn, error) {
			nc, err := dialer.Dial(network, addr)
			if err != nil {
				return nil, err
			}
			// The handshake's deadline; the client clears it once open.
			if err := nc.SetDeadline(time.Now().Add(timeout)); err != nil {
				nc.Close()
				return nil, err
			}
			return nc, nil
		},
	})
	if err != nil {
		return nil, err
	}
	cc := &conn{c: c, chans: make(map[string]*channel)}
	// A broker that goes away (a crash, a restart, a heartbeat missed)
	// closes the connection: drop it from the pool as soon as the client
	// sees it, so that the next publish dials the broker again rather
	// than failing once more on the dead connection.
	closed := c.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		for range closed {
		}
		d.pool.Drop(rawURL, func(x *conn) bool { return x == cc })
	}()
	return cc, nil
}

// conn is a pooled connection with one confirming channel per exchange,
// so that an exchange that fails (a channel error closes the channel)
// affects only the endpoints that publish to it.
type conn struct {
	c     *amqp.Connection
	mu    sync.Mutex
	chans map[string]*channel
}

// channel returns the connection's channel for an exchange, opening it
// (in confirm mode) if needed.
func (c *conn) channel(exchange string) (*channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.chans[exchange]; ch != nil && !ch.ch.IsClosed() {
		return ch, nil
	}
	raw, err := c.c.Channel()
	if err != nil {
		return nil, fmt.Errorf("open a channel: %w", err)
	}
	if err := raw.Confirm(false); err != nil {
		raw.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	ch := &channel{
		ch:       raw,
		returns:  raw.NotifyReturn(make(chan amqp.Return, 1024)),
		closed:   raw.NotifyClose(make(chan *amqp.Error, 1)),
		returned: make(map[string]amqp.Return),
	}
	c.chans[exchange] = ch
	return ch, nil
}

// channel is a channel in confirm mode. Publishes on it go one at a time;
// their confirmations are awaited concurrently.
type channel struct {
	ch      *amqp.Channel
	returns chan amqp.Return
	closed  chan *amqp.Error

	mu       sync.Mutex
	returned map[string]amqp.Return // by delivery ID
	closeErr *amqp.Error
}

// publish publishes a mandatory message and waits for its confirmation.
// It returns the broker's return of the message if no queue took it. The
// broker sends a return before the confirmation of the same message, and
// the client hands them over in that order, so once confirmed, a return
// is already in ch.returns. (At most as many returns wait there as
// publishes are in flight, fewer than its buffer.)
func (ch *channel) publish(ctx context.Context, exchange, key, deliveryID string, pub amqp.Publishing) (*amqp.Return, error) {
	ch.mu.Lock()
	dc, err := ch.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, true, false, pub)
	ch.mu.Unlock()
	if err != nil {
		return nil, ch.reason(err)
	}
	select {
	case <-dc.Done():
	case <-ctx.Done():
		ch.forget(deliveryID)
		return nil, fmt.Errorf("no confirmation from the broker: %w", ctx.Err())
	}
	ret := ch.takeReturn(deliveryID)
	if !dc.Acked() {
		if err := ch.reason(nil); err != nil {
			return nil, err
		}
		return nil, errNacked
	}
	return ret, nil
}

var errNacked = errors.New("the broker refused the message (nack)")

// takeReturn collects the returns that arrived and removes the one of a
// delivery, if any.
func (ch *channel) takeReturn(deliveryID string) *amqp.Return {
	ch.mu.Lock()
	defer ch.mu.Unlock()
collect:
	for {
		select {
		case r, ok := <-ch.returns:
			if !ok {
				break collect // the channel closed
			}
			if id, _ := r.Headers["x-herald-delivery-id"].(string); id != "" {
				ch.returned[id] = r
			}
		default:
			break collect
		}
	}
	r, ok := ch.returned[deliveryID]
	if !ok {
		return nil
	}
	delete(ch.returned, deliveryID)
	return &r
}

func (ch *channel) forget(deliveryID string) {
	ch.takeReturn(deliveryID)
}

// reason returns why the channel failed: the broker's error that closed
// it, if it was closed, else err.
func (ch *channel) reason(err error) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closeErr == nil {
		select {
		case e, ok := <-ch.closed:
			if ok && e != nil {
				ch.closeErr = e
			}
		default:
		}
	}
	if ch.closeErr != nil {
		return ch.closeErr
	}
	return err
}

// classify returns the outcome of a failed publish and a message for the
// attempt's log.
func classify(err error, timeout time.Duration) (destination.Outcome, string) {
	var ae *amqp.Error
	switch {
	case errors.Is(err, amqp.ErrCredentials):
		return destination.Permanent, "access refused: the broker did not accept the username and password"
	case errors.Is(err, amqp.ErrVhost):
		return destination.Permanent, "access refused: the virtual host does not exist or the user may not use it"
	case errors.Is(err, amqp.ErrClosed): // before As: it is an *amqp.Error too
		return destination.Retryable, "the connection to the broker was closed"
	case errors.As(err, &ae):
		switch ae.Code {
		case amqp.NotFound:
			return destination.Permanent, "not found: " + ae.Reason
		case amqp.AccessRefused:
			return destination.Permanent, "access refused: " + ae.Reason
		case amqp.ResourceError, amqp.ResourceLocked:
			return destination.Throttled, "the broker is out of resources: " + ae.Reason
		}
		return destination.Retryable, fmt.Sprintf("broker error %d: %s", ae.Code, ae.Reason)
	case errors.Is(err, errNacked):
		return destination.Retryable, err.Error()
	}
	o, msg := destination.ClassifyNetError(err, timeout)
	if strings.Contains(msg, "timeout") || errors.Is(err, context.DeadlineExceeded) {
		return destination.Retryable, fmt.Sprintf("timeout: the broker did not confirm the message within %s", timeout)
	}
	return o, msg
}
