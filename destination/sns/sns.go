// Package sns is Herald's Amazon SNS destination: each delivery is a
// message published to a topic, its headers as message attributes; a FIFO
// topic gets the event's ordering key (or, without one, the endpoint's
// ID) as the message group and the event's ID as the deduplication ID.
package sns

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/internal/awsdest"
)

// Type is the SNS destination type.
const Type destination.Type = "SNS"

// Config is an SNS endpoint's configuration.
type Config struct {
	TopicARN string `json:"topicArn"`
	awsdest.Credentials
}

// Spec declares the SNS destination type.
func Spec() *destination.Spec {
	return &destination.Spec{
		Type:    Type,
		Name:    "Amazon SNS",
		Field:   "sns",
		Summary: "Publishes each event to an Amazon SNS topic (standard or FIFO), its headers as message attributes.",
		Fields: append([]destination.Field{
			{Name: "topicArn", Label: "Topic ARN", Kind: destination.String, Required: true,
				Placeholder: "arn:aws:sns:eu-west-1:123456789012:webhooks",
				Help:        "A FIFO topic (.fifo) gets the ordering key as message group and the event ID as deduplication ID."},
		}, awsdest.Fields()...),
		Check: check,
		Open:  func(env destination.Env) (destination.Driver, error) { return newDriver(env), nil },
	}
}

var arnRE = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

func check(raw json.RawMessage, p destination.Policy) (destination.Checked, error) {
	c, err := destination.Decode[Config](raw)
	if err != nil {
		return destination.Checked{}, err
	}
	if !arnRE.MatchString(c.TopicARN) {
		return destination.Checked{}, destination.Invalid("topicArn", "must be a topic ARN such as arn:aws:sns:eu-west-1:123456789012:webhooks")
	}
	if err := c.Credentials.Check(p); err != nil {
		return destination.Checked{}, err
	}
	stored, err := destination.Encode(c)
	if err != nil {
		return destination.Checked{}, err
	}
	return destination.Checked{Config: stored, Address: c.TopicARN}, nil
}

type driver struct {
	env  destination.Env
	http interface{ CloseIdleConnections() }
	pool *destination.Pool[*awssns.Client]
	mk   func(c *Config) *awssns.Client
}

func newDriver(env destination.Env) *driver {
	hc := awsdest.HTTPClient(env)
	d := &driver{env: env, http: hc, pool: destination.NewPool(env.IdleTimeout, func(*awssns.Client) error { return nil })}
	d.mk = func(c *Config) *awssns.Client {
		return awssns.NewFromConfig(c.Credentials.Config(hc, env.UserAgent), func(o *awssns.Options) {
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
	name := c.TopicARN[strings.LastIndexByte(c.TopicARN, ':')+1:]
	info := destination.Info{Address: c.TopicARN, System: "aws_sns", Destination: name}
	return &target{d: d, cfg: c, timeout: ep.Timeout, endpointID: ep.ID, fifo: strings.HasSuffix(name, ".fifo"), info: info}, nil
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
	r := &destination.Result{Started: started, RequestURL: t.cfg.TopicARN}
	hs := m.BrokerHeaders(started)
	r.RequestHeaders = hs
	finish := func(o destination.Outcome, msg string) *destination.Result {
		return destination.Finish(ctx, r, t.d.env.Now(), o, msg)
	}
	actx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	client, release, err := t.d.pool.Acquire(actx, t.cfg.Key(), func(context.Context) (*awssns.Client, error) { return t.d.mk(&t.cfg), nil })
	if err != nil {
		return finish(destination.Retryable, err.Error())
	}
	defer release(false)
	in := &awssns.PublishInput{TopicArn: aws.String(t.cfg.TopicARN), Message: aws.String(string(m.Body)),
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
	out, err := client.Publish(actx, in)
	if err != nil {
		o, msg := awsdest.Classify(err, t.timeout, "the topic")
		return finish(o, msg)
	}
	r.ResponseBody = "message ID " + aws.ToString(out.MessageId)
	return finish(destination.Delivered, "")
}
