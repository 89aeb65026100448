package pubsub_test

import (
	"context"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/destinationtest"
	"github.com/heraldhq/herald/destination/pubsub"
)

func endpoint(addr, topic string) destination.Endpoint {
	cfg, _ := destination.Encode(pubsub.Config{ProjectID: "herald-test", Topic: topic, Emulator: addr})
	return destination.Endpoint{ID: "ep_pubsub", Type: pubsub.Type, Config: cfg, Timeout: 10 * time.Second}
}

// TestConformance runs the suite against pstest, Google's in-process
// implementation of the Pub/Sub API (an emulator, not Pub/Sub itself).
func TestConformance(t *testing.T) {
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.GServer.CreateTopic(context.Background(), &pb.Topic{Name: "projects/herald-test/topics/webhooks"}); err != nil {
		t.Fatal(err)
	}
	proxy := destinationtest.NewProxy(t, srv.Addr)
	seen := 0
	destinationtest.Run(t, destinationtest.Harness{
		Spec:     pubsub.Spec(),
		Addr:     proxy.Addr,
		Endpoint: func(addr string) destination.Endpoint { return endpoint(addr, "webhooks") },
		Receive: func(ctx context.Context) (destinationtest.Received, error) {
			for {
				msgs := srv.Messages()
				if seen < len(msgs) {
					m := msgs[seen]
					seen++
					key := m.OrderingKey
					return destinationtest.Received{Body: m.Data, Headers: m.Attributes, Key: key}, nil
				}
				select {
				case <-ctx.Done():
					return destinationtest.Received{}, ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
		},
		Permanent:     endpoint(srv.Addr, "no-such-topic"),
		PermanentSays: "not found",
		Conns:         proxy.Conns,
		// The client keeps a small pool of gRPC connections.
		MaxConns: 4,
	})
}
