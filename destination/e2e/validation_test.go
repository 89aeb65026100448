package e2e_test

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

const createOp = `mutation($in: CreateEndpointInput!) { createEndpoint(input: $in) { endpoint { id type url } } }`

func TestDestinations_BadConfigurationIsRefusedWithTheFieldNamed(t *testing.T) {
	s := heraldtest.Start(t)
	saKey := `{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\n..."}`
	aws := func(m map[string]any) map[string]any {
		out := map[string]any{"region": "eu-west-1", "accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret-key-0123456789"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name  string
		in    map[string]any
		field string
	}{
		{"rabbitmq without url", map[string]any{"type": "RABBITMQ", "rabbitmq": map[string]any{"exchange": "x"}}, "input.rabbitmq.url"},
		{"rabbitmq http url", map[string]any{"type": "RABBITMQ", "rabbitmq": map[string]any{"url": "http://rabbit.example.com"}}, "input.rabbitmq.url"},
		{"rabbitmq bad template", map[string]any{"rabbitmq": map[string]any{"url": "amqp://rabbit.example.com/", "routingKey": "{type}"}}, "input.rabbitmq.routingKey"},
		{"rabbitmq unknown field", map[string]any{"type": "RABBITMQ", "rabbitmq": map[string]any{"url": "amqp://rabbit.example.com/"}, "url": "https://example.com"}, "input.url"},
		{"kafka without brokers", map[string]any{"kafka": map[string]any{"topic": "t"}}, "input.kafka.brokers"},
		{"kafka bad topic", map[string]any{"kafka": map[string]any{"brokers": []string{"kafka.example.com:9092"}, "topic": "a topic"}}, "input.kafka.topic"},
		{"kafka sasl without password", map[string]any{"kafka": map[string]any{"brokers": []string{"kafka.example.com:9092"}, "topic": "t", "sasl": "PLAIN", "username": "u"}}, "input.kafka.username"},
		{"kafka bad sasl", map[string]any{"kafka": map[string]any{"brokers": []string{"kafka.example.com:9092"}, "topic": "t", "sasl": "GSSAPI"}}, "input.kafka.sasl"},
		{"nats without subject", map[string]any{"nats": map[string]any{"url": "nats://nats.example.com:4222"}}, "input.nats.subject"},
		{"nats wildcard subject", map[string]any{"nats": map[string]any{"url": "nats://nats.example.com:4222", "subject": "a.>"}}, "input.nats.subject"},
		{"sqs bad queue url", map[string]any{"sqs": aws(map[string]any{"queueUrl": "https://sqs.eu-west-1.amazonaws.com/"})}, "input.sqs.queueUrl"},
		{"sqs bad region", map[string]any{"sqs": aws(map[string]any{"queueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q", "region": "Europe"})}, "input.sqs.region"},
		{"sqs without secret", map[string]any{"sqs": map[string]any{"queueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q", "region": "eu-west-1", "accessKeyId": "AKIA"}}, "input.sqs.secretAccessKey"},
		{"sns bad arn", map[string]any{"sns": aws(map[string]any{"topicArn": "arn:aws:sqs:eu-west-1:123456789012:q"})}, "input.sns.topicArn"},
		{"pubsub without key", map[string]any{"pubsub": map[string]any{"projectId": "my-project", "topic": "webhooks"}}, "input.pubsub.credentialsJson"},
		{"pubsub bad key", map[string]any{"pubsub": map[string]any{"projectId": "my-project", "topic": "webhooks", "credentialsJson": "{}"}}, "input.pubsub.credentialsJson"},
		{"pubsub bad topic", map[string]any{"pubsub": map[string]any{"projectId": "my-project", "topic": "goog-x", "credentialsJson": saKey}}, "input.pubsub.topic"},
		{"config of another type", map[string]any{"type": "KAFKA", "nats": map[string]any{"url": "nats://n.example.com", "subject": "s"}}, "input.nats"},
		{"broker without its config", map[string]any{"type": "SQS"}, "input.sqs"},
		{"http without url", map[string]any{}, "input.url"},
		{"broker with auth", map[string]any{"nats": map[string]any{"url": "nats://n.example.com", "subject": "s"}, "auth": map[string]any{"type": "BEARER", "token": "t"}}, "input.auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := map[string]any{"name": "broker", "eventTypes": []string{"*"}}
			for k, v := range tt.in {
				in[k] = v
			}
			r := s.Do(s.Token, createOp, map[string]any{"in": in})
			r.WantError(t, "BAD_USER_INPUT")
			if r.Field() != tt.field {
				t.Fatalf("field = %q, want %q: %s", r.Field(), tt.field, r.Body)
			}
		})
	}
}

func TestDestinations_PrivateBrokerRefusedWithoutAllowPrivate(t *testing.T) {
	s := heraldtest.Start(t, func(c *server.Config) { c.AllowPrivateDestinations = false })
	for field, cfg := range map[string]map[string]any{
		"rabbitmq": {"url": "amqp://127.0.0.1:5672/"},
		"nats":     {"url": "nats://localhost:4222", "subject": "s"},
		"kafka":    {"brokers": []string{"10.1.2.3:9092"}, "topic": "t"},
		"sqs":      {"queueUrl": "http://169.254.169.254/1/q", "region": "eu-west-1", "accessKeyId": "AKIA", "secretAccessKey": "secret-key-0123456789"},
		"sns": {"topicArn": "arn:aws:sns:eu-west-1:123456789012:webhooks", "region": "eu-west-1", "accessKeyId": "AKIA", "secretAccessKey": "secret-key-0123456789",
			"endpointUrl": "http://192.168.1.10:4566"},
		"pubsub": {"projectId": "my-project", "topic": "webhooks", "emulator": "[::1]:8085"},
	} {
		r := s.Do(s.Token, createOp, map[string]any{"in": map[string]any{"name": "private", "eventTypes": []string{"*"}, field: cfg}})
		r.WantError(t, "BAD_USER_INPUT")
		if !strings.HasPrefix(r.Field(), "input."+field) || !strings.Contains(r.Errors[0].Message, "allow") {
			t.Errorf("%s: error %s, want the address refused, naming the field and how to allow it", field, r.Body)
		}
	}
}

func TestDestinations_ConfigurationReadsBackWithSecretsMasked(t *testing.T) {
	s := heraldtest.Start(t)
	var out struct {
		CreateEndpoint struct {
			Endpoint struct {
				Type, URL string
				Rabbitmq  struct{ URL, Username, Password, Exchange, RoutingKey string }
				Kafka     *struct{ Topic string }
			}
		}
	}
	s.Do(s.Token, `mutation($in: CreateEndpointInput!) { createEndpoint(input: $in) { endpoint {
		type url rabbitmq { url username password exchange routingKey } kafka { topic } } } }`, map[string]any{"in": map[string]any{
		"name": "rabbit", "eventTypes": []string{"*"},
		"rabbitmq": map[string]any{"url": "amqps://rabbit.example.com/prod", "username": "herald", "password": "hunter2-long-password", "exchange": "events"},
	}}).Decode(t, &out)
	ep := out.CreateEndpoint.Endpoint
	if ep.Type != "RABBITMQ" || ep.URL != "amqps://rabbit.example.com/prod?exchange=events" || ep.Kafka != nil {
		t.Fatalf("endpoint = %+v", ep)
	}
	if ep.Rabbitmq.Password != "****word" || ep.Rabbitmq.Username != "herald" || ep.Rabbitmq.RoutingKey != "{eventType}" {
		t.Fatalf("rabbitmq = %+v, want the password masked and the default routing key", ep.Rabbitmq)
	}
}
