package webhook

import (
	"math"
	"time"

	"github.com/heraldhq/herald/fault"
)

// RetryPolicy says how often and how soon a failed delivery is tried again.
//
// Attempt 1 is sent as soon as the delivery is created. After attempt n fails
// with a retryable outcome, attempt n+1 is scheduled after
// InitialDelay × BackoffMultiplier^(n-1), capped at MaxDelay, with ±10%
// jitter, until MaxAttempts attempts have been made.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, including the first.
	MaxAttempts int `json:"maxAttempts"`
	// InitialDelay is the wait before the second attempt.
	InitialDelay time.Duration `json:"initialDelay"`
	// BackoffMultiplier grows the wait after each further failure.
	BackoffMultiplier float64 `json:"backoffMultiplier"`
	// MaxDelay caps any single wait, including one asked for by a
	// Retry-After response header.
	MaxDelay time.Duration `json:"maxDelay"`
}

// Limits of a RetryPolicy.
const (
	MaxAttemptsLimit  = 50
	MaxDelayLimit     = 7 * 24 * time.Hour
	MaxMultiplier     = 100
	retryJitterFactor = 0.1
)

// DefaultRetryPolicy returns the policy of endpoints created without one:
// 8 attempts spread over about 25 hours (immediately, then after 5s, 30s,
// 3m, 18m, 1h48m, 10h48m and 12h).
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:       8,
		InitialDelay:      5 * time.Second,
		BackoffMultiplier: 6,
		MaxDelay:          12 * time.Hour,
	}
}

// Validate reports the first problem with p as a BAD_USER_INPUT fault whose
// field is relative to the policy ("maxDelay").
func (p RetryPolicy) Validate() error {
	switch {
	case p.MaxAttempts < 1 || p.MaxAttempts > MaxAttemptsLimit:
		return fault.Invalid("maxAttempts", "must be between 1 and %d, got %d", MaxAttemptsLimit, p.MaxAttempts)
	case p.InitialDelay < 0:
		return fault.Invalid("initialDelay", "must not be negative, got %s", p.InitialDelay)
	case p.BackoffMultiplier < 1 || p.BackoffMultiplier > MaxMultiplier || math.IsNaN(p.BackoffMultiplier):
		return fault.Invalid("backoffMultiplier", "must be between 1 and %d, got %g", MaxMultiplier, p.BackoffMultiplier)
	case p.MaxDelay < p.InitialDelay:
		return fault.Invalid("maxDelay", "must be at least initialDelay (%s), got %s", p.InitialDelay, p.MaxDelay)
	case p.MaxDelay > MaxDelayLimit:
		return fault.Invalid("maxDelay", "must be at most %s, got %s", MaxDelayLimit, p.MaxDelay)
	}
	return nil
}

// Backoff returns the wait before the attempt that follows failed attempt
// number attempt (1-based), without jitter.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(p.InitialDelay) * math.Pow(p.BackoffMultiplier, float64(attempt-1))
	if d > float64(p.MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		return p.MaxDelay
	}
	return time.Duration(d)
}

// NextDelay returns the wait before retrying after failed attempt number
// attempt. retryAfter is the delay a Retry-After response header asked for
// (0 if none); the result is at least that, and never more than MaxDelay.
// r is a uniform random number in [0, 1) that spreads retries by ±10%,
// within MaxDelay.
func (p RetryPolicy) NextDelay(attempt int, retryAfter time.Duration, r float64) time.Duration {
	// In float64, so jitter near the largest durations cannot overflow.
	// r spreads the wait over [-10%, +10%] of the backoff, the range cut
	// off at MaxDelay: retries of one outage that reach the cap stay
	// spread over its last 10% instead of half of them waiting exactly
	// MaxDelay, in lockstep.
	b := float64(p.Backoff(attempt))
	lo := b * (1 - retryJitterFactor)
	hi := math.Min(b*(1+retryJitterFactor), float64(p.MaxDelay))
	f := lo + (hi-lo)*r
	f = math.Max(f, float64(retryAfter))
	f = math.Min(f, float64(p.MaxDelay))
	if f <= 0 || math.IsNaN(f) {
		return 0
	}
	if f >= float64(p.MaxDelay) {
		return p.MaxDelay
	}
	return time.Duration(f)
}

// Timeout limits of an endpoint's request timeout.
const (
	DefaultTimeout = 10 * time.Second
	MinTimeout     = 100 * time.Millisecond
	MaxTimeout     = 30 * time.Second
)

// CheckTimeout returns a BAD_USER_INPUT fault for field unless d is within
// [MinTimeout, MaxTimeout].
func CheckTimeout(field string, d time.Duration) error {
	if d < MinTimeout || d > MaxTimeout {
		return fault.Invalid(field, "must be between %s and %s, got %s", MinTimeout, MaxTimeout, d)
	}
	return nil
}
