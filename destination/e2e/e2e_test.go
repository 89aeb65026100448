package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/heraldhq/herald/internal/brokers"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// message is what a consumer got.
type message struct {
	body    []byte
	headers http.Header
	key     string
}

// verify checks a message's Standard Webhooks signature with the
// endpoint's secret, as a consumer would, and returns its event ID.
func verify(t *testing.T, secret string, m message) string {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(m.body, m.headers); err != nil {
		t.Fatalf("signature of %s does not verify: %v (headers %v)", m.body, err, m.headers)
	}
	var env struct{ ID, Type string }
	if err := json.Unmarshal(m.body, &env); err != nil {
		t.Fatal(err)
	}
	if m.headers.Get("webhook-id") != env.ID || m.headers.Get("x-herald-event-type") != env.Type {
		t.Fatalf("headers %v do not match the envelope %s", m.headers, m.body)
	}
	return env.ID
}

// fastRetries retries quickly, so a restart of the broker is caught up
// within the test, and long enough (50 attempts, every 5 s at most: over
// three minutes) to outlast a broker that takes its time to start again
// on a loaded machine (brokers.Start gives up after two minutes).
var fastRetries = map[string]any{"maxAttempts": 50, "initialDelay": "200ms", "backoffMultiplier": 1.5, "maxDelay": "5s"}

// restartWait is how long the events of a broker restart may take to
// arrive: the broker's start plus a last retry.
const restartWait = 3 * time.Minute

// waitFirstAttempt waits until every event's delivery succeeded and
// checks that each took one attempt: the engine published to the
// restarted broker at once, without first failing on the dead connection.
func waitFirstAttempt(t *testing.T, s *heraldtest.Server, ids []string) {
	t.Helper()
	for _, id := range ids {
		d := s.WaitDelivery(s.Token, id, 60*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
		if d.AttemptCount != 1 {
			t.Errorf("an event published after the broker came back took %d attempts, want 1 (the dead connection should have been dropped when it closed):\n%v", d.AttemptCount, d)
		}
	}
}

// publishN publishes n events and returns their IDs.
func publishN(s *heraldtest.Server, from, n int) []string {
	ids := make([]string, n)
	for i := range n {
		ids[i] = s.Publish(s.Token, "order.created", map[string]any{"n": from + i})
	}
	return ids
}

// waitAll waits until every event's deliveries succeeded.
func waitAll(t *testing.T, s *heraldtest.Server, ids []string, timeout time.Duration) {
	t.Helper()
	for _, id := range ids {
		s.WaitDelivery(s.Token, id, timeout, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	}
}

// consumer gathers messages as they arrive.
type consumer struct {
	mu   sync.Mutex
	msgs []message
}

func (c *consumer) add(m message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *consumer) all() []message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]message(nil), c.msgs...)
}

// waitIDs waits until the consumer has every event and returns how many
// messages it got.
func (c *consumer) waitIDs(t *testing.T, secret string, ids []string) int {
	t.Helper()
	var seen map[string]int
	ok := heraldtest.Eventually(60*time.Second, func() bool {
		seen = map[string]int{}
		for _, m := range c.all() {
			seen[verify(t, secret, m)]++
		}
		for _, id := range ids {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	})
	if !ok {
		var missing []string
		for _, id := range ids {
			if seen[id] == 0 {
				missing = append(missing, id)
			}
		}
		t.Fatalf("%d of %d events never arrived: %v", len(missing), len(ids), missing)
	}
	return len(c.all())
}

func rabbitConsumer(t *testing.T, url string) *consumer {
	t.Helper()
	declareRabbit(t, url)
	return &consumer{}
}

// declareRabbit declares the exchange Herald publishes to and the queue
// the test consumes, bound to it, as a consumer's service does whenever it
// connects: a broker killed soon after a declaration may come back
// without it (RabbitMQ 3.10 lost a durable binding so in a CI run).
func declareRabbit(t *testing.T, url string) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("webhooks", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("orders", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("orders", "order.#", "webhooks", false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

// drainRabbit consumes the queue until the connection breaks, reconnecting
// until the test ends.
func drainRabbit(t *testing.T, url string, c *consumer) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			conn, err := amqp.Dial(url)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			ch, err := conn.Channel()
			if err == nil {
				var ds <-chan amqp.Delivery
				if ds, err = ch.Consume("orders", "", false, false, false, false, nil); err == nil {
					for d := range ds {
						h := http.Header{}
						for k, v := range d.Headers {
							h.Set(k, fmt.Sprint(v))
						}
						c.add(message{body: d.Body, headers: h})
						_ = d.Ack(false)
					}
				}
			}
			conn.Close()
		}
	}()
}

func TestRabbitMQ_EveryEventArrivesSignedAcrossABrokerRestart(t *testing.T) {
	b := brokers.StartRabbitMQ(t)
	c := rabbitConsumer(t, b.URL)
	drainRabbit(t, b.URL, c)
	s := heraldtest.Start(t)
	_, secret := s.CreateEndpoint(s.Token, map[string]any{
		"type":        "RABBITMQ",
		"rabbitmq":    map[string]any{"url": b.URL, "username": "guest", "password": "guest", "exchange": "webhooks"},
		"retryPolicy": fastRetries,
	})
	ids := publishN(s, 0, 10)
	waitAll(t, s, ids, 30*time.Second)
	// A restart while nothing is published: the first publish after it
	// goes through at once, on a new connection.
	restart := func() {
		t.Helper()
		down := time.Now()
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		up := time.Now()
		declareRabbit(t, b.URL)
		after := publishN(s, len(ids), 10)
		waitFirstAttempt(t, s, after)
		t.Logf("the broker was down %s; the events published once it was back were confirmed within %s", up.Sub(down).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
		ids = append(ids, after...)
	}
	b.Kill()
	restart()
	// A crash while events are published: they are retried until the
	// broker is back.
	b.Kill()
	ids = append(ids, publishN(s, len(ids), 20)...)
	restart()
	waitAll(t, s, ids, restartWait)
	got := c.waitIDs(t, secret, ids)
	t.Logf("%d events, %d messages consumed (%d duplicates: redelivered by the broker after its crash, or sent again after an unconfirmed publish)", len(ids), got, got-len(ids))
}

func natsStream(t *testing.T, url string) jetstream.Stream {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WEBHOOKS", Subjects: []string{"webhooks.>"}, Duplicates: 10 * time.Minute, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// natsMessages reads every message of the stream.
func natsMessages(t *testing.T, url string) []message {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "WEBHOOKS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []message
	for uint64(len(out)) < info.NumPending {
		batch, err := cons.Fetch(int(info.NumPending)-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			h := http.Header{}
			for k, vs := range m.Headers() {
				h.Set(k, strings.Join(vs, ", "))
			}
			out = append(out, message{body: m.Data(), headers: h})
		}
	}
	return out
}

func TestNATS_EveryEventArrivesOnceAcrossAServerRestart(t *testing.T) {
	b := brokers.StartNATS(t, brokers.NATSOptions{})
	natsStream(t, b.URL)
	s := heraldtest.Start(t)
	_, secret := s.CreateEndpoint(s.Token, map[string]any{
		"type":        "NATS",
		"nats":        map[string]any{"url": b.URL, "subject": "webhooks.{eventType}"},
		"retryPolicy": fastRetries,
	})
	ids := publishN(s, 0, 10)
	waitAll(t, s, ids, 30*time.Second)
	b.Kill()
	ids = append(ids, publishN(s, 10, 20)...)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, publishN(s, 30, 10)...)
	waitAll(t, s, ids, restartWait)
	msgs := natsMessages(t, b.URL)
	seen := map[string]int{}
	for _, m := range msgs {
		seen[verify(t, secret, m)]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("event %s is in the stream %d times, want once (JetStream deduplicates by the delivery's message ID)", id, seen[id])
		}
	}
}

func TestNATS_OrderingByKeyHolds(t *testing.T) {
	b := brokers.StartNATS(t, brokers.NATSOptions{})
	natsStream(t, b.URL)
	s := heraldtest.Start(t)
	s.CreateEndpoint(s.Token, map[string]any{
		"type": "NATS", "nats": map[string]any{"url": b.URL, "subject": "webhooks.{eventType}"}, "ordering": "KEY",
	})
	const keys, per = 4, 15
	var ids []string
	for i := range per {
		for k := range keys {
			var out struct{ PublishEvent struct{ ID string } }
			s.Do(s.Token, `mutation($in: PublishEventInput!) { publishEvent(input: $in) { id } }`, map[string]any{"in": map[string]any{
				"eventType": "order.created", "orderingKey": fmt.Sprintf("customer-%d", k), "payload": map[string]any{"key": k, "seq": i},
			}}).Decode(t, &out)
			ids = append(ids, out.PublishEvent.ID)
		}
	}
	waitAll(t, s, ids, 60*time.Second)
	last := map[int]int{}
	for _, m := range natsMessages(t, b.URL) {
		var env struct{ Data struct{ Key, Seq int } }
		_ = json.Unmarshal(m.body, &env)
		if prev, ok := last[env.Data.Key]; ok && env.Data.Seq != prev+1 {
			t.Fatalf("key %d: seq %d arrived after %d", env.Data.Key, env.Data.Seq, prev)
		}
		last[env.Data.Key] = env.Data.Seq
	}
}

func TestNATS_RateLimitHolds(t *testing.T) {
	b := brokers.StartNATS(t, brokers.NATSOptions{})
	natsStream(t, b.URL)
	s := heraldtest.Start(t)
	s.CreateEndpoint(s.Token, map[string]any{
		"type": "NATS", "nats": map[string]any{"url": b.URL, "subject": "webhooks.{eventType}"},
		"rateLimit": map[string]any{"requests": 5, "per": "1s"},
	})
	ids := publishN(s, 0, 15)
	waitAll(t, s, ids, 60*time.Second)
	// The stream's own timestamps say when each message arrived.
	nc, _ := natsgo.Connect(b.URL)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, _ := js.Stream(context.Background(), "WEBHOOKS")
	var at []time.Time
	for seq := uint64(1); seq <= 15; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		at = append(at, m.Time)
	}
	for i := 5; i < len(at); i++ {
		if gap := at[i].Sub(at[i-5]); gap < time.Second-50*time.Millisecond {
			t.Fatalf("messages %d and %d arrived %s apart: more than 5 within a second", i-5, i, gap)
		}
	}
}
