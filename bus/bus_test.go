package bus

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func recv(t *testing.T, s *Subscription) (Message, bool) {
	t.Helper()
	select {
	case m := <-s.C:
		return *m, true
	default:
		return Message{}, false
	}
}

func TestBus_DeliversOnlyMatchingMessagesOfTheApp(t *testing.T) {
	b := New(Config{})
	s, err := b.Subscribe(Filter{Topic: Deliveries, AppID: "app_a", EventType: "order.*", Status: "FAILED"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cases := []struct {
		m    Message
		want bool
	}{
		{Message{Topic: Deliveries, AppID: "app_a", EventType: "order.created", Status: "FAILED"}, true},
		{Message{Topic: Deliveries, AppID: "app_b", EventType: "order.created", Status: "FAILED"}, false},
		{Message{Topic: Deliveries, AppID: "app_a", EventType: "contact.created", Status: "FAILED"}, false},
		{Message{Topic: Deliveries, AppID: "app_a", EventType: "order.created", Status: "SUCCEEDED"}, false},
		{Message{Topic: Events, AppID: "app_a", EventType: "order.created", Status: "FAILED"}, false},
	}
	for _, c := range cases {
		b.Publish(c.m)
		_, got := recv(t, s)
		if got != c.want {
			t.Errorf("Publish(%+v): delivered %v, want %v", c.m, got, c.want)
		}
	}
}

func TestBus_EndpointFilter(t *testing.T) {
	b := New(Config{})
	s, _ := b.Subscribe(Filter{Topic: Endpoints, AppID: "app", EndpointID: "ep_1"})
	defer s.Close()
	b.Publish(Message{Topic: Endpoints, AppID: "app", EndpointID: "ep_2"})
	b.Publish(Message{Topic: Endpoints, AppID: "app", EndpointID: "ep_1", Payload: 42})
	m, ok := recv(t, s)
	if !ok || m.Payload != 42 {
		t.Fatalf("got %+v %v, want the ep_1 message", m, ok)
	}
	if _, ok := recv(t, s); ok {
		t.Fatal("got a second message")
	}
}

func TestBus_LaggingSubscriberIsCutOffWithoutBlocking(t *testing.T) {
	b := New(Config{Buffer: 4})
	slow, _ := b.Subscribe(Filter{Topic: Events, AppID: "app"})
	fast, _ := b.Subscribe(Filter{Topic: Events, AppID: "app"})
	defer fast.Close()
	for i := 0; i < 10; i++ {
		b.Publish(Message{Topic: Events, AppID: "app", Payload: i})
		if _, ok := recv(t, fast); !ok {
			t.Fatalf("fast subscriber missed message %d", i)
		}
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber not cut off")
	}
	if !errors.Is(slow.Err(), ErrLagged) {
		t.Fatalf("Err() = %v, want ErrLagged", slow.Err())
	}
	slow.Close()
	if b.Active() != 1 {
		t.Fatalf("Active() = %d after closing the slow one, want 1", b.Active())
	}
}

func TestBus_CoalescingSubscriberDropsOverflowAndStays(t *testing.T) {
	b := New(Config{Buffer: 4})
	s, _ := b.Subscribe(Filter{Topic: Events, AppID: "app", Coalesce: true})
	defer s.Close()
	for i := 0; i < 10; i++ {
		b.Publish(Message{Topic: Events, AppID: "app", Payload: i})
	}
	select {
	case <-s.Done():
		t.Fatalf("a coalescing subscriber was cut off: %v", s.Err())
	default:
	}
	for i := 0; i < 4; i++ {
		if _, ok := recv(t, s); !ok {
			t.Fatalf("message %d of the full buffer missing", i)
		}
	}
	b.Publish(Message{Topic: Events, AppID: "app", Payload: 10})
	if m, ok := recv(t, s); !ok || m.Payload != 10 {
		t.Fatalf("after draining got %v, %v; want the next message", m, ok)
	}
}

func TestBus_CloseEndsSubscriptions(t *testing.T) {
	b := New(Config{})
	s, _ := b.Subscribe(Filter{Topic: Events, AppID: "app"})
	b.Close()
	<-s.Done()
	if !errors.Is(s.Err(), ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", s.Err())
	}
	s.Close() // safe after the bus closed
	if _, err := b.Subscribe(Filter{Topic: Events, AppID: "app"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
}

type recordingRelay struct {
	sent        []Message
	wanted      bool
	transitions []bool
}

func (r *recordingRelay) Send(m Message)       { r.sent = append(r.sent, m) }
func (r *recordingRelay) Wanted() bool         { return r.wanted }
func (r *recordingRelay) Subscribers(any bool) { r.transitions = append(r.transitions, any) }

func TestBus_RelayGetsLocalMessagesOnly(t *testing.T) {
	r := &recordingRelay{wanted: true}
	b := New(Config{Relay: r})
	s, _ := b.Subscribe(Filter{Topic: Events, AppID: "app"})
	defer s.Close()
	b.Publish(Message{Topic: Events, AppID: "app", Payload: "local"})
	b.Deliver(Message{Topic: Events, AppID: "app", Payload: "remote"})
	if len(r.sent) != 1 || r.sent[0].Payload != "local" {
		t.Fatalf("relay got %+v, want only the local message", r.sent)
	}
	for _, want := range []string{"local", "remote"} {
		if m, ok := recv(t, s); !ok || m.Payload != want {
			t.Fatalf("got %+v, want %s", m, want)
		}
	}
}

// Without subscribers on other replicas, nothing is relayed: the bus
// costs nothing when nobody anywhere watches.
func TestBus_RelaysOnlyWhenAnotherReplicaHasSubscribers(t *testing.T) {
	r := &recordingRelay{}
	b := New(Config{Relay: r})
	if b.Wanted() {
		t.Fatal("Wanted with no subscriber anywhere")
	}
	b.Publish(Message{Topic: Events, AppID: "app"})
	if len(r.sent) != 0 {
		t.Fatalf("relayed %d messages nobody wants", len(r.sent))
	}
	r.wanted = true
	if !b.Wanted() {
		t.Fatal("not Wanted while another replica has subscribers")
	}
	b.Publish(Message{Topic: Events, AppID: "app"})
	if len(r.sent) != 1 {
		t.Fatalf("relayed %d messages, want 1", len(r.sent))
	}
}

func TestBus_TellsTheRelayWhenItsFirstSubscriptionOpensAndLastCloses(t *testing.T) {
	r := &recordingRelay{}
	b := New(Config{Relay: r})
	s1, _ := b.Subscribe(Filter{Topic: Events, AppID: "a"})
	s2, _ := b.Subscribe(Filter{Topic: Events, AppID: "b"})
	s1.Close()
	s2.Close()
	s3, _ := b.Subscribe(Filter{Topic: Events, AppID: "a"})
	_ = s3
	b.Close()
	if want := []bool{true, false, true, false}; !slices.Equal(r.transitions, want) {
		t.Fatalf("transitions = %v, want %v", r.transitions, want)
	}
}

func BenchmarkPublish_NoSubscribers(b *testing.B) {
	bus := New(Config{})
	m := Message{Topic: Deliveries, AppID: "app", EventType: "order.created"}
	for b.Loop() {
		bus.Publish(m)
	}
}

func TestBus_ExactTypeFilterIsIndexed(t *testing.T) {
	b := New(Config{})
	exact, _ := b.Subscribe(Filter{Topic: Deliveries, AppID: "app", EventType: "order.created"})
	pattern, _ := b.Subscribe(Filter{Topic: Deliveries, AppID: "app", EventType: "order.*"})
	other, _ := b.Subscribe(Filter{Topic: Deliveries, AppID: "app", EventType: "contact.created"})
	defer exact.Close()
	defer pattern.Close()
	b.Publish(Message{Topic: Deliveries, AppID: "app", EventType: "order.created"})
	if _, ok := recv(t, exact); !ok {
		t.Error("exact subscriber missed its type")
	}
	if _, ok := recv(t, pattern); !ok {
		t.Error("pattern subscriber missed a matching type")
	}
	if _, ok := recv(t, other); ok {
		t.Error("subscriber of another type got the message")
	}
	other.Close()
	if b.Active() != 2 {
		t.Fatalf("Active() = %d, want 2", b.Active())
	}
}

func BenchmarkPublish_500SubscribersOfOtherTypes(b *testing.B) {
	bus := New(Config{})
	for k := range 500 {
		s, _ := bus.Subscribe(Filter{Topic: Deliveries, AppID: "app", EventType: "live.t" + string(rune('a'+k%26)) + string(rune('a'+k/26))})
		defer s.Close()
	}
	m := Message{Topic: Deliveries, AppID: "app", EventType: "order.created"}
	for b.Loop() {
		bus.Publish(m)
	}
}

// TestBus_SubscribeFuncHandsMessagesOverAndSaysOnceWhyItEnded proves that a
// subscription started with SubscribeFunc gets its messages through take,
// and that ended is called exactly once, with the reason, after which
// take is never called again: when it lags, when it is closed, and when
// the bus closes.
func TestBus_SubscribeFuncHandsMessagesOverAndSaysOnceWhyItEnded(t *testing.T) {
	type feed struct {
		got   []any
		room  int
		ended []error
	}
	start := func(t *testing.T, b *Bus, f Filter, room int) (*feed, *Subscription) {
		t.Helper()
		fd := &feed{room: room}
		s, err := b.SubscribeFunc(f, func(m *Message) bool {
			if len(fd.ended) > 0 {
				t.Errorf("take called after ended")
			}
			if len(fd.got) == fd.room {
				return false
			}
			fd.got = append(fd.got, m.Payload)
			return true
		}, func(err error) { fd.ended = append(fd.ended, err) })
		if err != nil {
			t.Fatal(err)
		}
		return fd, s
	}

	t.Run("lagging", func(t *testing.T) {
		b := New(Config{})
		var got []any
		ended := make(chan error, 2)
		_, err := b.SubscribeFunc(Filter{Topic: Events, AppID: "app"}, func(m *Message) bool {
			if len(got) == 2 {
				return false
			}
			got = append(got, m.Payload)
			return true
		}, func(err error) { ended <- err })
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			b.Publish(Message{Topic: Events, AppID: "app", Payload: i})
		}
		// Its owner does nothing: the bus ends it and says so.
		select {
		case err := <-ended:
			if !errors.Is(err, ErrLagged) {
				t.Fatalf("ended(%v), want ErrLagged", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a lagging subscription was never ended")
		}
		if !slices.Equal(got, []any{0, 1}) || b.Active() != 0 || len(ended) != 0 {
			t.Fatalf("got %v, %d active, %d more ends; want [0 1], none and none", got, b.Active(), len(ended))
		}
	})
	t.Run("coalescing", func(t *testing.T) {
		b := New(Config{})
		fd, s := start(t, b, Filter{Topic: Events, AppID: "app", Coalesce: true}, 1)
		for i := range 3 {
			b.Publish(Message{Topic: Events, AppID: "app", Payload: i})
		}
		if len(fd.ended) != 0 || b.Active() != 1 {
			t.Fatalf("a coalescing subscription ended (%v) or left (%d active)", fd.ended, b.Active())
		}
		s.Close()
		s.Close()
		if len(fd.ended) != 1 || fd.ended[0] != nil {
			t.Fatalf("ended %v after Close, want one nil", fd.ended)
		}
	})
	t.Run("bus closed", func(t *testing.T) {
		b := New(Config{})
		fd, s := start(t, b, Filter{Topic: Events, AppID: "app"}, 10)
		b.Close()
		s.Close()
		b.Publish(Message{Topic: Events, AppID: "app", Payload: 1})
		if len(fd.got) != 0 || len(fd.ended) != 1 || !errors.Is(fd.ended[0], ErrClosed) {
			t.Fatalf("got %v, ended %v; want nothing and one ErrClosed", fd.got, fd.ended)
		}
	})
}
