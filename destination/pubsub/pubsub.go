// Package pubsub is Herald's Google Cloud Pub/Sub destination: each
// delivery is a message published to a topic, its headers as attributes,
// with the event's ordering key as the message's ordering key (messages
// of one key are delivered in order to subscriptions that enable
// ordering). Connections go through the destination policy and are
// shared by every endpoint of one project with the same credentials.
package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	gpubsub "cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/heraldhq/herald/destination"
)

// Type is the Pub/Sub destination type.
const Type destination.Type = "PUBSUB"

// Config is a Pub/Sub endpoint's configuration.
type Config struct {
	ProjectID string `json:"projectId"`
	Topic     string `json:"topic"`
	// CredentialsJSON is a service account's JSON key.
	CredentialsJSON string `json:"credentialsJson,omitempty"`
	// Emulator is the host:port of a Pub/Sub emulator (plaintext, no
	// credentials), for development.
	Emulator string `json:"emulator,omitempty"`
}

// Spec declares the Pub/Sub destination type.
func Spec() *destination.Spec {
	return &destination.Spec{
		Type:    Type,
		Name:    "Google Cloud Pub/Sub",
		Field:   "pubsub",
		Summary: "Publishes each event to a Google Cloud Pub/Sub topic, its headers as attributes and its ordering key passed through.",
		Fields: []destination.Field{
			{Name: "projectId", Label: "Project ID", Kind: destination.String, Required: true, Placeholder: "my-project"},
			{Name: "topic", Label: "Topic", Kind: destination.String, Required: true, Placeholder: "webhooks", Help: "The topic's ID in the project; it must exist."},
			{Name: "credentialsJson", Label: "Service account key (JSON)", Kind: destination.Text, Secret: true,
				Help: "The JSON key of a service account allowed to publish to the topic (roles/pubsub.publisher)."},
			{Name: "emulator", Label: "Emulator", Kind: destination.String, Placeholder: "localhost:8085",
				Help: "Development only: the host:port of a Pub/Sub emulator, used without credentials instead of Google's service."},
		},
		Check: check,
		Open:  func(env destination.Env) (destination.Driver, error) { return newDriver(env), nil },
	}
}

var (
	projectRE = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z][a-z0-9.:-]{1,99}$`)
	topicRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$`)
)

func check(raw json.RawMessage, p destination.Policy) (destination.Checked, error) {
	c, err := destination.Decode[Config](raw)
	if err != nil {
		return destination.Checked{}, err
	}
	if !projectRE.MatchString(c.ProjectID) {
		return destination.Checked{}, destination.Invalid("projectId", "must be a Google Cloud project ID such as my-project, got %q", c.ProjectID)
	}
	if !topicRE.MatchString(c.Topic) || strings.HasPrefix(c.Topic, "goog") {
		return destination.Checked{}, destination.Invalid("topic", "must be a topic ID: 3-255 letters, digits and ._~%%+- starting with a letter, not with goog")
	}
	switch {
	case c.Emulator != "":
		host, port, ok := destination.SplitHostPort(c.Emulator, 0)
		if !ok || port == 0 {
			return destination.Checked{}, destination.Invalid("emulator", "must be host:port, got %q", c.Emulator)
		}
		if err := p.CheckHost(host, port); err != nil {
			return destination.Checked{}, destination.Invalid("emulator", "%v", err)
		}
		if c.CredentialsJSON != "" {
			return destination.Checked{}, destination.Invalid("credentialsJson", "is not used with an emulator; remove it")
		}
	case c.CredentialsJSON == "":
		return destination.Checked{}, destination.Invalid("credentialsJson", "is required: the JSON key of a service account that may publish to the topic")
	default:
		var key struct {
			Type        string `json:"type"`
			ClientEmail string `json:"client_email"`
			PrivateKey  string `json:"private_key"`
		}
		if err := json.Unmarshal([]byte(c.CredentialsJSON), &key); err != nil || key.Type != "service_account" || key.ClientEmail == "" || key.PrivateKey == "" {
			return destination.Checked{}, destination.Invalid("credentialsJson", "must be a service account's JSON key (\"type\": \"service_account\", with client_email and private_key)")
		}
	}
	stored, err := destination.Encode(c)
	if err != nil {
		return destination.Checked{}, err
	}
	return destination.Checked{Config: stored, Address: "projects/" + c.ProjectID + "/topics/" + c.Topic}, nil
}

type driver struct {
	env  destination.Env
	pool *destination.Pool[*client]
}

func newDriver(env destination.Env) *driver {
	return &driver{env: env, pool: destination.NewPool(env.IdleTimeout, func(c *client) error { return c.close() })}
}

func (d *driver) Close() error { return d.pool.Close() }

func (d *driver) Prepare(ep *destination.Endpoint) (destination.Target, error) {
	c, err := destination.Decode[Config](ep.Config)
	if err != nil {
		return nil, err
	}
	info := destination.Info{Address: "projects/" + c.ProjectID + "/topics/" + c.Topic, System: "gcp_pubsub", Destination: c.Topic, Host: "pubsub.googleapis.com", Port: 443}
	if c.Emulator != "" {
		host, port, _ := destination.SplitHostPort(c.Emulator, 0)
		info.Host, info.Port = host, int(port)
	}
	return &target{d: d, cfg: c, timeout: ep.Timeout, info: info, key: strings.Join([]string{c.ProjectID, c.CredentialsJSON, c.Emulator}, "\x00")}, nil
}

// client is a pooled Pub/Sub client with a publisher per topic.
type client struct {
	c    *gpubsub.Client
	mu   sync.Mutex
	pubs map[string]*gpubsub.Publisher
}

func (c *client) publisher(topic string) *gpubsub.Publisher {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pubs[topic]
	if p == nil {
		p = c.c.Publisher(topic)
		p.EnableMessageOrdering = true
		// Publish at once: each attempt waits for its own message.
		p.PublishSettings.DelayThreshold = time.Millisecond
		p.PublishSettings.CountThreshold = 100
		c.pubs[topic] = p
	}
	return p
}

// close closes the connections, then stops the publishers (their pending
// messages fail at once instead of waiting for a server that may never
// answer).
func (c *client) close() error {
	err := c.c.Close()
	c.mu.Lock()
	pubs := c.pubs
	c.pubs = nil
	c.mu.Unlock()
	for _, p := range pubs {
		go p.Stop()
	}
	return err
}

type target struct {
	d       *driver
	cfg     Config
	key     string
	timeout time.Duration
	info    destination.Info
}

func (t *target) Info() destination.Info { return t.info }

func (t *target) open(ctx context.Context) (*client, error) {
	dialer := t.d.env.Dialer(t.timeout)
	// gRPC connects lazily and retries until the deadline: a first dial
	// says at once that the service cannot be reached or is refused.
	hostport := "pubsub.googleapis.com:443"
	if t.cfg.Emulator != "" {
		hostport = t.cfg.Emulator
	}
	probe, err := dialer.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	probe.Close()
	var c *gpubsub.Client
	opts := []option.ClientOption{
		option.WithUserAgent(t.d.env.UserAgent),
		option.WithGRPCDialOption(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		})),
	}
	if t.cfg.Emulator != "" {
		opts = append(opts, option.WithEndpoint(t.cfg.Emulator), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	} else {
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, []byte(t.cfg.CredentialsJSON)))
	}
	c, err = gpubsub.NewClient(context.WithoutCancel(ctx), t.cfg.ProjectID, opts...)
	if err != nil {
		return nil, err
	}
	return &client{c: c, pubs: make(map[string]*gpubsub.Publisher)}, nil
}

func (t *target) Send(ctx context.Context, m *destination.Message) *destination.Result {
	started := t.d.env.Now()
	r := &destination.Result{Started: started, RequestURL: t.info.Address}
	hs := m.BrokerHeaders(started)
	r.RequestHeaders = hs
	finish := func(o destination.Outcome, msg string) *destination.Result {
		return destination.Finish(ctx, r, t.d.env.Now(), o, msg)
	}
	actx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	c, release, err := t.d.pool.Acquire(actx, t.key, t.open)
	if err != nil {
		o, msg := classify(err, t.timeout, t.cfg.Topic)
		return finish(o, msg)
	}
	defer release(false)
	attrs := make(map[string]string, len(hs))
	for _, h := range hs {
		attrs[h.Name] = h.Value
	}
	p := c.publisher(t.cfg.Topic)
	res := p.Publish(actx, &gpubsub.Message{Data: m.Body, Attributes: attrs, OrderingKey: m.OrderingKey})
	id, err := res.Get(actx)
	if err != nil {
		if m.OrderingKey != "" {
			// A failed publish pauses its key until resumed: the next
			// attempt (in order) resumes it.
			p.ResumePublish(m.OrderingKey)
		}
		o, msg := classify(err, t.timeout, t.cfg.Topic)
		return finish(o, msg)
	}
	r.ResponseBody = "message ID " + id
	return finish(destination.Delivered, "")
}

// classify returns the outcome of a failed publish and a message for the
// attempt's log.
func classify(err error, timeout time.Duration, topic string) (destination.Outcome, string) {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		switch s.Code() {
		case codes.NotFound:
			return destination.Permanent, fmt.Sprintf("topic %q not found: %s", topic, s.Message())
		case codes.PermissionDenied, codes.Unauthenticated:
			return destination.Permanent, "access denied: " + s.Message()
		case codes.InvalidArgument, codes.FailedPrecondition:
			return destination.Permanent, "refused: " + s.Message()
		case codes.ResourceExhausted:
			return destination.Throttled, "throttled: " + s.Message()
		case codes.DeadlineExceeded, codes.Canceled:
			return destination.Retryable, fmt.Sprintf("timeout: Pub/Sub did not acknowledge the message within %s", timeout)
		}
		return destination.Retryable, fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return destination.Retryable, fmt.Sprintf("timeout: Pub/Sub did not acknowledge the message within %s", timeout)
	}
	return destination.ClassifyNetError(err, timeout)
}
