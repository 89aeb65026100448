package rabbitmq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/destinationtest"
	"github.com/heraldhq/herald/destination/rabbitmq"
	"github.com/heraldhq/herald/internal/brokers"
)

// consume declares a topic exchange "webhooks" and a durable queue bound
// to it with every routing key, and returns its messages.
func consume(t *testing.T, url string) <-chan amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("webhooks", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("herald-test", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "#", "webhooks", false, nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func endpoint(addr, exchange string) destination.Endpoint {
	cfg, _ := destination.Encode(rabbitmq.Config{URL: "amqp://" + addr + "/", Username: "guest", Password: "guest", Exchange: exchange, RoutingKey: "herald.{eventType}"})
	return destination.Endpoint{ID: "ep_rabbit", Type: rabbitmq.Type, Config: cfg, Timeout: 10 * time.Second}
}

func TestConformance(t *testing.T) {
	b := brokers.StartRabbitMQ(t)
	msgs := consume(t, b.URL)
	proxy := destinationtest.NewProxy(t, b.Addr)
	destinationtest.Run(t, destinationtest.Harness{
		Spec:     rabbitmq.Spec(),
		Addr:     proxy.Addr,
		Endpoint: func(addr string) destination.Endpoint { return endpoint(addr, "webhooks") },
		Receive: func(ctx context.Context) (destinationtest.Received, error) {
			select {
			case d := <-msgs:
				h := map[string]string{}
				for k, v := range d.Headers {
					h[k] = fmt.Sprint(v)
				}
				if d.DeliveryMode != amqp.Persistent || d.ContentType != "application/json" || d.RoutingKey != "herald.order.created" {
					return destinationtest.Received{}, fmt.Errorf("delivery mode %d, content type %q, routing key %q: want persistent JSON routed by the template",
						d.DeliveryMode, d.ContentType, d.RoutingKey)
				}
				return destinationtest.Received{Body: d.Body, Headers: h}, nil
			case <-ctx.Done():
				return destinationtest.Received{}, ctx.Err()
			}
		},
		Permanent:     endpoint(b.Addr, "no-such-exchange"),
		PermanentSays: "not found",
		Conns:         proxy.Conns,
	})
}
