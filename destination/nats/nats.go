// Package nats is Herald's NATS JetStream destination: each delivery is a
// message published to a subject computed from the event's type and
// acknowledged by the JetStream stream that captures it, with the
// delivery's ID as the message ID, so that the stream drops a duplicate
// of a delivery sent again (a retry after a lost acknowledgement) within
// its deduplication window. Connections go through the destination policy
// and are shared by every endpoint on the same server with the same
// credentials.
package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/destination"
)

// Type is the NATS JetStream destination type.
const Type destination.Type = "NATS"

// Config is a NATS endpoint's configuration.
type Config struct {
	// URL is the server's nats:// or tls:// URL, without credentials.
	URL string `json:"url"`
	// Subject is a template over the event type.
	Subject  destination.Template `json:"subject"`
	Username string               `json:"username,omitempty"`
	Password string               `json:"password,omitempty"`
	Token    string               `json:"token,omitempty"`
}

// Spec declares the NATS destination type.
func Spec() *destination.Spec {
	return &destination.Spec{
		Type:    Type,
		Name:    "NATS JetStream",
		Field:   "nats",
		Summary: "Publishes each event to a NATS subject, acknowledged by the JetStream stream that captures it.",
		Fields: []destination.Field{
			{Name: "url", Label: "Server URL", Kind: destination.String, Required: true, Placeholder: "tls://nats.example.com:4222",
				Help: "nats:// or tls://, without credentials."},
			{Name: "subject", Label: "Subject", Kind: destination.String, Required: true, Placeholder: "webhooks.{eventType}",
				Help: "{eventType} is replaced by the event's type. A JetStream stream must capture it."},
			{Name: "username", Label: "Username", Kind: destination.String},
			{Name: "password", Label: "Password", Kind: destination.String, Secret: true},
			{Name: "token", Label: "Token", Kind: destination.String, Secret: true, Help: "An authentication token, instead of a username and password."},
		},
		Check: check,
		Open:  func(env destination.Env) (destination.Driver, error) { return newDriver(env), nil },
	}
}

func check(raw json.RawMessage, p destination.Policy) (destination.Checked, error) {
	c, err := destination.Decode[Config](raw)
	if err != nil {
		return destination.Checked{}, err
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return destination.Checked{}, destination.Invalid("url", "is not a valid URL: %v", err)
	case u.Scheme != "nats" && u.Scheme != "tls":
		return destination.Checked{}, destination.Invalid("url", "must start with nats:// or tls://, got %q", u.Scheme+"://")
	case u.User != nil:
		return destination.Checked{}, destination.Invalid("url", "contains credentials; remove them and set username and password, or token, instead")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return destination.Checked{}, destination.Invalid("url", "must be just a scheme, host and port")
	}
	host, port, ok := destination.SplitHostPort(u.Host, 4222)
	if !ok {
		return destination.Checked{}, destination.Invalid("url", "has no valid host and port")
	}
	if err := p.CheckHost(host, port); err != nil {
		return destination.Checked{}, destination.Invalid("url", "%v", err)
	}
	if c.Token != "" && (c.Username != "" || c.Password != "") {
		return destination.Checked{}, destination.Invalid("token", "cannot be combined with a username and password")
	}
	subj := string(c.Subject)
	if msg := destination.CheckTemplate(subj); msg != "" {
		return destination.Checked{}, destination.Invalid("subject", "%s", msg)
	}
	if strings.ContainsAny(subj, " \t*>") || strings.HasPrefix(subj, ".") || strings.HasSuffix(subj, ".") || strings.Contains(subj, "..") {
		return destination.Checked{}, destination.Invalid("subject", "must be tokens separated by dots, without spaces or wildcards (* and >)")
	}
	stored, err := destination.Encode(c)
	if err != nil {
		return destination.Checked{}, err
	}
	return destination.Checked{Config: stored, Address: u.Scheme + "://" + u.Host + "/" + subj}, nil
}

// driver publishes over pooled connections.
type driver struct {
	env  destination.Env
	pool *destination.Pool[*natsgo.Conn]
}

func newDriver(env destination.Env) *driver {
	return &driver{env: env, pool: destination.NewPool(env.IdleTimeout, func(c *natsgo.Conn) error { c.Close(); return nil })}
}

func (d *driver) Close() error { return d.pool.Close() }

func (d *driver) Prepare(ep *destination.Endpoint) (destination.Target, error) {
	c, err := destination.Decode[Config](ep.Config)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	t := &target{d: d, cfg: c, timeout: ep.Timeout,
		key: strings.Join([]string{c.URL, c.Username, c.Password, c.Token}, "\x00")}
	t.info = destination.Info{Address: u.Scheme + "://" + u.Host + "/" + string(c.Subject), System: "nats", Destination: string(c.Subject), Host: u.Hostname(), Port: 4222}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		t.info.Port = p
	}
	return t, nil
}

type target struct {
	d       *driver
	cfg     Config
	key     string // the pool's key: server and credentials
	timeout time.Duration
	info    destination.Info
}

func (t *target) Info() destination.Info { return t.info }

func (t *target) connect(timeout time.Duration) (*natsgo.Conn, error) {
	opts := []natsgo.Option{
		natsgo.Name("herald"),
		natsgo.Timeout(timeout),
		natsgo.SetCustomDialer(t.d.env.Dialer(timeout)),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(250 * time.Millisecond),
		// Publishes wait for their stream's acknowledgement: while the
		// connection is down they fail at once rather than queue.
		natsgo.ReconnectBufSize(-1),
	}
	switch {
	case t.cfg.Token != "":
		opts = append(opts, natsgo.Token(t.cfg.Token))
	case t.cfg.Username != "" || t.cfg.Password != "":
		opts = append(opts, natsgo.UserInfo(t.cfg.Username, t.cfg.Password))
	}
	return natsgo.Connect(t.cfg.URL, opts...)
}

// Send publishes one message and waits for the stream's acknowledgement.
func (t *target) Send(ctx context.Context, m *destination.Message) *destination.Result {
	started := t.d.env.Now()
	subject := t.cfg.Subject.Expand(m.EventType)
	r := &destination.Result{Started: started, RequestURL: t.info.Address[:strings.LastIndexByte(t.info.Address, '/')+1] + subject}
	hs := m.BrokerHeaders(started)
	r.RequestHeaders = hs
	finish := func(o destination.Outcome, msg string) *destination.Result {
		return destination.Finish(ctx, r, t.d.env.Now(), o, msg)
	}
	actx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	nc, release, err := t.d.pool.Acquire(actx, t.key, func(ctx context.Context) (*natsgo.Conn, error) {
		return destination.OpenContext(ctx, func() (*natsgo.Conn, error) { return t.connect(t.timeout) }, func(c *natsgo.Conn) { c.Close() })
	})
	if err != nil {
		o, msg := classify(err, t.timeout, subject)
		return finish(o, msg)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		release(false)
		return finish(destination.Retryable, err.Error())
	}
	msg := natsgo.NewMsg(subject)
	for _, h := range hs {
		msg.Header[h.Name] = []string{h.Value}
	}
	msg.Header["content-type"] = []string{"application/json"}
	msg.Data = m.Body
	ack, err := js.PublishMsg(actx, msg, jetstream.WithMsgID(m.DeliveryID), jetstream.WithRetryAttempts(0))
	release(err != nil && nc.IsClosed())
	if err != nil {
		o, text := classify(err, t.timeout, subject)
		return finish(o, text)
	}
	r.ResponseBody = fmt.Sprintf("acknowledged by stream %q at sequence %d", ack.Stream, ack.Sequence)
	if ack.Duplicate {
		r.ResponseBody += " (a duplicate of this delivery: the stream kept the first)"
	}
	return finish(destination.Delivered, "")
}

// classify returns the outcome of a failed publish and a message for the
// attempt's log.
func classify(err error, timeout time.Duration, subject string) (destination.Outcome, string) {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, natsgo.ErrAuthorization), errors.Is(err, natsgo.ErrAuthExpired), errors.Is(err, natsgo.ErrAuthRevoked):
		return destination.Permanent, "authorization violation: the server did not accept the credentials"
	case errors.Is(err, natsgo.ErrPermissionViolation):
		return destination.Permanent, "permissions violation: the user may not publish to " + strconv.Quote(subject)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, natsgo.ErrNoResponders):
		return destination.Retryable, fmt.Sprintf("no JetStream stream captures subject %q (or JetStream is unavailable): create a stream for it", subject)
	case errors.As(err, &apiErr):
		return destination.Retryable, "the stream refused the message: " + apiErr.Description
	case errors.Is(err, natsgo.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return destination.Retryable, fmt.Sprintf("timeout: the stream did not acknowledge the message within %s", timeout)
	case errors.Is(err, natsgo.ErrConnectionClosed), errors.Is(err, natsgo.ErrConnectionReconnecting), errors.Is(err, natsgo.ErrDisconnected):
		return destination.Retryable, "the connection to the server was lost"
	case errors.Is(err, natsgo.ErrNoServers):
		return destination.Retryable, "no server could be reached: " + err.Error()
	}
	return destination.ClassifyNetError(err, timeout)
}
