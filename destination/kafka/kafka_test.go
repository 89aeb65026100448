package kafka_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/destinationtest"
	"github.com/heraldhq/herald/destination/kafka"
	"github.com/heraldhq/herald/signing"
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
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "webhooks", "busy"),
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
	// The cluster answers every produce to "busy" with Kafka's throttling
	// error.
	cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "busy", Err: kerr.ThrottlingQuotaExceeded, Count: -1})
	addr := cluster.ListenAddrs()[0]
	throttled := endpoint(addr, "busy")
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
		Throttled:     &throttled,
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

// TestErrors_ClassifiedWithinOneAttempt: the producer retries an error the
// cluster answers once (a leader moving) within the attempt, and reports
// one it keeps answering at once (within about a second), classified:
// throttling slows the endpoint down, a missing authorization fails it.
func TestErrors_ClassifiedWithinOneAttempt(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "moving", "busy", "forbidden"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "moving", Err: kerr.NotLeaderForPartition, Count: 1})
	cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "busy", Err: kerr.ThrottlingQuotaExceeded, Count: -1})
	cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "forbidden", Err: kerr.TopicAuthorizationFailed, Count: -1})
	drivers := destination.NewRegistry(kafka.Spec()).Open(destination.Env{Policy: destination.Policy{AllowHTTP: true, AllowPrivate: true}})
	t.Cleanup(func() { _ = drivers.Close() })
	d, err := drivers.Driver(kafka.Type)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		topic string
		want  destination.Outcome
		says  string
	}{
		{"moving", destination.Delivered, ""},
		{"busy", destination.Throttled, "throttled by the cluster"},
		{"forbidden", destination.Permanent, "not authorized"},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			ep := endpoint(cluster.ListenAddrs()[0], tt.topic)
			ep.Timeout = 20 * time.Second
			tg, err := d.Prepare(&ep)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			r := tg.Send(ctx, &destination.Message{ID: "evt_" + tt.topic, EventType: "order.created", DeliveryID: "dlv_1", Attempt: 1,
				Body: []byte(`{}`), Signer: signing.NewSigner([]byte("0123456789abcdef0123456789abcdef"))})
			if r.Outcome != tt.want || !strings.Contains(r.Error, tt.says) {
				t.Fatalf("outcome = %s (%q), want %s saying %q", r.Outcome, r.Error, tt.want, tt.says)
			}
			// Well within the attempt's timeout: the error is reported,
			// not retried until the attempt times out.
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the attempt took %s", took)
			}
		})
	}
}
