package webhook

import (
	"math"
	"testing"
	"time"
)

func TestRetryPolicyValidate_AcceptsBounds(t *testing.T) {
	tests := []struct {
		name string
		p    RetryPolicy
	}{
		{"default", DefaultRetryPolicy()},
		{"one attempt", RetryPolicy{MaxAttempts: 1, InitialDelay: time.Second, BackoffMultiplier: 2, MaxDelay: time.Minute}},
		{"max attempts", RetryPolicy{MaxAttempts: MaxAttemptsLimit, InitialDelay: time.Second, BackoffMultiplier: 2, MaxDelay: time.Minute}},
		{"zero delays", RetryPolicy{MaxAttempts: 3, InitialDelay: 0, BackoffMultiplier: 1, MaxDelay: 0}},
		{"multiplier 1", RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, BackoffMultiplier: 1, MaxDelay: time.Second}},
		{"max multiplier", RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, BackoffMultiplier: MaxMultiplier, MaxDelay: time.Hour}},
		{"max delay equals initial", RetryPolicy{MaxAttempts: 3, InitialDelay: time.Hour, BackoffMultiplier: 2, MaxDelay: time.Hour}},
		{"max delay limit", RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, BackoffMultiplier: 2, MaxDelay: MaxDelayLimit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); err != nil {
				t.Errorf("Validate(%+v) = %v, want nil", tt.p, err)
			}
		})
	}
}

func TestRetryPolicyValidate_RejectsEachBound(t *testing.T) {
	ok := RetryPolicy{MaxAttempts: 5, InitialDelay: time.Second, BackoffMultiplier: 2, MaxDelay: time.Hour}
	tests := []struct {
		name  string
		edit  func(*RetryPolicy)
		field string
	}{
		{"zero attempts", func(p *RetryPolicy) { p.MaxAttempts = 0 }, "maxAttempts"},
		{"negative attempts", func(p *RetryPolicy) { p.MaxAttempts = -1 }, "maxAttempts"},
		{"too many attempts", func(p *RetryPolicy) { p.MaxAttempts = MaxAttemptsLimit + 1 }, "maxAttempts"},
		{"negative initial delay", func(p *RetryPolicy) { p.InitialDelay = -time.Nanosecond }, "initialDelay"},
		{"multiplier below 1", func(p *RetryPolicy) { p.BackoffMultiplier = 0.99 }, "backoffMultiplier"},
		{"zero multiplier", func(p *RetryPolicy) { p.BackoffMultiplier = 0 }, "backoffMultiplier"},
		{"multiplier above limit", func(p *RetryPolicy) { p.BackoffMultiplier = MaxMultiplier + 0.01 }, "backoffMultiplier"},
		{"NaN multiplier", func(p *RetryPolicy) { p.BackoffMultiplier = math.NaN() }, "backoffMultiplier"},
		{"infinite multiplier", func(p *RetryPolicy) { p.BackoffMultiplier = math.Inf(1) }, "backoffMultiplier"},
		{"max delay below initial", func(p *RetryPolicy) { p.MaxDelay = p.InitialDelay - time.Nanosecond }, "maxDelay"},
		{"max delay above limit", func(p *RetryPolicy) { p.MaxDelay = MaxDelayLimit + time.Nanosecond }, "maxDelay"},
		{"initial delay above limit", func(p *RetryPolicy) {
			p.InitialDelay = MaxDelayLimit + time.Second
			p.MaxDelay = p.InitialDelay
		}, "maxDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			wantFault(t, p.Validate(), tt.field)
		})
	}
}

func TestDefaultRetryPolicy_FollowsDocumentedSchedule(t *testing.T) {
	p := DefaultRetryPolicy()
	if p.MaxAttempts != 8 {
		t.Errorf("MaxAttempts = %d, want 8", p.MaxAttempts)
	}
	want := []time.Duration{
		5 * time.Second,
		30 * time.Second,
		3 * time.Minute,
		18 * time.Minute,
		time.Hour + 48*time.Minute,
		10*time.Hour + 48*time.Minute,
		12 * time.Hour, // capped
	}
	var total time.Duration
	for i, w := range want {
		attempt := i + 1
		got := p.Backoff(attempt)
		if got != w {
			t.Errorf("Backoff(%d) = %s, want %s", attempt, got, w)
		}
		total += got
	}
	// "8 attempts spread over about 25 hours".
	if total < 24*time.Hour || total > 26*time.Hour {
		t.Errorf("schedule spans %s, want about 25h", total)
	}
	for _, attempt := range []int{8, 20, 1000} {
		if got := p.Backoff(attempt); got != p.MaxDelay {
			t.Errorf("Backoff(%d) = %s, want the cap %s", attempt, got, p.MaxDelay)
		}
	}
}

func TestBackoff_AttemptBelowOneIsTreatedAsOne(t *testing.T) {
	p := DefaultRetryPolicy()
	for _, attempt := range []int{0, -1, math.MinInt} {
		if got, want := p.Backoff(attempt), p.Backoff(1); got != want {
			t.Errorf("Backoff(%d) = %s, want Backoff(1) = %s", attempt, got, want)
		}
		if got, want := p.NextDelay(attempt, 0, 0.5), p.NextDelay(1, 0, 0.5); got != want {
			t.Errorf("NextDelay(%d) = %s, want NextDelay(1) = %s", attempt, got, want)
		}
	}
}

func TestBackoff_HugeExponentsDoNotOverflow(t *testing.T) {
	tests := []struct {
		name    string
		p       RetryPolicy
		attempt int
	}{
		{"max multiplier, max attempts", RetryPolicy{MaxAttempts: MaxAttemptsLimit, InitialDelay: time.Hour, BackoffMultiplier: MaxMultiplier, MaxDelay: MaxDelayLimit}, MaxAttemptsLimit},
		{"max multiplier, huge attempt", RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, BackoffMultiplier: MaxMultiplier, MaxDelay: time.Hour}, math.MaxInt},
		{"infinite product", RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, BackoffMultiplier: math.MaxFloat64, MaxDelay: time.Hour}, 3},
		{"multiplier 1, huge attempt", RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, BackoffMultiplier: 1, MaxDelay: time.Hour}, math.MaxInt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.p.Backoff(tt.attempt)
			if b < 0 || b > tt.p.MaxDelay {
				t.Errorf("Backoff(%d) = %s, want within [0, %s]", tt.attempt, b, tt.p.MaxDelay)
			}
			for _, r := range []float64{0, 0.5, 0.999999} {
				d := tt.p.NextDelay(tt.attempt, 0, r)
				if d < 0 || d > tt.p.MaxDelay {
					t.Errorf("NextDelay(%d, 0, %g) = %s, want within [0, %s]", tt.attempt, r, d, tt.p.MaxDelay)
				}
				if b == tt.p.MaxDelay && d < tt.p.MaxDelay*9/10 {
					t.Errorf("NextDelay(%d, 0, %g) = %s, want at least 90%% of the capped %s", tt.attempt, r, d, tt.p.MaxDelay)
				}
			}
		})
	}
}

func TestNextDelay_UnvalidatedHugeMaxDelayDoesNotWrapToZero(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second, BackoffMultiplier: MaxMultiplier, MaxDelay: math.MaxInt64}
	if d := p.NextDelay(100, 0, 0.9); d < p.MaxDelay/2 {
		t.Errorf("NextDelay = %s, want close to MaxDelay %s", d, p.MaxDelay)
	}
}

func TestNextDelay_JitterStaysWithinTenPercent(t *testing.T) {
	p := DefaultRetryPolicy()
	for attempt := 1; attempt <= 6; attempt++ { // below the cap
		base := p.Backoff(attempt)
		lo := time.Duration(float64(base) * 0.9)
		hi := time.Duration(float64(base) * 1.1)
		prev := time.Duration(-1)
		for i := 0; i < 100; i++ {
			r := float64(i) / 100
			d := p.NextDelay(attempt, 0, r)
			if d < lo-1 || d >= hi+1 {
				t.Fatalf("NextDelay(%d, 0, %g) = %s, want within [%s, %s)", attempt, r, d, lo, hi)
			}
			if d < prev {
				t.Fatalf("NextDelay(%d) not monotonic in r: r=%g gives %s < %s", attempt, r, d, prev)
			}
			prev = d
		}
		if d := p.NextDelay(attempt, 0, 0); absDur(d-lo) > 1 {
			t.Errorf("NextDelay(%d, 0, 0) = %s, want the lower bound %s", attempt, d, lo)
		}
		if d := p.NextDelay(attempt, 0, 0.5); absDur(d-base) > 1 {
			t.Errorf("NextDelay(%d, 0, 0.5) = %s, want the unjittered %s", attempt, d, base)
		}
		if d := p.NextDelay(attempt, 0, math.Nextafter(1, 0)); d >= hi+1 || d < base {
			t.Errorf("NextDelay(%d, 0, ~1) = %s, want just under %s", attempt, d, hi)
		}
	}
}

// Retries that reach the cap must not fall into lockstep: if jitter above
// the cap were cut off, half of them would wait exactly MaxDelay.
func TestNextDelay_RetriesAtTheCapStaySpread(t *testing.T) {
	p := DefaultRetryPolicy()
	seen := map[time.Duration]bool{}
	for i := range 100 {
		d := p.NextDelay(8, 0, float64(i)/100)
		if d > p.MaxDelay || d < p.MaxDelay*9/10 {
			t.Fatalf("NextDelay(8, 0, %g) = %s, want within [90%%, 100%%] of %s", float64(i)/100, d, p.MaxDelay)
		}
		seen[d] = true
	}
	if len(seen) < 90 {
		t.Fatalf("100 retries at the cap wait only %d different delays: they would be sent in lockstep", len(seen))
	}
}

func TestNextDelay_RetryAfter(t *testing.T) {
	p := DefaultRetryPolicy() // Backoff(1) = 5s, MaxDelay 12h
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		want       time.Duration
	}{
		{"raises a shorter backoff", 1, time.Minute, time.Minute},
		{"does not lower a longer backoff", 4, time.Minute, 18 * time.Minute},
		{"just above the jittered backoff wins", 1, 5*time.Second + time.Millisecond, 5*time.Second + time.Millisecond},
		{"is capped at MaxDelay", 1, 48 * time.Hour, 12 * time.Hour},
		{"huge value is capped at MaxDelay", 1, math.MaxInt64, 12 * time.Hour},
		{"negative is ignored", 1, -time.Hour, 5 * time.Second},
		{"zero is ignored", 2, 0, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// r = 0.5 applies no jitter.
			got := p.NextDelay(tt.attempt, tt.retryAfter, 0.5)
			if absDur(got-tt.want) > 1 {
				t.Errorf("NextDelay(%d, %s, 0.5) = %s, want %s", tt.attempt, tt.retryAfter, got, tt.want)
			}
		})
	}
}

func TestNextDelay_NeverAboveMaxDelay(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, InitialDelay: time.Minute, BackoffMultiplier: 10, MaxDelay: 2 * time.Hour}
	for attempt := 1; attempt <= 10; attempt++ {
		for _, ra := range []time.Duration{0, time.Hour, 3 * time.Hour} {
			for _, r := range []float64{0, 0.5, 0.999} {
				if d := p.NextDelay(attempt, ra, r); d > p.MaxDelay || d < 0 {
					t.Errorf("NextDelay(%d, %s, %g) = %s, want within [0, %s]", attempt, ra, r, d, p.MaxDelay)
				}
			}
		}
	}
}

func TestCheckTimeout(t *testing.T) {
	tests := []struct {
		d     time.Duration
		valid bool
	}{
		{MinTimeout, true},
		{DefaultTimeout, true},
		{MaxTimeout, true},
		{MinTimeout - time.Nanosecond, false},
		{MaxTimeout + time.Nanosecond, false},
		{0, false},
		{-time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			err := CheckTimeout("input.timeout", tt.d)
			if tt.valid {
				if err != nil {
					t.Errorf("CheckTimeout(%s) = %v, want nil", tt.d, err)
				}
				return
			}
			wantFault(t, err, "input.timeout")
		})
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
