package graph_test

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/pgnotify"
)

// fakeRelay records what a bus hands it.
type fakeRelay struct {
	mu   sync.Mutex
	sent []bus.Message
}

func (r *fakeRelay) Send(m bus.Message) {
	r.mu.Lock()
	r.sent = append(r.sent, m)
	r.mu.Unlock()
}

// Wanted: the fake stands for replicas that have subscribers.
func (r *fakeRelay) Wanted() bool { return true }

func (r *fakeRelay) Subscribers(bool) {}

func TestObserver_RelaysChangesWithoutLocalSubscribers(t *testing.T) {
	relay := &fakeRelay{}
	o := graph.NewObserver(bus.New(bus.Config{Relay: relay}))
	o.DeliveryChanged(dispatch.DeliveryChange{AppID: "app_1", DeliveryID: "dlv_1"})
	o.EndpointChanged(dispatch.EndpointChange{AppID: "app_1", EndpointID: "ep_1"})
	o.EventPublished(dispatch.EventPublished{AppID: "app_1", EventID: "evt_1"})
	if len(relay.sent) != 3 {
		t.Fatalf("relayed %d changes with no local subscriber, want 3: other replicas' subscribers need them", len(relay.sent))
	}
}

func TestLiveCodec_RoundTripsEveryPayload(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 15, 21, 123456789, time.UTC)
	next := at.Add(time.Minute)
	observed := &fakeRelay{}
	o := graph.NewObserver(bus.New(bus.Config{Relay: observed}))
	o.DeliveryChanged(dispatch.DeliveryChange{Kind: dispatch.AttemptFinished, AppID: "app_1", DeliveryID: "dlv_1", EventID: "evt_1",
		EndpointID: "ep_1", EventType: "order.created", Status: "RETRYING", Attempt: 2, AttemptID: "att_1", ResponseStatus: 503,
		Duration: 1234567 * time.Microsecond, Error: "HTTP 503 <Service Unavailable> & \"quotes\" é", NextAttemptAt: &next, At: at})
	o.DeliveryChanged(dispatch.DeliveryChange{Kind: dispatch.Created, AppID: "app_1", DeliveryID: "dlv_2", Status: "PENDING", At: at})
	o.EndpointChanged(dispatch.EndpointChange{AppID: "app_1", EndpointID: "ep_1", Reason: "disabled", At: at})
	o.EventPublished(dispatch.EventPublished{AppID: "app_1", EventID: "evt_1", EventType: "order.created", Deliveries: 3, At: at})
	var codec graph.LiveCodec
	for _, m := range observed.sent {
		s, err := codec.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.Decode(s)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", s, got, m)
		}
	}
}

func TestLiveCodec_KeepsLongErrorsUnderTheNotificationLimit(t *testing.T) {
	var codec graph.LiveCodec
	m := bus.Message{Payload: dispatch.DeliveryChange{AppID: "app_1", Error: strings.Repeat("é", 10000)}}
	s, err := codec.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) > pgnotify.MaxMessage {
		t.Fatalf("encoded %d bytes, over pgnotify.MaxMessage", len(s))
	}
	if _, err := codec.Decode(s); err != nil {
		t.Fatal(err)
	}
}
