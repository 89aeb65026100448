package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// statuses records a feed's connection changes.
type statuses struct {
	mu   sync.Mutex
	seen []client.LiveStatus
}

func (s *statuses) record(st client.LiveStatus) {
	s.mu.Lock()
	s.seen = append(s.seen, st)
	s.mu.Unlock()
}

// count returns how many changes of the state were seen, and the last one.
func (s *statuses) count(state client.LiveState) (int, client.LiveStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, last := 0, client.LiveStatus{}
	for _, st := range s.seen {
		if st.State == state {
			n, last = n+1, st
		}
	}
	return n, last
}

// feed runs a SubscribeEvents feed in the background and collects the
// types of the events it sees.
type feed struct {
	mu    sync.Mutex
	types []string
	done  chan error
}

func (f *feed) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.types...)
}

func subscribeEvents(t *testing.T, c *client.Client) (*feed, context.CancelFunc) {
	t.Helper()
	f := &feed{done: make(chan error, 1)}
	cx, cancel := context.WithCancel(context.Background())
	go func() {
		f.done <- c.SubscribeEvents(cx, "", func(p client.EventPublication) error {
			f.mu.Lock()
			f.types = append(f.types, p.EventType)
			f.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-f.done; err != nil {
			t.Errorf("feed ended with %v", err)
		}
	})
	return f, cancel
}

// publishUntilSeen publishes events of type typ until the feed has seen
// one: the server subscribes a feed shortly after the client asks, so a
// single event published at once could come before it.
func publishUntilSeen(t *testing.T, s *heraldtest.Server, token string, f *feed, typ string) {
	t.Helper()
	ok := heraldtest.Eventually(30*time.Second, func() bool {
		for _, seen := range f.seen() {
			if seen == typ {
				return true
			}
		}
		s.Publish(token, typ, map[string]any{})
		return false
	})
	if !ok {
		t.Fatalf("the feed never saw a %s event; saw %v", typ, f.seen())
	}
}

func TestSubscribeDeliveries_FollowsADeliveryToSuccess(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := newClient(t, s.URL, s.Token)
	rc := heraldtest.NewReceiver(t, nil)
	ep, _, err := c.CreateEndpoint(ctx(t), client.CreateEndpointInput{Name: "ok", Url: client.Ptr(rc.URL), EventTypes: []string{"order.*"}})
	if err != nil {
		t.Fatal(err)
	}
	done := errors.New("done")
	var mu sync.Mutex
	kinds := map[string][]client.DeliveryChangeKind{}
	result := make(chan error, 1)
	go func() {
		result <- c.SubscribeDeliveries(ctx(t), client.DeliveryFeed{EndpointID: ep.ID, EventType: "order.*"}, func(ch client.DeliveryChange) error {
			if ch.EndpointId != ep.ID {
				return errors.New("a change of another endpoint passed the filter")
			}
			mu.Lock()
			defer mu.Unlock()
			kinds[ch.DeliveryId] = append(kinds[ch.DeliveryId], ch.Kind)
			if ch.Kind == client.DeliveryChangeKindAttemptFinished && ch.Status == client.DeliveryStatusSucceeded && kinds[ch.DeliveryId][0] == client.DeliveryChangeKindCreated {
				return done
			}
			return nil
		})
	}()
	deadline := time.After(30 * time.Second)
	for {
		if _, err := c.Publish(ctx(t), client.PublishEventInput{EventType: "order.created", Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-result:
			if err != done {
				t.Fatalf("SubscribeDeliveries returned %v, want the handler's error", err)
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no delivery seen from created to succeeded; saw %v", kinds)
		}
	}
}

func TestSubscribe_ReconnectsWhenTheServerRestarts(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	proxy := heraldtest.NewProxy(t, s.URL)
	var st statuses
	c := newClient(t, proxy.URL, s.Token, client.LiveConfig{OnStatus: st.record, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	f, _ := subscribeEvents(t, c)
	publishUntilSeen(t, s, s.Token, f, "order.created")

	s2 := s.Restart()
	proxy.SetTarget(s2.URL)
	publishUntilSeen(t, s2, s2.Token, f, "order.updated")
	if n, _ := st.count(client.LiveConnected); n < 2 {
		t.Errorf("connected %d times, want a reconnection", n)
	}
	if n, last := st.count(client.LiveDisconnected); n < 1 || last.Err == nil {
		t.Errorf("disconnections: %d, last %+v", n, last)
	}
}

func TestSubscribe_DetectsADeadConnectionByItsHeartbeats(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	proxy := heraldtest.NewProxy(t, s.URL)
	var st statuses
	hb := 250 * time.Millisecond
	c := newClient(t, proxy.URL, s.Token, client.LiveConfig{Heartbeat: hb, OnStatus: st.record, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	f, _ := subscribeEvents(t, c)
	publishUntilSeen(t, s, s.Token, f, "order.created")

	// The network goes silent: no close, no reset, nothing.
	proxy.Freeze()
	frozen := time.Now()
	if !heraldtest.Eventually(20*time.Second, func() bool {
		_, last := st.count(client.LiveDisconnected)
		return errors.Is(last.Err, client.ErrDeadConnection)
	}) {
		t.Fatalf("a silent connection was not found dead; statuses %+v", st.seen)
	}
	t.Logf("found dead %s after the network went silent (heartbeat %s)", time.Since(frozen).Round(time.Millisecond), hb)
	proxy.Thaw()
	publishUntilSeen(t, s, s.Token, f, "order.updated")
}

func TestSubscribe_EndsForGoodWhenTheKeyIsRevoked(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	_, token := s.NewApp("revoked")
	connected := make(chan struct{}, 1)
	c2 := newClient(t, s.URL, token, client.LiveConfig{OnStatus: func(st client.LiveStatus) {
		if st.State == client.LiveConnected {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	}})
	result := make(chan error, 1)
	go func() {
		result <- c2.SubscribeEvents(ctx(t), "", func(client.EventPublication) error { return nil })
	}()
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatal("never connected")
	}
	var keys struct {
		APIKeys struct {
			Edges []struct{ Node struct{ ID, Prefix string } }
		}
	}
	s.Do(s.Token, `{ apiKeys(first: 100) { edges { node { id prefix } } } }`, nil).Decode(t, &keys)
	for _, e := range keys.APIKeys.Edges {
		if len(token) > len(e.Node.Prefix) && token[:len(e.Node.Prefix)] == e.Node.Prefix {
			s.Do(s.Token, `mutation($id: ID!) { revokeAPIKey(id: $id) { id } }`, map[string]any{"id": e.Node.ID}).Decode(t, nil)
		}
	}
	select {
	case err := <-result:
		if !client.IsCode(err, client.CodeUnauthenticated) {
			t.Fatalf("feed of a revoked key ended with %v, want UNAUTHENTICATED", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the feed of a revoked key goes on")
	}
}
