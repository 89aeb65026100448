package nats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/destinationtest"
	"github.com/heraldhq/herald/destination/nats"
	"github.com/heraldhq/herald/internal/brokers"
)

// stream creates a stream capturing webhooks.> and returns a consumer of
// it.
func stream(t *testing.T, url, user, pass string) jetstream.Consumer {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.UserInfo(user, pass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WEBHOOKS", Subjects: []string{"webhooks.>"}, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func endpoint(addr, user, pass string) destination.Endpoint {
	cfg, _ := destination.Encode(nats.Config{URL: "nats://" + addr, Subject: "webhooks.{eventType}", Username: user, Password: pass})
	return destination.Endpoint{ID: "ep_nats", Type: nats.Type, Config: cfg, Timeout: 10 * time.Second}
}

func TestConformance(t *testing.T) {
	b := brokers.StartNATS(t, brokers.NATSOptions{User: "herald", Password: "s3cret-password"})
	c := stream(t, b.URL, "herald", "s3cret-password")
	proxy := destinationtest.NewProxy(t, b.Addr)
	destinationtest.Run(t, destinationtest.Harness{
		Spec:     nats.Spec(),
		Addr:     proxy.Addr,
		Endpoint: func(addr string) destination.Endpoint { return endpoint(addr, "herald", "s3cret-password") },
		Receive: func(ctx context.Context) (destinationtest.Received, error) {
			for {
				batch, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second))
				if err != nil {
					return destinationtest.Received{}, err
				}
				for m := range batch.Messages() {
					_ = m.Ack()
					h := map[string]string{}
					for k, v := range m.Headers() {
						h[strings.ToLower(k)] = strings.Join(v, ", ")
					}
					return destinationtest.Received{Body: m.Data(), Headers: h}, nil
				}
				if ctx.Err() != nil {
					return destinationtest.Received{}, ctx.Err()
				}
			}
		},
		Permanent:     endpoint(b.Addr, "herald", "wrong-password"),
		PermanentSays: "authorization",
		Conns:         proxy.Conns,
	})
}
