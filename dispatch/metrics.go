package dispatch

import (
	"time"

	"github.com/heraldhq/herald/destination"
)

// Metrics receives the engine's measurements, for an operator's
// dashboards and alerts (package metrics implements it over Prometheus).
// Its methods are called from the engine's hot paths, once per attempt or
// per committed batch: they must be cheap, never block and never
// allocate per call. Labels are bounded by design: outcomes and statuses,
// never apps or endpoints (per-endpoint numbers are the statistics the
// recorder rolls up, see StatsRow).
type Metrics interface {
	// EventsPublished counts events stored by publishes (not test sends).
	EventsPublished(n int)
	// AttemptFinished reports one attempt as the worker saw it, before
	// it is recorded, with its endpoint's destination type: interrupted
	// attempts (shutdown) included.
	AttemptFinished(t destination.Type, o destination.Outcome, d time.Duration)
	// DeliveryFinished reports a delivery that ended: status SUCCEEDED,
	// FAILED or CANCELLED (failed without an attempt because its endpoint
	// was disabled or deleted). lag is from the event's publication (or
	// its deliverAt, if later) to the end of the delivery's last attempt,
	// for SUCCEEDED ones (0 otherwise).
	DeliveryFinished(status string, lag time.Duration)
	// EndpointDisabled counts endpoints the engine disabled after too many
	// consecutive failed deliveries.
	EndpointDisabled()
	// RecorderCommit reports one transaction of the recorder: how many
	// results it held, how long it took, and whether it committed.
	RecorderCommit(results int, d time.Duration, err error)
	// PublisherCommit reports one group commit of the publisher: how many
	// events it held, how long it took, and whether it committed.
	PublisherCommit(events int, d time.Duration, err error)
	// ProxyFailed counts attempts the egress proxy failed (Deferred: no
	// attempt used, the endpoint not blamed).
	ProxyFailed(t destination.Type)
}

// StatusCancelled is the status Metrics.DeliveryFinished reports (besides
// SUCCEEDED and FAILED) for a delivery failed without an attempt because
// its endpoint was disabled or deleted.
const StatusCancelled = "CANCELLED"

type nopMetrics struct{}

func (nopMetrics) EventsPublished(int)                                                  {}
func (nopMetrics) AttemptFinished(destination.Type, destination.Outcome, time.Duration) {}
func (nopMetrics) DeliveryFinished(string, time.Duration)                               {}
func (nopMetrics) EndpointDisabled()                                                    {}
func (nopMetrics) RecorderCommit(int, time.Duration, error)                             {}
func (nopMetrics) PublisherCommit(int, time.Duration, error)                            {}
func (nopMetrics) ProxyFailed(destination.Type)                                         {}

// reportCommitted reports what a committed batch of results finished.
func reportCommitted(m Metrics, out *commitOutput) {
	for i, res := range out.results {
		switch out.changes[i].Status {
		case "SUCCEEDED":
			var lag time.Duration
			if resp := res.resp; resp != nil && !res.job.EventCreatedAt.IsZero() {
				due := res.job.EventCreatedAt
				if at := res.job.EventDeliverAt; at != nil && at.After(due) {
					due = *at // scheduled: due from then
				}
				lag = resp.Completed.Sub(due)
			}
			m.DeliveryFinished("SUCCEEDED", lag)
		case "FAILED":
			if res.cancelled {
				m.DeliveryFinished(StatusCancelled, 0)
			} else {
				m.DeliveryFinished("FAILED", 0)
			}
		}
	}
	for range out.disabled {
		m.EndpointDisabled()
	}
}
