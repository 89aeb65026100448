package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldhq/herald/internal/awsemu"
	"github.com/heraldhq/herald/internal/brokers"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// destinationUnderTest starts a server of one destination type and returns
// an endpoint's configuration for it (the field named after the type) and
// a function that waits for n messages and returns them in the order the
// server stored them.
type destinationUnderTest func(t *testing.T) (field string, cfg map[string]any, read func(t *testing.T, n int) []message)

// everyType is every destination type against its server: Debian's
// RabbitMQ and NATS, and emulators where Debian has none (kfake for
// Kafka, kumo for SQS and SNS, pstest for Pub/Sub).
var everyType = []struct {
	name  string
	start destinationUnderTest
}{
	{"RabbitMQ", func(t *testing.T) (string, map[string]any, func(*testing.T, int) []message) {
		b := brokers.StartRabbitMQ(t)
		c := rabbitConsumer(t, b.URL)
		drainRabbit(t, b.URL, c)
		return "rabbitmq", map[string]any{"url": b.URL, "username": "guest", "password": "guest", "exchange": "webhooks"},
			func(t *testing.T, n int) []message {
				t.Helper()
				if !heraldtest.Eventually(60*time.Second, func() bool { return len(c.all()) >= n }) {
					t.Fatalf("the queue got %d messages, want %d", len(c.all()), n)
				}
				return c.all()
			}
	}},
	{"Kafka", func(t *testing.T) (string, map[string]any, func(*testing.T, int) []message) {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "webhooks"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		return "kafka", map[string]any{"brokers": cluster.ListenAddrs(), "topic": "webhooks"},
			func(t *testing.T, n int) []message {
				t.Helper()
				cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("webhooks"),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				var out []message
				for len(out) < n {
					fs := cl.PollFetches(ctx)
					if ctx.Err() != nil {
						t.Fatalf("the topic gave %d messages, want %d", len(out), n)
					}
					// Order holds within a partition, and a key's
					// messages share one.
					fs.EachRecord(func(r *kgo.Record) {
						h := http.Header{}
						for _, rh := range r.Headers {
							h.Set(rh.Key, string(rh.Value))
						}
						out = append(out, message{body: r.Value, headers: h, key: string(r.Key)})
					})
				}
				return out
			}
	}},
	{"NATS", func(t *testing.T) (string, map[string]any, func(*testing.T, int) []message) {
		b := brokers.StartNATS(t, brokers.NATSOptions{})
		natsStream(t, b.URL)
		return "nats", map[string]any{"url": b.URL, "subject": "webhooks.{eventType}"},
			func(t *testing.T, n int) []message {
				t.Helper()
				var msgs []message
				heraldtest.Eventually(60*time.Second, func() bool { msgs = natsMessages(t, b.URL); return len(msgs) >= n })
				return msgs
			}
	}},
	{"SQS", func(t *testing.T) (string, map[string]any, func(*testing.T, int) []message) {
		e := awsemu.Start(t)
		q, err := e.SQS().CreateQueue(context.Background(), &awssqs.CreateQueueInput{QueueName: aws.String(awsemu.Name("orders.fifo")),
			Attributes: map[string]string{string(sqstypes.QueueAttributeNameFifoQueue): "true"}})
		if err != nil {
			t.Fatal(err)
		}
		return "sqs", map[string]any{"queueUrl": aws.ToString(q.QueueUrl), "region": awsemu.Region,
				"accessKeyId": e.AccessKeyID, "secretAccessKey": e.SecretAccessKey, "endpointUrl": e.URL},
			func(t *testing.T, n int) []message { return sqsMessages(t, e, aws.ToString(q.QueueUrl), n) }
	}},
	{"SNS", func(t *testing.T) (string, map[string]any, func(*testing.T, int) []message) {
		e := awsemu.Start(t)
		ctx := context.Background()
		tp, err := e.SNS().CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String(awsemu.Name("orders"))})
		if err != nil {
			t.Fatal(err)
		}
		q, err := e.SQS().CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(awsemu.Name("orders-subscriber"))})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := e.SQS().GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.SNS().Subscribe(ctx, &awssns.SubscribeInput{TopicArn: tp.TopicArn, Protocol: aws.String("sqs"),
			Endpoint: aws.String(attrs.Attributes["QueueArn"]), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
			t.Fatal(err)
		}
		return "sns", map[string]any{"topicArn": aws.ToString(tp.TopicArn), "region": awsemu.Region,
				"accessKeyId": e.AccessKeyID, "secretAccessKey": e.SecretAccessKey, "endpointUrl": e.URL},
			func(t *testing.T, n int) []message { return sqsMessages(t, e, aws.ToString(q.QueueUrl), n) }
	}},
	{"PubSub", func(t *testing.T) (string, map[string]any, func(*testing.T, int) []message) {
		srv := pstest.NewServer()
		t.Cleanup(func() { srv.Close() })
		if _, err := srv.GServer.CreateTopic(context.Background(), &pb.Topic{Name: "projects/herald-test/topics/webhooks"}); err != nil {
			t.Fatal(err)
		}
		return "pubsub", map[string]any{"projectId": "herald-test", "topic": "webhooks", "emulator": srv.Addr},
			func(t *testing.T, n int) []message {
				t.Helper()
				if !heraldtest.Eventually(60*time.Second, func() bool { return len(srv.Messages()) >= n }) {
					t.Fatalf("the topic got %d messages, want %d", len(srv.Messages()), n)
				}
				var out []message
				for _, m := range srv.Messages() { // in the order the topic took them
					h := http.Header{}
					for k, v := range m.Attributes {
						h.Set(k, v)
					}
					out = append(out, message{body: m.Data, headers: h, key: m.OrderingKey})
				}
				return out
			}
	}},
}

// TestEveryType_OrderingByKeyAndRateLimitHold publishes, through the API,
// interleaved events of three ordering keys to an endpoint of each type
// ordered by key and limited to 5 publishes a second: the server gets
// every event once, signed, each key's events in order, and no second
// window of the endpoint's attempts holds more than five.
func TestEveryType_OrderingByKeyAndRateLimitHold(t *testing.T) {
	for _, tt := range everyType {
		t.Run(tt.name, func(t *testing.T) {
			field, cfg, read := tt.start(t)
			s := heraldtest.Start(t)
			_, secret := s.CreateEndpoint(s.Token, map[string]any{
				"type": strings.ToUpper(field), field: cfg, "ordering": "KEY",
				"rateLimit": map[string]any{"requests": 5, "per": "1s"},
			})
			ids := publishKeyed(t, s, 3, 5)
			var starts []time.Time
			for _, id := range ids {
				d := s.WaitDelivery(s.Token, id, 60*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
				for _, e := range d.Attempts.Edges {
					starts = append(starts, e.Node.StartedAt)
				}
			}
			msgs := read(t, len(ids))
			for _, m := range msgs {
				// Kafka and Pub/Sub carry the ordering key as the
				// message's key.
				var env struct{ Data struct{ Key int } }
				_ = json.Unmarshal(m.body, &env)
				if want := fmt.Sprintf("customer-%d", env.Data.Key); m.key != "" && m.key != want || m.key == "" && (field == "kafka" || field == "pubsub") {
					t.Errorf("message key %q, want the ordering key %q", m.key, want)
				}
			}
			checkOrder(t, secret, msgs, ids)
			sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
			for i := 5; i < len(starts); i++ {
				if gap := starts[i].Sub(starts[i-5]); gap < time.Second-50*time.Millisecond {
					t.Fatalf("attempts %d and %d started %s apart: more than 5 within a second", i-5, i, gap)
				}
			}
		})
	}
}
