package e2e_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/heraldhq/herald/internal/awsemu"
	"github.com/heraldhq/herald/internal/brokers"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// TestWrongCredentials_FailSayWhyAndDisableTheEndpoint: for every type
// whose server checks credentials, an endpoint with a wrong password or
// key fails its deliveries at once (no retry helps) with a reason a person
// can act on, its health turns to ATTENTION, and after DisableAfter failed
// deliveries it is turned off saying why, as an HTTP endpoint answering
// 401 would be. (Pub/Sub's emulator does not check credentials.)
func TestWrongCredentials_FailSayWhyAndDisableTheEndpoint(t *testing.T) {
	tests := []struct {
		name string
		// endpoint starts the server and returns the endpoint's input
		// with a wrong credential.
		endpoint func(t *testing.T) map[string]any
		says     string
	}{
		{"RabbitMQ", func(t *testing.T) map[string]any {
			b := brokers.StartRabbitMQ(t)
			rabbitConsumer(t, b.URL)
			return map[string]any{"type": "RABBITMQ",
				"rabbitmq": map[string]any{"url": b.URL, "username": "guest", "password": "not-the-password", "exchange": "webhooks"}}
		}, "access refused"},
		{"NATS", func(t *testing.T) map[string]any {
			b := brokers.StartNATS(t, brokers.NATSOptions{User: "herald", Password: "the-password"})
			return map[string]any{"type": "NATS",
				"nats": map[string]any{"url": b.URL, "subject": "webhooks.{eventType}", "username": "herald", "password": "not-the-password"}}
		}, "authorization violation"},
		{"Kafka", func(t *testing.T) map[string]any {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "webhooks"), kfake.EnableSASL(),
				kfake.Superuser("PLAIN", "herald", "the-password"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			// kfake drops the connection on a wrong password; a Kafka
			// broker first answers SASL_AUTHENTICATION_FAILED, as this
			// control does.
			c.ControlKey(int16(kmsg.SASLAuthenticate), func(r kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				req := r.(*kmsg.SASLAuthenticateRequest)
				if parts := bytes.Split(req.SASLAuthBytes, []byte{0}); len(parts) == 3 && string(parts[2]) != "the-password" {
					resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
					resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
					resp.ErrorMessage = aws.String("Authentication failed: Invalid username or password")
					return resp, nil, true
				}
				return nil, nil, false
			})
			return map[string]any{"type": "KAFKA", "kafka": map[string]any{"brokers": c.ListenAddrs(), "topic": "webhooks",
				"sasl": "PLAIN", "username": "herald", "password": "not-the-password"}}
		}, "authentication failed"},
		{"SQS", func(t *testing.T) map[string]any {
			e := awsemu.Start(t)
			q, err := e.SQS().CreateQueue(context.Background(), &awssqs.CreateQueueInput{QueueName: aws.String(awsemu.Name("webhooks"))})
			if err != nil {
				t.Fatal(err)
			}
			return map[string]any{"type": "SQS", "sqs": map[string]any{"queueUrl": aws.ToString(q.QueueUrl), "region": awsemu.Region,
				"accessKeyId": e.AccessKeyID, "secretAccessKey": "not-the-secret-access-key", "endpointUrl": e.URL}}
		}, "access denied"},
		{"SNS", func(t *testing.T) map[string]any {
			e := awsemu.Start(t)
			tp, err := e.SNS().CreateTopic(context.Background(), &awssns.CreateTopicInput{Name: aws.String(awsemu.Name("webhooks"))})
			if err != nil {
				t.Fatal(err)
			}
			return map[string]any{"type": "SNS", "sns": map[string]any{"topicArn": aws.ToString(tp.TopicArn), "region": awsemu.Region,
				"accessKeyId": "AKIAUNKNOWN000000000", "secretAccessKey": e.SecretAccessKey, "endpointUrl": e.URL}}
		}, "access denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.endpoint(t)
			// Five attempts allowed: a permanent failure uses one.
			in["retryPolicy"] = map[string]any{"maxAttempts": 5, "initialDelay": "100ms"}
			s := heraldtest.Start(t, func(c *server.Config) { c.DisableAfter = 2 })
			id, _ := s.CreateEndpoint(s.Token, in)
			for i, ev := range publishN(s, 0, 2) {
				d := s.WaitDelivery(s.Token, ev, 60*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
				if d.LastError == nil || !strings.Contains(strings.ToLower(*d.LastError), tt.says) {
					t.Fatalf("delivery %d: last error = %q, want it to say %q", i, deref(d.LastError), tt.says)
				}
				if d.AttemptCount != 1 {
					t.Errorf("delivery %d took %d attempts: a refused credential is not worth retrying", i, d.AttemptCount)
				}
			}
			var out struct {
				Node struct {
					IsActive       bool
					Health         string
					DisabledReason *string
				}
			}
			ok := heraldtest.Eventually(30*time.Second, func() bool {
				s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { isActive health disabledReason } } }`, map[string]any{"id": id}).Decode(t, &out)
				return !out.Node.IsActive
			})
			if !ok || out.Node.Health != "ATTENTION" || out.Node.DisabledReason == nil || !strings.Contains(strings.ToLower(*out.Node.DisabledReason), tt.says) {
				t.Fatalf("endpoint = %+v, want it turned off after 2 failed deliveries, health ATTENTION, saying %q", out.Node, tt.says)
			}
		})
	}
}
