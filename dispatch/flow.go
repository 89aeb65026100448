package dispatch

import (
	"math"

	"github.com/heraldhq/herald/destination"
	"time"

	"github.com/heraldhq/herald/webhook"
)

// flow paces the requests to one endpoint. The scheduler owns it and
// consults it before each request: the endpoint's configured rate limit, a
// pause the endpoint asked for, and limits that adapt to its answers, as
// the Standard Webhooks specification recommends:
//
//   - Refusals halve the endpoint's concurrency (multiplicative decrease,
//     at most once per round trip: a refusal of a request sent before the
//     last decrease does not count again, so one burst of refusals counts
//     once, yet an endpoint that refuses at once is backed off within a
//     few milliseconds) and, at most once a second, its rate; successes
//     grow them back a little at a time (additive increase), and once no
//     refusal has come for recoverAfter the rate it imposed is lifted. A
//     429 is a refusal. A 502, 503 or 504 is one once such answers have
//     been more than refusalShare of the recent ones, and until they are
//     less than half that: a receiver that fails one request in five
//     whatever the load is not helped by being sent less (its retries
//     take care of those), while one that is overloaded is kept in check.
//   - A Retry-After on 429 or 503 pauses the whole endpoint for that long
//     (at most maxPause), not just the one delivery.
//   - The configured limit holds at the receiver, whatever the network
//     delays: a request leaves only if fewer than the limit's number of
//     requests are in flight or ended within its window before now. Any
//     window of that length at the receiver then sees at most that many
//     arrivals, since a request arrives before it ends.
type flow struct {
	limit       *webhook.RateLimit
	ends        []time.Time // when the latest requests ended, a ring of limit.Requests
	endNext     int         // where the next end goes (the oldest when full)
	endN        int
	out         int // requests in flight
	seeded      bool
	maxConc     int
	conc        float64 // effective concurrency, 1..maxConc
	rate        float64 // effective requests per second (0: not limited)
	lastSend    time.Time
	observed    float64 // smoothed requests per second, as sent
	pausedUntil time.Time
	seq         uint64  // requests handed out so far
	decreasedAt uint64  // seq at the latest decrease
	refusals    float64 // recent share of 502, 503 and 504 answers (moving average)
	congested   bool    // refusals went above refusalShare and not yet below half of it
	rateCutAt   time.Time
	throttledAt time.Time
}

// Flow tuning.
const (
	// refusalShare is the share of recent answers that must be 502, 503
	// or 504 for them to slow the endpoint down (429s always do).
	refusalShare = 1.0 / 3
	// refusalWeight is the weight of each answer in the moving average
	// of refusals.
	refusalWeight = 0.03
	recoverAfter  = 30 * time.Second
	maxPause      = time.Hour
	// minRate is the slowest an endpoint is throttled to: one request
	// every five seconds.
	minRate = 0.2
)

func newFlow(maxConc int) *flow {
	return &flow{maxConc: maxConc, conc: float64(maxConc)}
}

// configure applies an endpoint's configuration.
func (f *flow) configure(cfg *endpointConfig, maxConc int) {
	if f.maxConc != maxConc {
		f.maxConc = maxConc
		f.conc = math.Min(f.conc, float64(maxConc))
	}
	if !sameLimit(f.limit, cfg.RateLimit) {
		f.limit = cfg.RateLimit
		f.ends, f.endNext, f.endN, f.seeded = nil, 0, 0, false
		if f.limit != nil {
			f.ends = make([]time.Time, f.limit.Requests)
		}
	}
	if cfg.PausedUntil.After(f.pausedUntil) {
		f.pausedUntil = cfg.PausedUntil
	}
}

func sameLimit(a, b *webhook.RateLimit) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// concurrency is how many requests to the endpoint may be in flight.
func (f *flow) concurrency() int { return max(1, int(f.conc)) }

// readyAt returns when the endpoint may receive its next request (now or
// earlier: at once).
func (f *flow) readyAt(now time.Time) time.Time {
	at := now
	if f.pausedUntil.After(at) {
		at = f.pausedUntil
	}
	if f.limit != nil {
		free := f.limit.Requests - f.out
		if free <= 0 {
			// Only an end makes room, and ends wake the scheduler: this
			// is a fallback.
			return now.Add(f.limit.Per)
		}
		// The free-th latest end must lie a window back.
		if f.endN >= free {
			if t := f.ends[(f.endNext-free+len(f.ends))%len(f.ends)].Add(f.limit.Per); t.After(at) {
				at = t
			}
		}
	}
	if f.rate > 0 && !f.lastSend.IsZero() {
		if t := f.lastSend.Add(time.Duration(float64(time.Second) / f.rate)); t.After(at) {
			at = t
		}
	}
	return at
}

// done notes the end, at t, of a request handed to a worker at sent;
// requested reports that it went out at all (answered, failed or given
// up), so that it counts against the rate limit.
func (f *flow) done(t time.Time, requested bool) {
	f.out = max(0, f.out-1)
	if f.limit == nil || !requested {
		return
	}
	f.ends[f.endNext] = t
	f.endNext = (f.endNext + 1) % len(f.ends)
	f.endN = min(f.endN+1, len(f.ends))
}

// seed notes the ends of requests sent before the engine started pacing
// the endpoint (by an earlier run, or another replica), oldest first, so
// that a restart or a change of owner does not reopen the window.
func (f *flow) seed(ends []time.Time) {
	f.seeded = true
	for _, t := range ends {
		f.out++
		f.done(t, true)
	}
}

// lastEnd is when the latest request ended (zero: none noted).
func (f *flow) lastEnd() time.Time {
	if f.endN == 0 {
		return time.Time{}
	}
	return f.ends[(f.endNext-1+len(f.ends))%len(f.ends)]
}

// sent notes a request leaving at now and returns its sequence number,
// for answered.
func (f *flow) sent(now time.Time) uint64 {
	f.out++
	f.seq++
	if !f.lastSend.IsZero() {
		if gap := now.Sub(f.lastSend).Seconds(); gap > 0 {
			f.observed = 0.8*f.observed + 0.2/gap
		}
	}
	f.lastSend = now
	return f.seq
}

// answered adapts the limits to the answer to request seq: its outcome,
// whether it said the endpoint is overloaded (an HTTP 502, 503 or 504),
// and the pause it asked for (see pauseFor).
func (f *flow) answered(now time.Time, seq uint64, o destination.Outcome, gateway bool, retryAfter time.Duration) {
	success := o == destination.Delivered
	f.refusals *= 1 - refusalWeight
	if gateway {
		f.refusals += refusalWeight
	}
	if f.congested && f.refusals < refusalShare/2 {
		f.congested = false
	}
	switch {
	case o == destination.Throttled || gateway:
		if retryAfter > 0 {
			f.throttledAt = now
			if until := now.Add(retryAfter); until.After(f.pausedUntil) {
				f.pausedUntil = until
			}
		}
		if gateway && !f.congested {
			if f.refusals < refusalShare {
				return // a stray failure, not a pattern
			}
			f.congested = true
		}
		f.throttledAt = now
		if seq <= f.decreasedAt {
			return // sent before the latest decrease took effect
		}
		f.decreasedAt = f.seq
		f.conc = math.Max(1, f.conc/2)
		if now.Sub(f.rateCutAt) < time.Second {
			return
		}
		f.rateCutAt = now
		switch {
		case f.rate > 0:
			f.rate = math.Max(minRate, f.rate/2)
		case f.observed >= 2*minRate*10:
			// Under real traffic (a few requests a second), pace it too:
			// concurrency alone does not slow a fast endpoint down.
			f.rate = f.observed / 2
		}
	case success:
		f.conc = math.Min(float64(f.maxConc), f.conc+1/f.conc)
		if f.rate > 0 {
			if now.Sub(f.throttledAt) > recoverAfter {
				f.rate = 0
			} else {
				f.rate += 0.05 + f.rate*0.05
			}
		}
	}
}

// FlowState is an endpoint's current pace, as the engine sends to it.
type FlowState struct {
	// RateLimit is the configured limit (nil: none).
	RateLimit *webhook.RateLimit
	// Concurrency is how many requests may be in flight now, of at most
	// MaxConcurrency.
	Concurrency, MaxConcurrency int
	// RatePerSecond is the rate the endpoint's answers imposed (0: none).
	RatePerSecond float64
	// PausedUntil is when a pause the endpoint asked for ends (zero:
	// none).
	PausedUntil time.Time
	// Throttled reports that the endpoint's answers reduced its pace.
	Throttled bool
}

func (f *flow) state(now time.Time) FlowState {
	st := FlowState{RateLimit: f.limit, Concurrency: f.concurrency(), MaxConcurrency: f.maxConc, RatePerSecond: f.rate}
	if f.pausedUntil.After(now) {
		st.PausedUntil = f.pausedUntil
	}
	st.Throttled = st.Concurrency < f.maxConc || f.rate > 0 || !st.PausedUntil.IsZero()
	return st
}
