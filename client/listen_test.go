package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/client/webhook"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// forwarded records what a Listen handler was given.
type forwarded struct {
	mu        sync.Mutex
	events    []string
	attempts  []int
	connected []int
}

func (f *forwarded) add(d *client.ListenerDelivery) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, d.EventID)
	f.attempts = append(f.attempts, d.Attempt)
	return len(f.events)
}

func (f *forwarded) snapshot() (events []string, attempts, connected []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...), append([]int(nil), f.attempts...), append([]int(nil), f.connected...)
}

// Listen hands each delivery of a listener to the handler, signed with the
// listener's secret; the handler's answer becomes the attempt (a failure is
// retried by Herald); it carries on across a server restart, catching up
// on what was published meanwhile; and it ends with the API's error once
// the listener is deleted.
func TestListen_ForwardsAcrossARestartUntilTheListenerIsDeleted(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	proxy := heraldtest.NewProxy(t, s.URL)
	c := newClient(t, proxy.URL, s.Token, client.LiveConfig{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ep, secret, err := c.CreateListener(ctx(t), client.CreateListenerInput{
		EventTypes: []string{"order.*"}, ForwardTo: ptr("http://localhost:3000/webhooks"),
		RetryPolicy: &client.RetryPolicyInput{InitialDelay: ptr("100ms"), MaxDelay: ptr("100ms")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ep.Type != client.EndpointTypeListener || ep.Listener == nil || ep.Listener.TTL != "24h" || ep.URL != "http://localhost:3000/webhooks" {
		t.Fatalf("createListener gave %+v", ep)
	}

	var f forwarded
	lctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- c.Listen(lctx, ep.ID, client.ListenHandler{
			Connected: func(n int) { f.mu.Lock(); f.connected = append(f.connected, n); f.mu.Unlock() },
			Forward: func(_ context.Context, d *client.ListenerDelivery) client.ListenerResult {
				if err := webhook.Verify(secret, d.Header, d.Body); err != nil {
					t.Errorf("delivery %s does not verify with the listener's secret: %v", d.DeliveryID, err)
				}
				if f.add(d) == 1 {
					return client.ListenerResult{Status: http.StatusServiceUnavailable, Body: []byte("starting up"), Duration: time.Millisecond}
				}
				return client.ListenerResult{Status: http.StatusOK, Body: []byte("ok"), Duration: 2 * time.Millisecond}
			},
		})
	}()
	if !heraldtest.Eventually(30*time.Second, func() bool { _, _, n := f.snapshot(); return len(n) == 1 }) {
		t.Fatal("Listen did not connect")
	}

	first, err := c.Publish(ctx(t), client.PublishEventInput{EventType: "order.created", Payload: []byte(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	d := waitSucceeded(t, c, first.ID)
	if len(d.Attempts) != 2 || *d.Attempts[0].ResponseStatus != 503 || d.Attempts[0].ResponseBody != "starting up" || *d.Attempts[1].ResponseStatus != 200 {
		t.Fatalf("attempts %+v, want the handler's 503 then its 200", d.Attempts)
	}

	// The server restarts; what is published meanwhile waits, then comes
	// in order on the next session.
	s2 := s.Restart()
	c2 := newClient(t, s2.URL, s2.Token)
	var later []string
	for i := range 3 {
		ev, err := c2.Publish(ctx(t), client.PublishEventInput{EventType: "order.updated", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i+2))})
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, ev.ID)
	}
	proxy.SetTarget(s2.URL)
	for _, id := range later {
		waitSucceeded(t, c2, id)
	}
	events, attempts, connected := f.snapshot()
	want := append([]string{first.ID, first.ID}, later...)
	if len(events) != len(want) {
		t.Fatalf("forwarded %v, want %v", events, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("forwarded %v, want %v: in order, once each", events, want)
		}
	}
	if attempts[1] != 2 || len(connected) < 2 || connected[len(connected)-1] != 3 {
		t.Fatalf("attempts %v, sessions told %v waiting: want the retry as attempt 2 and the last session catching up on 3", attempts, connected)
	}

	if err := c2.DeleteEndpoint(ctx(t), ep.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("Listen ended with %v, want the API's error", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Listen still runs after its listener was deleted")
	}
}

// waitSucceeded waits until an event's only delivery succeeded.
func waitSucceeded(t *testing.T, c *client.Client, eventID string) *client.DeliveryDetail {
	t.Helper()
	var d *client.DeliveryDetail
	ok := heraldtest.Eventually(60*time.Second, func() bool {
		p, err := c.Deliveries(ctx(t), client.DeliveryQuery{EventID: eventID})
		if err != nil || len(p.Items) != 1 || p.Items[0].Status != client.DeliveryStatusSucceeded {
			return false
		}
		d, err = c.Delivery(ctx(t), p.Items[0].ID)
		return err == nil
	})
	if !ok {
		t.Fatalf("the delivery of %s did not succeed", eventID)
	}
	return d
}

// BenchmarkListen_Deliveries measures a listener's deliveries end to end
// on one in-process server: published in batches of 100, pushed one at a
// time over the websocket, answered by the handler at once and reported
// back as attempts. ns/op is per delivery.
func BenchmarkListen_Deliveries(b *testing.B) {
	s := heraldtest.Start(b)
	c := newClient(b, s.URL, s.Token)
	bg := context.Background()
	ep, _, err := c.CreateListener(bg, client.CreateListenerInput{EventTypes: []string{"order.*"}})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	lctx, stop := context.WithCancel(bg)
	defer stop()
	go func() {
		_ = c.Listen(lctx, ep.ID, client.ListenHandler{
			Forward: func(context.Context, *client.ListenerDelivery) client.ListenerResult {
				return client.ListenerResult{Status: http.StatusOK}
			},
			Reported: func(_ *client.ListenerDelivery, _ client.ListenerResult, err error) {
				if err == nil {
					n.Add(1)
				}
			},
		})
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		batch := make([]client.PublishEventInput, min(100, b.N-i))
		for j := range batch {
			batch[j] = client.PublishEventInput{EventType: "order.created", Payload: []byte(`{"orderId":"ord_1"}`)}
		}
		if _, err := c.PublishMany(bg, batch); err != nil {
			b.Fatal(err)
		}
	}
	if !heraldtest.Eventually(10*time.Minute, func() bool { return n.Load() >= int64(b.N) }) {
		b.Fatalf("%d of %d deliveries reported", n.Load(), b.N)
	}
}
