package dispatch

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/webhook"
)

func TestDecide(t *testing.T) {
	policy := webhook.DefaultRetryPolicy() // 8 attempts; Backoff 5s, 30s, 3m, …
	resp := func(o destination.Outcome, retryAfter time.Duration) *destination.Result {
		return &destination.Result{Outcome: o, RetryAfter: retryAfter}
	}
	tests := []struct {
		name    string
		resp    *destination.Result
		trigger string
		number  int
		policy  webhook.RetryPolicy
		active  bool
		want    decision
	}{
		{"success", resp(destination.Delivered, 0), "SCHEDULED", 1, policy, true, decision{status: "SUCCEEDED"}},
		{"success of last attempt", resp(destination.Delivered, 0), "SCHEDULED", 8, policy, true, decision{status: "SUCCEEDED"}},
		{"success on inactive endpoint", resp(destination.Delivered, 0), "MANUAL_RETRY", 3, policy, false, decision{status: "SUCCEEDED"}},
		{"test success", resp(destination.Delivered, 0), "TEST", 1, policy, true, decision{status: "SUCCEEDED"}},
		{"test retryable is not retried", resp(destination.Retryable, time.Minute), "TEST", 1, policy, true, decision{status: "FAILED"}},
		{"test permanent is not final", resp(destination.Permanent, 0), "TEST", 1, policy, true, decision{status: "FAILED"}},
		{"retryable with attempts left", resp(destination.Retryable, 0), "SCHEDULED", 1, policy, true, decision{status: "RETRYING", retryIn: 5 * time.Second}},
		{"retryable third attempt", resp(destination.Retryable, 0), "SCHEDULED", 3, policy, true, decision{status: "RETRYING", retryIn: 3 * time.Minute}},
		{"retryable honours Retry-After", resp(destination.Retryable, time.Hour), "SCHEDULED", 1, policy, true, decision{status: "RETRYING", retryIn: time.Hour}},
		{"retryable Retry-After capped", resp(destination.Retryable, 100*time.Hour), "SCHEDULED", 1, policy, true, decision{status: "RETRYING", retryIn: 12 * time.Hour}},
		// At the cap the jitter spreads under it: r = 0.5 is its middle.
		{"retryable next to last attempt waits about the cap", resp(destination.Retryable, 0), "SCHEDULED", 7, policy, true, decision{status: "RETRYING", retryIn: 12 * time.Hour * 95 / 100}},
		{"manual retry with attempts left", resp(destination.Retryable, 0), "MANUAL_RETRY", 2, policy, true, decision{status: "RETRYING", retryIn: 30 * time.Second}},
		{"retryable but endpoint inactive", resp(destination.Retryable, 0), "SCHEDULED", 1, policy, false, decision{status: "FAILED", note: " (not retried: the endpoint is disabled)"}},
		{"retryable exhausted", resp(destination.Retryable, 0), "SCHEDULED", 8, policy, true, decision{status: "FAILED", final: true, note: " (gave up after 8 attempts)"}},
		{"retryable exhausted and inactive", resp(destination.Retryable, 0), "SCHEDULED", 8, policy, false, decision{status: "FAILED", final: true, note: " (gave up after 8 attempts)"}},
		{"manual retry beyond the policy", resp(destination.Retryable, 0), "MANUAL_RETRY", 9, policy, true, decision{status: "FAILED", final: true, note: " (gave up after 9 attempts)"}},
		{"single-attempt policy", resp(destination.Retryable, 0), "SCHEDULED", 1, webhook.RetryPolicy{MaxAttempts: 1, InitialDelay: time.Second, BackoffMultiplier: 2, MaxDelay: time.Minute}, true, decision{status: "FAILED", final: true, note: " (gave up after 1 attempts)"}},
		{"permanent", resp(destination.Permanent, 0), "SCHEDULED", 1, policy, true, decision{status: "FAILED", final: true, note: " (permanent failure: not retried)"}},
		{"permanent on inactive endpoint", resp(destination.Permanent, 0), "SCHEDULED", 1, policy, false, decision{status: "FAILED", final: true, note: " (permanent failure: not retried)"}},
		{"permanent ignores Retry-After", resp(destination.Permanent, time.Hour), "SCHEDULED", 2, policy, true, decision{status: "FAILED", final: true, note: " (permanent failure: not retried)"}},
		{"throttled retries like retryable", resp(destination.Throttled, 0), "SCHEDULED", 3, policy, true, decision{status: "RETRYING", retryIn: 3 * time.Minute}},
		{"throttled exhausted is final", resp(destination.Throttled, 0), "SCHEDULED", 8, policy, true, decision{status: "FAILED", final: true, note: " (gave up after 8 attempts)"}},
		// Deferred uses no attempt: attempt 3 deferred waits as attempt 2's
		// failure would, and even the last attempt is tried again.
		{"deferred waits without using an attempt", resp(destination.Deferred, 0), "SCHEDULED", 3, policy, true, decision{status: "RETRYING", retryIn: 30 * time.Second}},
		{"deferred last attempt is not final", resp(destination.Deferred, 0), "SCHEDULED", 8, policy, true, decision{status: "RETRYING", retryIn: 12 * time.Hour * 95 / 100}},
		{"deferred honours its retry-after", resp(destination.Deferred, time.Minute), "SCHEDULED", 1, policy, true, decision{status: "RETRYING", retryIn: time.Minute}},
		{"deferred on inactive endpoint fails", resp(destination.Deferred, 0), "SCHEDULED", 1, policy, false, decision{status: "FAILED", note: " (not retried: the endpoint is disabled)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// r = 0.5 applies no jitter.
			got := decide(tt.resp, tt.trigger, tt.number, tt.policy, tt.active, 0.5)
			d := got.retryIn - tt.want.retryIn
			if got.status != tt.want.status || got.final != tt.want.final || got.note != tt.want.note || d < -1 || d > 1 {
				t.Errorf("decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecide_RetryDelayIsJittered(t *testing.T) {
	policy := webhook.DefaultRetryPolicy()
	lo := decide(&destination.Result{Outcome: destination.Retryable}, "SCHEDULED", 2, policy, true, 0)
	hi := decide(&destination.Result{Outcome: destination.Retryable}, "SCHEDULED", 2, policy, true, 0.999)
	if lo.retryIn >= hi.retryIn {
		t.Errorf("retryIn with r=0 (%s) not below r=0.999 (%s)", lo.retryIn, hi.retryIn)
	}
	if lo.retryIn < 27*time.Second || hi.retryIn > 33*time.Second {
		t.Errorf("retryIn range [%s, %s] leaves 30s ±10%%", lo.retryIn, hi.retryIn)
	}
}

func TestRenderEnvelope(t *testing.T) {
	created := time.Date(2026, 3, 14, 16, 9, 26, 535897932, time.FixedZone("CET", 3600))
	payload := []byte(`{ "b": 1.50, "a": [1, 2], "s": "caf\u00e9 \"q\"" }`)
	body := renderEnvelope("evt_01JDZ6Q4W8X3M5N7P9R2T4V6XA", "order.created", created, payload, false)

	if !json.Valid(body) {
		t.Fatalf("envelope is not valid JSON: %s", body)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"data", "id", "timestamp", "type"}; !slices.Equal(keys, want) {
		t.Errorf("envelope keys = %q, want %q", keys, want)
	}
	var id, typ, ts string
	for k, dst := range map[string]*string{"id": &id, "type": &typ, "timestamp": &ts} {
		if err := json.Unmarshal(env[k], dst); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if id != "evt_01JDZ6Q4W8X3M5N7P9R2T4V6XA" || typ != "order.created" {
		t.Errorf("id, type = %q, %q", id, typ)
	}
	if want := "2026-03-14T15:09:26.535897932Z"; ts != want {
		t.Errorf("timestamp = %q, want %q (RFC 3339 with nanoseconds, UTC)", ts, want)
	}
	if parsed, err := time.Parse(time.RFC3339Nano, ts); err != nil || !parsed.Equal(created) {
		t.Errorf("timestamp %q parses to %v (%v), want %v", ts, parsed, err, created)
	}
	if !bytes.Equal(env["data"], payload) {
		t.Errorf("data = %s, want the payload bytes verbatim %s", env["data"], payload)
	}
	if !bytes.HasSuffix(body, append(append([]byte(`"data":`), payload...), '}')) {
		t.Errorf("envelope does not end with the verbatim payload: %s", body)
	}
}

func TestRenderEnvelope_WholeSecondsDropFraction(t *testing.T) {
	body := renderEnvelope("evt_1", "test.ping", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), []byte(`{}`), false)
	if want := `{"id":"evt_1","type":"test.ping","timestamp":"2026-01-02T03:04:05Z","data":{}}`; string(body) != want {
		t.Errorf("renderEnvelope = %s, want %s", body, want)
	}
}

// timeoutErr is a net.Error that reports a timeout.
// closeTracker records whether Close was called.
