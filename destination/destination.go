package destination

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"time"

	"github.com/heraldhq/herald/webhook"
)

// Type names a kind of destination: HTTP, or a broker such as RABBITMQ.
// It is the endpoint's type in the API.
type Type string

// HTTP is the type of plain webhook endpoints, every endpoint's default.
const HTTP Type = "HTTP"

// Endpoint is what a destination is given of an endpoint to send to it:
// its stored configuration, parsed once per change of the endpoint.
type Endpoint struct {
	ID    string
	AppID string
	Type  Type
	// URL, Auth and Headers are an HTTP endpoint's: where it posts, how it
	// authenticates, which custom headers it adds.
	URL     string
	Auth    webhook.Auth
	Headers []webhook.Header
	// TLS is an HTTP endpoint's mutual TLS (nil: none).
	TLS *webhook.TLS
	// Config is a broker's configuration, as its Spec.Check stored it.
	Config json.RawMessage
	// Timeout bounds one attempt, connecting included.
	Timeout time.Duration
}

// Env is what every destination driver is given by the engine that opens
// it.
type Env struct {
	// Policy is checked on every connection a driver makes: each client's
	// dialer goes through Env.Dialer.
	Policy Policy
	// Proxy, if set, is the egress proxy every connection goes through:
	// HTTP endpoints with the proxy's HTTP support (CONNECT for https,
	// absolute-form requests for http), brokers and cloud APIs through a
	// CONNECT tunnel (Env.Dialer). Its credentials come from the URL.
	Proxy *url.URL
	// UserAgent identifies Herald to HTTP endpoints and APIs.
	UserAgent string
	// MaxResponseBody is how much of an answer an attempt keeps.
	MaxResponseBody int
	// Concurrency is the most attempts the engine has in flight at once.
	Concurrency int
	// IdleTimeout closes pooled connections unused this long (default
	// 90s).
	IdleTimeout time.Duration
	// Now returns the current time.
	Now func() time.Time
	// Logger receives the driver's logs.
	Logger *slog.Logger
}

func (e *Env) setDefaults() {
	if e.IdleTimeout <= 0 {
		e.IdleTimeout = 90 * time.Second
	}
	if e.Concurrency <= 0 {
		e.Concurrency = 128
	}
	if e.MaxResponseBody <= 0 {
		e.MaxResponseBody = 64 << 10
	}
	if e.UserAgent == "" {
		e.UserAgent = "Herald/dev"
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Logger == nil {
		e.Logger = slog.Default()
	}
}

// Driver sends to every endpoint of one type. The engine opens one per
// type it sends to and closes it when it stops.
type Driver interface {
	// Prepare parses an endpoint's configuration for sending, once per
	// change of the endpoint. An error means the configuration cannot be
	// used as stored (it was checked when saved): the engine leaves the
	// endpoint's deliveries waiting and says why.
	Prepare(ep *Endpoint) (Target, error)
	// Close closes the driver's pooled connections. Sends in flight fail.
	Close() error
}

// Target is one endpoint, ready to send to.
type Target interface {
	// Send makes one attempt and reports what happened; it never fails
	// otherwise. It bounds the attempt by the endpoint's timeout (a
	// Retryable "timeout" outcome) and, once ctx ends, stops at once with
	// the Interrupted outcome. Connections it opens go through the
	// policy and are pooled per broker and credentials, not per endpoint.
	Send(ctx context.Context, m *Message) *Result
	// Info describes where messages go, for traces and logs.
	Info() Info
}

// Held is implemented by targets that only the process holding their
// connection can send to: a listener, whose deliveries travel over the
// websocket its herald listen session keeps with one replica. The engine
// claims a held endpoint's deliveries only while Holding reports true, sends
// to it alone among replicas (as to an endpoint whose rate or order is
// controlled, see the dispatch Driver's Own), one attempt at a time, in the
// order they fall due, and never hands a fresh delivery to it without a
// claim. While nobody holds it, its deliveries wait in the store without
// using attempts.
type Held interface {
	Target
	// Holding reports whether this process holds the target's connection
	// now.
	Holding() bool
}

// Info describes a target.
type Info struct {
	// Address is where messages go, without credentials or query: the
	// endpoint's URL, or the broker's address and queue or topic.
	Address string
	// System names the protocol, as OpenTelemetry's messaging.system does
	// for brokers: "http", "rabbitmq", "kafka", "nats", "aws_sqs",
	// "aws_sns", "gcp_pubsub".
	System string
	// Destination is the queue, topic, exchange or subject ("" for HTTP).
	Destination string
	// Host and Port are the server's, when there is one server (Port 0:
	// unknown).
	Host string
	Port int
}
