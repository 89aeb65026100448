package dispatch

import (
	"cmp"
	"math"
	"slices"

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
//     arrivals, since a request arrives before it ends. The ends are
//     counted in a fixed number of buckets (endLog), so a flow's memory
//     does not grow with its limit.
type flow struct {
	limit       *webhook.RateLimit
	ends        endLog // when the latest requests ended
	out         int    // requests in flight
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
		f.ends, f.seeded = endLog{}, false
		if f.limit != nil {
			f.ends = newEndLog(f.limit.Per)
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
		// Enough ends must lie a window back.
		if t := f.ends.roomAt(now, free); t.After(at) {
			at = t
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
	f.ends.add(t)
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
func (f *flow) lastEnd() time.Time { return f.ends.last }

// endBuckets is how many buckets an endLog counts ends in.
const endBuckets = 64

// endLog counts when requests ended, in endBuckets buckets that together
// span a rate limit's window (and one bucket more), whatever the limit's
// number of requests. An end counts for as long as any part of its bucket
// lies within the window before now, so a limit may hold a request back
// up to one bucket (a 63rd of the window) longer than it must, never less.
type endLog struct {
	width time.Duration
	// slot i counts the ends of bucket index[i] (start: index × width).
	index [endBuckets]int64
	count [endBuckets]int
	last  time.Time
}

func newEndLog(window time.Duration) endLog {
	w := (window + endBuckets - 2) / (endBuckets - 1)
	return endLog{width: max(w, time.Nanosecond)}
}

func (l *endLog) bucket(t time.Time) int64 { return t.UnixNano() / int64(l.width) }

// add notes an end at t.
func (l *endLog) add(t time.Time) {
	if l.width == 0 {
		return
	}
	b := l.bucket(t)
	i := int(uint64(b) % endBuckets)
	if l.index[i] != b {
		l.index[i], l.count[i] = b, 0
	}
	l.count[i]++
	if t.After(l.last) {
		l.last = t
	}
}

// roomAt returns when fewer than need ends lie within the window before
// that time (now or earlier: at once), counting each bucket that overlaps
// the window whole. window is the log's window.
func (l *endLog) roomAt(now time.Time, need int) time.Time {
	if l.width == 0 {
		return now
	}
	window := l.width * (endBuckets - 1)
	first := l.bucket(now.Add(-window)) // the oldest bucket overlapping the window
	type b struct {
		index int64
		n     int
	}
	var live [endBuckets]b
	k, total := 0, 0
	for i := range endBuckets {
		if l.count[i] > 0 && l.index[i] >= first {
			live[k] = b{l.index[i], l.count[i]}
			total += l.count[i]
			k++
		}
	}
	if total < need {
		return now
	}
	// Buckets leave the window oldest first: find the one whose leaving
	// makes room.
	buckets := live[:k]
	slices.SortFunc(buckets, func(x, y b) int { return cmp.Compare(x.index, y.index) })
	for _, x := range buckets {
		total -= x.n
		if total < need {
			return time.Unix(0, (x.index+1)*int64(l.width)).Add(window)
		}
	}
	return now
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
