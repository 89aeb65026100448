package relay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/pgnotify"
	"github.com/heraldhq/herald/relay"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// replica starts one replica's bus with a relay on the database.
func replica(t *testing.T, d *db.DB) (*bus.Bus, *pgnotify.Listener, *relay.Relay, *pgnotify.Sender) {
	t.Helper()
	id := pgnotify.NewReplicaID()
	s, err := pgnotify.NewSender(pgnotify.SenderConfig{DB: d.Write, ReplicaID: id})
	if err != nil {
		t.Fatal(err)
	}
	l, err := pgnotify.NewListener(pgnotify.ListenerConfig{ConnConfig: d.ConnConfig(), ReplicaID: id})
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.Config{Sender: s, Listener: l, Codec: graph.LiveCodec{}})
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New(bus.Config{Relay: r, Buffer: 2048}) // the test reads a burst
	if err := r.Attach(b); err != nil {
		t.Fatal(err)
	}
	s.Start()
	l.Start()
	t.Cleanup(func() {
		b.Close()
		r.Close()
		l.Close()
		_ = s.Close(context.Background())
	})
	return b, l, r, s
}

// waitWanted waits until a relay knows that another replica has
// subscribers (or has none, with want false).
func waitWanted(t *testing.T, r *relay.Relay, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.Wanted() != want {
		if time.Now().After(deadline) {
			t.Fatalf("relay Wanted() stayed %v", !want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRelay_ASubscriberSeesAnotherReplicasUpdatesInOrder(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, db.Config{DSN: pgtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, listenerA, _, _ := replica(t, d)
	b, _, relayB, _ := replica(t, d)
	wctx0, cancel0 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel0()
	if err := listenerA.Listening(wctx0); err != nil {
		t.Fatal(err)
	}
	sub, err := a.Subscribe(bus.Filter{Topic: bus.Deliveries, AppID: "app_1", EventType: "order.*"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := listenerA.Listening(wctx); err != nil {
		t.Fatal(err)
	}

	waitWanted(t, relayB, true)      // B learned that A has a subscriber
	observer := graph.NewObserver(b) // B has no subscribers of its own
	const n = 1000
	at := time.Now().UTC()
	for i := range n {
		typ := "order.created"
		if i%2 == 1 {
			typ = "contact.updated" // filtered out on A
		}
		observer.DeliveryChanged(dispatch.DeliveryChange{Kind: dispatch.Created, AppID: "app_1", DeliveryID: fmt.Sprintf("dlv_%d", i),
			EventType: typ, Status: "PENDING", At: at})
	}
	observer.DeliveryChanged(dispatch.DeliveryChange{AppID: "app_2", DeliveryID: "other app", EventType: "order.created"})
	for i := 0; i < n; i += 2 {
		select {
		case m := <-sub.C:
			c := m.Payload.(dispatch.DeliveryChange)
			if want := fmt.Sprintf("dlv_%d", i); c.DeliveryID != want || c.EventType != "order.created" || !c.At.Equal(at) {
				t.Fatalf("update %d on A: %+v, want %s", i/2, c, want)
			}
		case <-sub.Done():
			t.Fatalf("subscription ended: %v", sub.Err())
		case <-time.After(10 * time.Second):
			t.Fatalf("update %d never reached replica A", i/2)
		}
	}
}

// Replicas send nothing while no other replica has subscribers, start when
// one has, and stop when its last subscription closes.
func TestRelay_SendsOnlyWhileAnotherReplicaHasSubscribers(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, db.Config{DSN: pgtest.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, listenerA, _, _ := replica(t, d)
	b, listenerB, relayB, senderB := replica(t, d)
	for _, l := range []*pgnotify.Listener{listenerA, listenerB} {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := l.Listening(wctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	observer := graph.NewObserver(b)
	publish := func(n int) {
		for i := range n {
			observer.DeliveryChanged(dispatch.DeliveryChange{Kind: dispatch.Created, AppID: "app_1", DeliveryID: fmt.Sprintf("dlv_%d", i), EventType: "order.created"})
		}
	}
	publish(1000)
	if sent := senderB.Stats().Messages; sent != 0 {
		t.Fatalf("B relayed %d messages while nobody anywhere subscribed", sent)
	}
	sub, err := a.Subscribe(bus.Filter{Topic: bus.Deliveries, AppID: "app_1"})
	if err != nil {
		t.Fatal(err)
	}
	waitWanted(t, relayB, true)
	publish(1)
	select {
	case <-sub.C:
	case <-time.After(10 * time.Second):
		t.Fatal("A's subscriber got nothing once B knew of it")
	}
	sub.Close()
	waitWanted(t, relayB, false)
}
