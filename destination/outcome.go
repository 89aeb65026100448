package destination

// Outcome classifies the result of one attempt, for the engine: whether
// the delivery succeeded, may be tried again, has failed for good, or
// says nothing about the endpoint at all.
type Outcome int

// Outcomes of an attempt.
const (
	// Delivered: the endpoint accepted the message (an HTTP 2xx answer, a
	// publish the broker acknowledged).
	Delivered Outcome = iota
	// Retryable: a timeout, a network error, an unreachable broker, an
	// unacknowledged publish, an HTTP 408, 425 or 5xx; the delivery is
	// tried again while attempts remain.
	Retryable
	// Permanent: the endpoint refused the message in a way that will not
	// change by itself (an HTTP 4xx, bad credentials, a missing queue or
	// topic, a destination the policy refuses); the delivery fails at once
	// and the failure counts toward the endpoint's health and auto-disable.
	Permanent
	// Throttled: the endpoint asked Herald to slow down (an HTTP 429, a
	// broker's throttling error). It is retryable like Retryable, and the
	// engine also lowers the endpoint's pace.
	Throttled
	// Interrupted: Herald cut the attempt off itself (shutdown). It says
	// nothing about the endpoint: it is not recorded, uses up no attempt,
	// and the delivery is simply due again.
	Interrupted
	// Deferred: the attempt failed for a reason of Herald's own side, not
	// the endpoint's (an egress proxy that refused or failed, a listener
	// whose session is not connected). It is recorded with its error but
	// uses up no attempt and counts toward neither the endpoint's health
	// nor auto-disable; the delivery is due again after Result.RetryAfter
	// (or the first retry delay of the endpoint's policy).
	Deferred
	// Skipped: Herald did not send the message because the endpoint's
	// transformation dropped it (returned null). The delivery ends
	// SUCCEEDED and the attempt is recorded, saying so, but it was no
	// request to the endpoint: it counts in none of the endpoint's
	// figures (successes, health, pace, statistics).
	Skipped
)

// String returns the outcome's name in lower case: "delivered",
// "retryable", "permanent", "throttled", "interrupted", "deferred" or
// "skipped".
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Retryable:
		return "retryable"
	case Throttled:
		return "throttled"
	case Interrupted:
		return "interrupted"
	case Deferred:
		return "deferred"
	case Skipped:
		return "skipped"
	default:
		return "permanent"
	}
}

// Retries reports whether the outcome is a failure the delivery may be
// tried again after, using up one attempt (Retryable and Throttled).
func (o Outcome) Retries() bool { return o == Retryable || o == Throttled }
