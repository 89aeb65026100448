package dispatch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

type published struct {
	app, typ, exclude string
	payload           any
}

func TestMetaCoalescer_ReportsFirstFailureAtOnceThenOncePerWindow(t *testing.T) {
	clock := newFakeClock()
	var mu sync.Mutex
	var got []published
	m := newMetaCoalescer(time.Minute, clock.Now, func(app, typ string, payload any, exclude string) {
		mu.Lock()
		got = append(got, published{app, typ, exclude, payload})
		mu.Unlock()
	})
	fail := func(ep string, n int) {
		for i := range n {
			m.failed(failedDelivery{AppID: "app_1", EndpointID: ep, URL: "https://h.example/x?token=t", DeliveryID: fmt.Sprintf("dlv_%s_%d", ep, i), At: clock.Now()})
		}
	}
	fail("ep_1", 1)
	m.emit(false)
	fail("ep_1", 25)
	fail("ep_2", 3)
	m.emit(false)
	if len(got) != 2 {
		t.Fatalf("%d reports, want ep_1's first failure and ep_2's (a first for it too)", len(got))
	}
	clock.Add(30 * time.Second)
	m.emit(false)
	if len(got) != 2 {
		t.Fatalf("%d reports before the window ended, want 2", len(got))
	}
	clock.Add(31 * time.Second)
	next := m.emit(false)
	if len(got) != 3 {
		t.Fatalf("%d reports after the window, want 3", len(got))
	}
	p := got[2].payload.(FailedPayload)
	if got[2].typ != "webhook.failed" || got[2].exclude != "ep_1" || p.FailedDeliveries != 25 || len(p.Deliveries) != maxFailedSamples ||
		p.URL != "https://h.example/x" {
		t.Fatalf("window report = %+v", got[2])
	}
	if !next.IsZero() {
		t.Fatalf("a report is still due at %v", next)
	}
	// The close publishes what is gathered, window or not.
	fail("ep_2", 2)
	m.emit(true)
	if len(got) != 4 || got[3].payload.(FailedPayload).FailedDeliveries != 2 {
		t.Fatalf("reports after close = %d", len(got))
	}
}

// cancelCounter is a driver whose Cancel ends up to the limit of a
// backlog per call.
type cancelCounter struct {
	*fakeDriver
	mu      sync.Mutex
	backlog int
	calls   []int
}

func (c *cancelCounter) Cancel(_ context.Context, p CancelParams) ([]DeliveryRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(p.Limit, c.backlog)
	c.backlog -= n
	c.calls = append(c.calls, n)
	return make([]DeliveryRef, n), nil
}

func TestCanceller_WorksInBoundedBatches(t *testing.T) {
	d := &cancelCounter{fakeDriver: newFakeDriver(), backlog: 2*cancelBatch + 7}
	var reported int
	var mu sync.Mutex
	obs := observerFunc(func(DeliveryChange) { mu.Lock(); reported++; mu.Unlock() })
	c := newCanceller(d, discardLogger(), time.Now, obs)
	go c.run()
	c.enqueue("ep_1", "endpoint disabled")
	waitFor(t, "the backlog to be cancelled", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.backlog == 0 && len(d.calls) == 3 })
	c.close()
	for _, n := range d.calls {
		if n > cancelBatch {
			t.Fatalf("one statement cancelled %d deliveries, limit %d", n, cancelBatch)
		}
	}
	if reported != maxReportedCancels {
		t.Fatalf("reported %d cancellations to the live feed, want the first %d", reported, maxReportedCancels)
	}
}

type observerFunc func(DeliveryChange)

func (f observerFunc) DeliveryChanged(c DeliveryChange) { f(c) }
func (observerFunc) EndpointChanged(EndpointChange)     {}
func (observerFunc) EventPublished(EventPublished)      {}
