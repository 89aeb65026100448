package webhook

import (
	"time"

	"github.com/heraldhq/herald/fault"
)

// RateLimit caps how many requests an endpoint receives: at most Requests
// in any window of length Per (a sliding window, not a bucket that could
// let twice as many through across a window's edge).
type RateLimit struct {
	Requests int           `json:"requests"`
	Per      time.Duration `json:"per"`
}

// Limits of a RateLimit.
const (
	MaxRateRequests = 10_000
	MinRatePer      = 100 * time.Millisecond
	MaxRatePer      = time.Hour
)

// Validate reports the first problem with r as a BAD_USER_INPUT fault whose
// field is relative to the limit ("per").
func (r RateLimit) Validate() error {
	switch {
	case r.Requests < 1 || r.Requests > MaxRateRequests:
		return fault.Invalid("requests", "must be between 1 and %d, got %d", MaxRateRequests, r.Requests)
	case r.Per < MinRatePer || r.Per > MaxRatePer:
		return fault.Invalid("per", "must be between %s and %s, got %s", MinRatePer, MaxRatePer, r.Per)
	}
	return nil
}

// Ordering says in which order an endpoint receives events.
type Ordering string

// Orderings.
const (
	// OrderNone sends deliveries in parallel, in no particular order.
	OrderNone Ordering = "NONE"
	// OrderByKey sends the events that share an ordering key one at a
	// time, in publish order; different keys go on in parallel.
	OrderByKey Ordering = "KEY"
	// OrderStrict sends everything one at a time, in publish order.
	OrderStrict Ordering = "STRICT"
)

// Values lists the orderings, for ent's enum.
func (Ordering) Values() []string {
	return []string{string(OrderNone), string(OrderByKey), string(OrderStrict)}
}

// MaxOrderingKeyLen is the longest ordering key accepted on publish.
const MaxOrderingKeyLen = 255

// MaxDeliverAhead is how far ahead deliverAt may schedule a delivery.
const MaxDeliverAhead = 30 * 24 * time.Hour
