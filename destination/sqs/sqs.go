// Package sqs is Herald's Amazon SQS destination: each delivery is a
// message sent to a queue, its headers as message attributes; a FIFO
// queue gets the event's ordering key (or, without one, the endpoint's ID)
// as the message group and the event's ID as the deduplication ID.
package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/internal/awsdest"
)

// Type is the SQS destination type.
const Type destination.Type = "SQS"

// Config is an SQS endpoint's configuration.
type Config struct {
	QueueURL string `json:"queueUrl"`
	awsdest.Credentials
}

// Spec declares the SQS destination type.
func Spec() *destination.Spec {
	return &destination.Spec{
		Type:    Type,
		Name:    "Amazon SQS",
		Field:   "sqs",
		Summary: "Sends each event to an Amazon SQS queue (standard or FIFO), its headers as message attributes.",
		Fields: append([]destination.Field{
			{Name: "queueUrl", Label: "Queue URL", Kind: destination.String, Required: true,
				Placeholder: "https://sqs.eu-west-1.amazonaws.com/123456789012/webhooks",
				Help:        "A FIFO queue (.fifo) gets the ordering key as message group and the event ID as deduplication ID."},
		}, awsdest.Fields()...),
		Check: check,
		Open:  func(env destination.Env) (destination.Driver, error) { return newDriver(env), nil },
	}
}

func check(raw json.RawMessage, p destination.Policy) (destination.Checked, error) {
	c, err := destination.Decode[Config](raw)
	if err != nil {
		return destination.Checked{}, err
	}
	u, err := awsdest.CheckURL(p, "queueUrl", c.QueueURL)
	if err != nil {
		return destination.Checked{}, err
	}
	if strings.Count(strings.Trim(u.Path, "/"), "/") != 1 || u.RawQuery != "" {
		return destination.Checked{}, destination.Invalid("queueUrl", "must be a queue's URL, https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE")
	}
	if err := c.Credentials.Check(p); err != nil {
		return destination.Checked{}, err
	}
	stored, err := destination.Encode(c)
	if err != nil {
		return destination.Checked{}, err
	}
	return destination.Checked{Config: stored, Address: c.QueueURL}, nil
}

type driver struct {
	env  destination.Env
	http interface{ CloseIdleConnections() }
	pool *destination.Pool[*awssqs.Client]
	mk   func(c *Config) *awssqs.Client
}

func newDriver(env destination.Env) *driver {
	hc := awsdest.HTTPClient(env)
	d := &driver{env: env, http: hc, pool: destination.NewPool(env.IdleTimeout, func(*awssqs.Client) error { return nil })}
	d.mk = func(c *Config) *awssqs.Client {
		return awssqs.NewFromConfig(c.Credentials.Config(hc, env.UserAgent), func(o *awssqs.Options) {
			if c.EndpointURL != "" {
				o.BaseEndpoint = aws.String(c.EndpointURL)
			}
		})
	}
	return d
}

func (d *driver) Close() error {
	err := d.pool.Close()
	d.http.CloseIdleConnections()
	return err
}

func (d *driver) Prepare(ep *destination.Endpoint) (destination.Target, error) {
	c, err := destination.Decode[Config](ep.Config)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.QueueURL)
	if err != nil {
		return nil, fmt.Errorf("queueUrl: %w", err)
	}
	name := u.Path[strings.LastIndexByte(u.Path, '/')+1:]
	return &target{d: d, cfg: c, timeout: ep.Timeout, endpointID: ep.ID, fifo: strings.HasSuffix(name, ".fifo"),
		info: destination.Info{Address: c.QueueURL, System: "aws_sqs", Destination: name, Host: u.Hostname()}}, nil
}

type target struct {
	d          *driver
	cfg        Config
	timeout    time.Duration
	endpointID string
	fifo       bool
	info       destination.Info
}

func (t *target) Info() destination.Info { return t.info }

func (t *target) Send(ctx context.Context, m *destination.Message) *destination.Result {
	started := t.d.env.Now()
	r := &destination.Result{Started: started, RequestURL: t.cfg.QueueURL}
	hs := m.BrokerHeaders(started)
	r.RequestHeaders = hs
	finish := func(o destination.Outcome, msg string) *destination.Result {
		return destination.Finish(ctx, r, t.d.env.Now(), o, msg)
	}
	actx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	client, release, err := t.d.pool.Acquire(actx, t.cfg.Key(), func(context.Context) (*awssqs.Client, error) { return t.d.mk(&t.cfg), nil })
	if err != nil {
		return finish(destination.Retryable, err.Error())
	}
	defer release(false)
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(t.cfg.QueueURL), MessageBody: aws.String(string(m.Body)),
		MessageAttributes: make(map[string]types.MessageAttributeValue, len(hs))}
	for _, h := range hs {
		in.MessageAttributes[h.Name] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(h.Value)}
	}
	if t.fifo {
		group := m.OrderingKey
		if group == "" {
			group = t.endpointID
		}
		in.MessageGroupId, in.MessageDeduplicationId = aws.String(group), aws.String(m.ID)
	}
	out, err := client.SendMessage(actx, in)
	if err != nil {
		o, msg := awsdest.Classify(err, t.timeout, "the queue")
		return finish(o, msg)
	}
	r.ResponseBody = "message ID " + aws.ToString(out.MessageId)
	return finish(destination.Delivered, "")
}
