// Package kafka is Herald's Kafka destination: each delivery is a record
// produced to a topic, keyed by the event's ordering key (or its ID),
// acknowledged by all in-sync replicas, by an idempotent producer (a
// record retried within an attempt is written once). Clients go through
// the destination policy and are shared by every endpoint on the same
// cluster with the same credentials.
package kafka

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/heraldhq/herald/destination"
)

// Type is the Kafka destination type.
const Type destination.Type = "KAFKA"

// Config is a Kafka endpoint's configuration.
type Config struct {
	// Brokers are seed brokers, host:port.
	Brokers []string `json:"brokers"`
	Topic   string   `json:"topic"`
	// TLS connects with TLS.
	TLS bool `json:"tls,omitempty"`
	// SASL is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 ("": none).
	SASL     string `json:"sasl,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Spec declares the Kafka destination type.
func Spec() *destination.Spec {
	return &destination.Spec{
		Type:    Type,
		Name:    "Kafka",
		Field:   "kafka",
		Summary: "Produces each event to a Kafka topic, keyed by its ordering key, acknowledged by all in-sync replicas.",
		Fields: []destination.Field{
			{Name: "brokers", Label: "Brokers", Kind: destination.List, Required: true, Placeholder: "kafka-1.example.com:9092",
				Help: "Seed brokers, host:port; the rest of the cluster is discovered from them."},
			{Name: "topic", Label: "Topic", Kind: destination.String, Required: true, Placeholder: "webhooks", Help: "It must exist: Herald does not create topics."},
			{Name: "tls", Label: "TLS", Kind: destination.Bool, Help: "Connect with TLS."},
			{Name: "sasl", Label: "SASL mechanism", Kind: destination.Choice, Choices: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
				Help: "Empty: no SASL authentication."},
			{Name: "username", Label: "Username", Kind: destination.String},
			{Name: "password", Label: "Password", Kind: destination.String, Secret: true},
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
	if len(c.Brokers) > 20 {
		return destination.Checked{}, destination.Invalid("brokers", "has %d entries; list at most 20 seed brokers", len(c.Brokers))
	}
	for i, b := range c.Brokers {
		host, port, ok := destination.SplitHostPort(b, 9092)
		if !ok || strings.Contains(b, "/") {
			return destination.Checked{}, destination.Invalid(fmt.Sprintf("brokers.%d", i), "must be host:port, got %q", b)
		}
		if err := p.CheckHost(host, port); err != nil {
			return destination.Checked{}, destination.Invalid(fmt.Sprintf("brokers.%d", i), "%v", err)
		}
	}
	if len(c.Topic) > 249 || strings.Trim(c.Topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" || c.Topic == "." || c.Topic == ".." {
		return destination.Checked{}, destination.Invalid("topic", "may contain only letters, digits, dots, underscores and hyphens (at most 249)")
	}
	if c.SASL != "" && (c.Username == "" || c.Password == "") {
		return destination.Checked{}, destination.Invalid("username", "and password are required with SASL %s", c.SASL)
	}
	if c.SASL == "" && (c.Username != "" || c.Password != "") {
		return destination.Checked{}, destination.Invalid("sasl", "is required to authenticate with a username and password")
	}
	stored, err := destination.Encode(c)
	if err != nil {
		return destination.Checked{}, err
	}
	return destination.Checked{Config: stored, Address: "kafka://" + strings.Join(c.Brokers, ",") + "/" + c.Topic}, nil
}

type driver struct {
	env  destination.Env
	pool *destination.Pool[*kgo.Client]
}

func newDriver(env destination.Env) *driver {
	return &driver{env: env, pool: destination.NewPool(env.IdleTimeout, func(c *kgo.Client) error { c.Close(); return nil })}
}

func (d *driver) Close() error { return d.pool.Close() }

func (d *driver) Prepare(ep *destination.Endpoint) (destination.Target, error) {
	c, err := destination.Decode[Config](ep.Config)
	if err != nil {
		return nil, err
	}
	t := &target{d: d, cfg: c, timeout: ep.Timeout,
		key: strings.Join(append(append([]string{}, c.Brokers...), fmt.Sprint(c.TLS), c.SASL, c.Username, c.Password), "\x00")}
	t.info = destination.Info{Address: "kafka://" + strings.Join(c.Brokers, ",") + "/" + c.Topic, System: "kafka", Destination: c.Topic}
	if len(c.Brokers) == 1 {
		host, port, _ := destination.SplitHostPort(c.Brokers[0], 9092)
		t.info.Host, t.info.Port = host, int(port)
	}
	return t, nil
}

type target struct {
	d       *driver
	cfg     Config
	key     string // the pool's key: cluster and credentials
	timeout time.Duration
	info    destination.Info
}

func (t *target) Info() destination.Info { return t.info }

// client returns a new producer for the target's cluster.
func (t *target) client() (*kgo.Client, error) {
	dialer := t.d.env.Dialer(t.timeout)
	opts := []kgo.Opt{
		kgo.SeedBrokers(t.cfg.Brokers...),
		kgo.ClientID("herald"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.UnknownTopicRetries(1),
		// One retry within an attempt, after fresh metadata (a leader
		// that moved); an error the cluster keeps answering
		// (THROTTLING_QUOTA_EXCEEDED, NOT_ENOUGH_REPLICAS) is reported
		// and classified instead of retried until the attempt times out:
		// the endpoint's retry policy and pace decide what happens next.
		kgo.RecordRetries(1),
		kgo.MetadataMinAge(time.Second),
		kgo.ConnIdleTimeout(max(t.d.env.IdleTimeout, time.Second)),
		kgo.DialTimeout(t.timeout),
	}
	if t.cfg.TLS {
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, host)
			if err != nil {
				return nil, err
			}
			name, _, _ := net.SplitHostPort(host)
			tc := tls.Client(c, &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name})
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return tc, nil
		}))
	} else {
		opts = append(opts, kgo.Dialer(dialer.DialContext))
	}
	var mech sasl.Mechanism
	switch t.cfg.SASL {
	case "PLAIN":
		mech = plain.Auth{User: t.cfg.Username, Pass: t.cfg.Password}.AsMechanism()
	case "SCRAM-SHA-256":
		mech = scram.Auth{User: t.cfg.Username, Pass: t.cfg.Password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		mech = scram.Auth{User: t.cfg.Username, Pass: t.cfg.Password}.AsSha512Mechanism()
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return kgo.NewClient(opts...)
}

// Send produces one record and waits for the in-sync replicas' acks.
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
	cl, release, err := t.d.pool.Acquire(actx, t.key, func(ctx context.Context) (*kgo.Client, error) {
		cl, err := t.client()
		if err != nil {
			return nil, err
		}
		// The client would retry a broker it cannot reach until the
		// record's timeout: a ping says at once.
		if err := cl.Ping(ctx); err != nil {
			cl.Close()
			return nil, err
		}
		return cl, nil
	})
	if err != nil {
		o, msg := classify(err, t.timeout, t.cfg.Topic)
		return finish(o, msg)
	}
	key := m.OrderingKey
	if key == "" {
		key = m.ID
	}
	rec := &kgo.Record{Topic: t.cfg.Topic, Key: []byte(key), Value: m.Body, Timestamp: started}
	rec.Headers = make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		rec.Headers[i] = kgo.RecordHeader{Key: h.Name, Value: []byte(h.Value)}
	}
	res := cl.ProduceSync(actx, rec)
	release(false)
	if err := res.FirstErr(); err != nil {
		o, msg := classify(err, t.timeout, t.cfg.Topic)
		return finish(o, msg)
	}
	r.ResponseBody = fmt.Sprintf("acknowledged: topic %q, partition %d, offset %d", rec.Topic, rec.Partition, rec.Offset)
	return finish(destination.Delivered, "")
}

// classify returns the outcome of a failed produce and a message for the
// attempt's log.
func classify(err error, timeout time.Duration, topic string) (destination.Outcome, string) {
	var ke *kerr.Error
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return destination.Permanent, fmt.Sprintf("topic %q does not exist (Herald does not create topics)", topic)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return destination.Permanent, fmt.Sprintf("not authorized to produce to topic %q: %v", topic, err)
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		return destination.Permanent, "authentication failed: " + err.Error()
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge), errors.Is(err, kerr.InvalidRecord):
		return destination.Permanent, "the cluster refused the record: " + err.Error()
	case errors.Is(err, kerr.ThrottlingQuotaExceeded):
		return destination.Throttled, "throttled by the cluster: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout):
		return destination.Retryable, fmt.Sprintf("timeout: the cluster did not acknowledge the record within %s", timeout)
	case errors.As(err, &ke):
		return destination.Retryable, "the cluster refused the record: " + ke.Error()
	}
	return destination.ClassifyNetError(err, timeout)
}
