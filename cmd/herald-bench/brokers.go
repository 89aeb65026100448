package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/heraldhq/herald/internal/brokers"
)

// The broker scenarios deliver to a real broker started for the scenario
// on loopback (Debian's rabbitmq-server and nats-server, as the tests
// start them): like throughput, one endpoint and n events, measuring
// completed deliveries per second, and checking that the broker holds
// every event. Without the broker installed they are skipped with a note,
// unless HERALD_REQUIRE_RABBITMQ or HERALD_REQUIRE_NATS is set.

// brokerMissing reports a broker that is not installed: a note, or an
// error when env requires it.
func (s *scenario) brokerMissing(err error, env string) error {
	if errors.Is(err, brokers.ErrNotInstalled) && os.Getenv(env) == "" {
		s.note("skipped: %v (set %s to fail instead)", err, env)
		return nil
	}
	return err
}

// brokerThroughput publishes n events to one endpoint created with the
// input fields in endpoint and measures completed deliveries per second.
func (s *scenario) brokerThroughput(ctx context.Context, n int, endpoint map[string]any) error {
	id, err := s.api.createEndpointWith(ctx, "bench broker", "", []string{"*"}, endpoint)
	if err != nil {
		return err
	}
	start := time.Now()
	published := make(chan error, 1)
	go func() { published <- s.publishAll(ctx, s.api, "order.created", n, 4) }()
	done, err := s.waitSuccesses(ctx, []string{id}, n, start)
	if err != nil {
		return err
	}
	if err := <-published; err != nil {
		return err
	}
	el := done.Sub(start)
	s.metric("deliveries", float64(n))
	s.metric("deliveriesPerSec", float64(n)/el.Seconds())
	return nil
}

// rabbitmq delivers to a RabbitMQ queue (default exchange, publisher
// confirms, persistent messages) that a consumer drains.
func (s *scenario) rabbitmq(ctx context.Context, n int) error {
	b, err := brokers.RunRabbitMQ()
	if err != nil {
		return s.brokerMissing(err, "HERALD_REQUIRE_RABBITMQ")
	}
	defer b.Close()
	conn, err := amqp.Dial(b.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare("bench", true, false, false, false, nil); err != nil {
		return err
	}
	msgs, err := ch.Consume("bench", "", true, false, false, false, nil)
	if err != nil {
		return err
	}
	var got atomic.Int64
	go func() {
		for range msgs {
			got.Add(1)
		}
	}()
	if err := s.brokerThroughput(ctx, n, map[string]any{"type": "RABBITMQ",
		"rabbitmq": map[string]any{"url": b.URL, "username": "guest", "password": "guest", "routingKey": "bench"}}); err != nil {
		return err
	}
	if !waitFor(30*time.Second, func() bool { return got.Load() >= int64(n) }) {
		return fmt.Errorf("the queue's consumer got %d messages, want %d", got.Load(), n)
	}
	s.metric("duplicates", float64(got.Load()-int64(n)))
	s.note("%d events to one RabbitMQ endpoint (publisher confirms, persistent messages, a durable queue drained by a consumer)", n)
	return nil
}

// nats delivers to a NATS JetStream stream (file storage, acknowledged
// publishes, deduplication by message ID).
func (s *scenario) nats(ctx context.Context, n int) error {
	b, err := brokers.RunNATS(brokers.NATSOptions{})
	if err != nil {
		return s.brokerMissing(err, "HERALD_REQUIRE_NATS")
	}
	defer b.Close()
	nc, err := natsgo.Connect(b.URL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute})
	if err != nil {
		return err
	}
	if err := s.brokerThroughput(ctx, n, map[string]any{"type": "NATS",
		"nats": map[string]any{"url": b.URL, "subject": "bench.{eventType}"}}); err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs != uint64(n) {
		return fmt.Errorf("the stream holds %d messages, want %d", info.State.Msgs, n)
	}
	s.note("%d events to one NATS JetStream endpoint (file storage, every publish acknowledged by the stream)", n)
	return nil
}
