package dispatch

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald/webhook"
)

// simulate sends n requests through a flow with the given rate limit and
// concurrency to a receiver whose requests take random times to arrive
// and to be answered (up to maxDelay each), and returns when each
// arrived, sorted, and how long it all took.
func simulate(t *testing.T, seed uint64, limit webhook.RateLimit, conc, n int, maxDelay time.Duration, before []time.Time) ([]time.Time, time.Duration) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	jitter := func() time.Duration { return time.Duration(rng.Int64N(int64(maxDelay) + 1)) }
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newFlow(conc)
	f.configure(&endpointConfig{RateLimit: &limit}, conc)
	f.seed(before)
	now := start
	var ends, arrivals []time.Time
	for len(arrivals) < n {
		for len(ends) < f.concurrency() && len(arrivals) < n && !f.readyAt(now).After(now) {
			f.sent(now)
			arrive := now.Add(jitter())
			arrivals = append(arrivals, arrive)
			ends = append(ends, arrive.Add(jitter()))
		}
		next := time.Time{}
		for _, e := range ends {
			if next.IsZero() || e.Before(next) {
				next = e
			}
		}
		if len(ends) < f.concurrency() {
			if r := f.readyAt(now); r.After(now) && (next.IsZero() || r.Before(next)) {
				next = r
			}
		}
		if next.IsZero() || next.Before(now) {
			t.Fatalf("simulation stuck at %s", now)
		}
		now = next
		kept := ends[:0]
		for _, e := range ends {
			if e.After(now) {
				kept = append(kept, e)
				continue
			}
			f.done(now, true)
		}
		ends = kept
	}
	slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
	return arrivals, now.Sub(start)
}

func TestFlow_RateLimitHoldsAtTheReceiverWhateverTheDelays(t *testing.T) {
	tests := []struct {
		name     string
		limit    webhook.RateLimit
		conc     int
		maxDelay time.Duration
	}{
		{"5 per second, fast receiver", webhook.RateLimit{Requests: 5, Per: time.Second}, 32, 5 * time.Millisecond},
		{"5 per second, erratic network", webhook.RateLimit{Requests: 5, Per: time.Second}, 32, 400 * time.Millisecond},
		{"1 per 100ms", webhook.RateLimit{Requests: 1, Per: 100 * time.Millisecond}, 4, 30 * time.Millisecond},
		{"100 per second, slow receiver", webhook.RateLimit{Requests: 100, Per: time.Second}, 128, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(5) {
				const n = 400
				arrivals, took := simulate(t, seed, tt.limit, tt.conc, n, tt.maxDelay, nil)
				k := tt.limit.Requests
				for i := 0; i+k < len(arrivals); i++ {
					if gap := arrivals[i+k].Sub(arrivals[i]); gap < tt.limit.Per {
						t.Fatalf("seed %d: %d requests arrived within %s (from %s), limit %d per %s", seed, k+1, gap, arrivals[i].Format("15:04:05.000"), k, tt.limit.Per)
					}
				}
				// Not starved either: each window lets its requests go
				// once the previous ones have ended.
				windows := (n + k - 1) / k
				if most := time.Duration(windows) * (tt.limit.Per + 2*tt.maxDelay); took > most {
					t.Fatalf("seed %d: %d requests took %s, want at most %s", seed, n, took, most)
				}
			}
		})
	}
}

func TestFlow_RequestsOfAnEarlierRunCount(t *testing.T) {
	limit := webhook.RateLimit{Requests: 5, Per: time.Second}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// An earlier run sent 5 requests that ended in the last 600ms: the
	// next may leave only when the first of them is a window old.
	var before []time.Time
	for i := range 5 {
		before = append(before, start.Add(-600*time.Millisecond+time.Duration(i)*100*time.Millisecond))
	}
	f := newFlow(32)
	f.configure(&endpointConfig{RateLimit: &limit}, 32)
	f.seed(before)
	// Ends are counted in buckets of a 63rd of the window: the request
	// may wait up to one bucket longer, never less.
	if got, want := f.readyAt(start), before[0].Add(time.Second); got.Before(want) || got.After(want.Add(time.Second/63+time.Millisecond)) {
		t.Fatalf("readyAt = %s, want %s or up to a 63rd of the window later", got, want)
	}
	// Without them it may go at once.
	g := newFlow(32)
	g.configure(&endpointConfig{RateLimit: &limit}, 32)
	if got := g.readyAt(start); !got.Equal(start) {
		t.Fatalf("readyAt without history = %s, want now", got)
	}
}

// TestFlow_MemoryDoesNotGrowWithTheLimit is the memory of a rate-limited
// endpoint: the same whatever its number of requests, and the limit still
// holds for 10,000 requests a second.
func TestFlow_MemoryDoesNotGrowWithTheLimit(t *testing.T) {
	small, large := webhook.RateLimit{Requests: 1, Per: time.Second}, webhook.RateLimit{Requests: 10000, Per: time.Second}
	allocated := func(limit *webhook.RateLimit) (*flow, uint64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f := newFlow(32)
		f.configure(&endpointConfig{RateLimit: limit}, 32)
		runtime.ReadMemStats(&after)
		return f, after.TotalAlloc - before.TotalAlloc
	}
	_, a := allocated(&small)
	g, b := allocated(&large)
	if b > a+1024 {
		t.Fatalf("a flow limited to %d requests took %d bytes, one limited to %d %d", large.Requests, b, small.Requests, a)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	sent := 0
	for now.Before(start.Add(time.Second)) {
		if f := g.readyAt(now); !f.After(now) {
			g.sent(now)
			g.done(now, true)
			sent++
			continue
		}
		now = g.readyAt(now)
	}
	if sent > large.Requests {
		t.Fatalf("%d requests ended within one window of %s; the limit is %d", sent, large.Per, large.Requests)
	}
	if sent < large.Requests*9/10 {
		t.Fatalf("only %d requests in the first window; want close to %d", sent, large.Requests)
	}
}
