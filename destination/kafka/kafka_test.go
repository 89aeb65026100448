package kafka_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/destinationtest"
	"github.com/heraldhq/herald/destination/kafka"
)

// countingListener counts the connections a listener has open.
type countingListener struct {
	net.Listener
	mu   sync.Mutex
	open map[net.Conn]bool
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.open[c] = true
	l.mu.Unlock()
	return &countedConn{Conn: c, l: l}, nil
}

func (l *countingListener) conns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c.Conn)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

func endpoint(addr, topic string) destination.Endpoint {
	cfg, _ := destination.Encode(kafka.Config{Brokers: []string{addr}, Topic: topic})
	return destination.Endpoint{ID: "ep_kafka", Type: kafka.Type, Config: cfg, Timeout: 10 * time.Second}
}

// TestConformance runs the suite against kfake, franz-go's in-process
// implementation of Kafka's wire protocol (Debian has no Kafka).
func TestConformance(t *testing.T) {
	var ln *countingListener
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "webhooks"),
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			ln = &countingListener{Listener: l, open: make(map[net.Conn]bool)}
			return ln, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addr := cluster.ListenAddrs()[0]
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("webhooks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(consumer.Close)
	var pending []*kgo.Record
	// The consumer's own connections are not Herald's.
	base := -1
	destinationtest.Run(t, destinationtest.Harness{
		Spec:     kafka.Spec(),
		Addr:     addr,
		Endpoint: func(a string) destination.Endpoint { return endpoint(a, "webhooks") },
		Receive: func(ctx context.Context) (destinationtest.Received, error) {
			for len(pending) == 0 {
				fs := consumer.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					return destinationtest.Received{}, err
				}
				pending = append(pending, fs.Records()...)
			}
			r := pending[0]
			pending = pending[1:]
			h := map[string]string{}
			for _, rh := range r.Headers {
				h[strings.ToLower(rh.Key)] = string(rh.Value)
			}
			return destinationtest.Received{Body: r.Value, Headers: h, Key: string(r.Key)}, nil
		},
		Permanent:     endpoint(addr, "no-such-topic"),
		PermanentSays: "does not exist",
		Keyed:         true,
		Conns: func() int {
			if base < 0 {
				base = ln.conns()
			}
			return ln.conns() - base
		},
		// A client keeps up to three connections to a broker: for
		// metadata and other requests, for produce requests, and the one
		// the first ping opened; one client serves every endpoint.
		MaxConns: 3,
	})
}
