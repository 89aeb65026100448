package dispatch

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/ent"
)

// fakeHeld is a held target whose holding tests switch.
type fakeHeld struct {
	destination.Target
	holding atomic.Bool
}

func (f *fakeHeld) Holding() bool { return f.holding.Load() }

// newHeldHarness returns a harness whose endpoint ep_l is held by target.
func newHeldHarness(t *testing.T, target *fakeHeld) *schedHarness {
	h := newSchedHarness(t, schedConfig{Worker: "w", Workers: 8, PerEndpoint: 4, BatchSize: 16, PollInterval: time.Second})
	h.s.configs = newEndpointConfigs(time.Hour, h.clock.Now, testEndpoints(t), func(ep *ent.Endpoint) (*endpointConfig, error) {
		c, err := newEndpointConfig(ep, testKeys, nil, nil, nil)
		if err == nil && ep.ID == "ep_l" {
			c.target, c.held = target, target
		}
		return c, err
	})
	return h
}

func (h *schedHarness) owns() []ownCall {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return append([]ownCall(nil), h.d.owns...)
}

// A held endpoint (a listener) is claimed only while this engine holds its
// connection, owned meanwhile, sent one delivery at a time in due order,
// and given up at once when the connection leaves.
func TestScheduler_HeldEndpointGoesOneAtATimeOnlyWhereItIsHeld(t *testing.T) {
	target := &fakeHeld{}
	h := newHeldHarness(t, target)
	h.d.add("ep_l", 5)
	h.d.add("ep_0", 5)

	h.round()
	for id := range h.inFlight {
		if h.inFlight[id].EndpointID == "ep_l" {
			t.Fatalf("delivery %s of a listener nobody holds here was sent", id)
		}
	}
	if n := len(h.owns()); n != 0 {
		t.Fatalf("Own called %d times for an endpoint not held here", n)
	}
	h.finish(len(h.inFlight))

	target.holding.Store(true)
	var order []string
	for i := 0; len(order) < 5; i++ {
		if i > 50 {
			t.Fatalf("only %d of 5 deliveries of the held endpoint sent", len(order))
		}
		h.s.notify("ep_l")
		h.round()
		n := 0
		for id, j := range h.inFlight {
			if j.EndpointID == "ep_l" {
				n++
				order = append(order, id)
			}
		}
		if n > 1 {
			t.Fatalf("%d deliveries of a held endpoint in flight at once, want 1", n)
		}
		h.finish(len(h.inFlight))
	}
	for i, id := range order {
		if want := "dlv_ep_l_000" + string(rune('0'+i)); id != want {
			t.Fatalf("deliveries sent in order %v, want due order", order)
		}
	}
	owns := h.owns()
	if len(owns) == 0 || !owns[0].until.After(owns[0].now) {
		t.Fatalf("Own calls %+v: the engine holding the endpoint should own it", owns)
	}

	target.holding.Store(false)
	h.d.add("ep_l", 1)
	h.s.notify("ep_l")
	h.round()
	if len(h.inFlight) != 0 {
		t.Fatalf("sent to a held endpoint after its connection left")
	}
	owns = h.owns()
	last := owns[len(owns)-1]
	if last.endpointID != "ep_l" || last.until.After(last.now) {
		t.Fatalf("last Own call %+v: the engine should give the endpoint up at once", last)
	}
}
