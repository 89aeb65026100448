package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhq/herald/tenant"
)

// Cancellation tuning.
const (
	// cancelBatch is how many deliveries one cancelling statement ends:
	// small enough that publishing and recording, which share the
	// database's writer, wait for at most a few milliseconds.
	cancelBatch = 500
	// maxReportedCancels bounds the per-delivery changes reported to the
	// live feeds when an endpoint with a long backlog is disabled; the
	// endpoint's own change covers the rest.
	maxReportedCancels = 1000
	// retryCancelAfter is how long a cancellation that failed waits before
	// it is tried again.
	retryCancelAfter = time.Second
)

// canceller fails the queued deliveries of disabled and deleted endpoints
// in bounded batches, on a goroutine of its own, so that an endpoint with
// a million queued deliveries neither freezes publishing and recording nor
// holds them up for more than one batch at a time. Deliveries under a
// lease are left alone: their attempts finish and are not retried.
//
// Cancellation is not durable: if the process stops first, the engine
// fails the leftovers when it next claims them (their endpoint is
// inactive), so nothing is sent to the endpoint either way.
type canceller struct {
	driver   Driver
	log      *slog.Logger
	now      func() time.Time
	observer Observer
	// metrics counts the cancelled deliveries (set by the engine).
	metrics Metrics

	mu      sync.Mutex
	queue   []string
	reasons map[string]string
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newCanceller(d Driver, log *slog.Logger, now func() time.Time, o Observer) *canceller {
	return &canceller{
		driver: d, log: log, now: now, observer: o, metrics: nopMetrics{},
		reasons: make(map[string]string),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// enqueue asks for an endpoint's queued deliveries to be failed.
func (c *canceller) enqueue(endpointID, reason string) {
	c.mu.Lock()
	if _, ok := c.reasons[endpointID]; !ok {
		c.queue = append(c.queue, endpointID)
	}
	c.reasons[endpointID] = reason
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *canceller) pop() (string, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return "", "", false
	}
	id := c.queue[0]
	c.queue = c.queue[1:]
	reason := c.reasons[id]
	delete(c.reasons, id)
	return id, reason, true
}

func (c *canceller) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		for {
			id, reason, ok := c.pop()
			if !ok {
				break
			}
			if !c.cancel(context.Background(), id, reason, -1) {
				c.retryLater(id, reason)
			}
		}
	}
}

// retryLater enqueues a failed cancellation again after a pause.
func (c *canceller) retryLater(id, reason string) {
	t := time.NewTimer(retryCancelAfter)
	defer t.Stop()
	select {
	case <-c.stop:
	case <-t.C:
		c.enqueue(id, reason)
	}
}

// cancel fails an endpoint's queued deliveries batch by batch, at most
// maxBatches of them (negative: no limit), and reports whether it got
// through them.
func (c *canceller) cancel(ctx context.Context, endpointID, reason string, maxBatches int) bool {
	reported := 0
	for batches := 0; maxBatches < 0 || batches < maxBatches; batches++ {
		select {
		case <-c.stop:
			return true
		default:
		}
		bctx, cancel := context.WithTimeout(tenant.System(context.WithoutCancel(ctx)), 30*time.Second)
		now := c.now().UTC()
		refs, err := c.driver.Cancel(bctx, CancelParams{EndpointID: endpointID, Reason: reason, Limit: cancelBatch, Now: now})
		cancel()
		if err != nil {
			c.log.Error("fail queued deliveries of a disabled endpoint; trying again", "endpoint_id", endpointID, "err", err)
			return false
		}
		for range refs {
			c.metrics.DeliveryFinished(StatusCancelled, 0)
		}
		for _, r := range refs {
			if reported == maxReportedCancels {
				break
			}
			reported++
			c.observer.DeliveryChanged(DeliveryChange{Kind: Cancelled, AppID: r.AppID, DeliveryID: r.ID, EventID: r.EventID,
				EndpointID: endpointID, EventType: r.EventType, Status: "FAILED", Error: reason, At: now})
		}
		if len(refs) < cancelBatch {
			return true
		}
	}
	return false
}

// close stops the canceller; cancellations not done yet are left to
// claims (see canceller).
func (c *canceller) close() {
	close(c.stop)
	<-c.done
}
