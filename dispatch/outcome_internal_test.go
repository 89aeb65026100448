package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/signing"
	"github.com/heraldhq/herald/webhook"
)

func TestClassify_StatusClasses(t *testing.T) {
	tests := []struct {
		want     Outcome
		statuses []int
	}{
		{Success, []int{200, 201, 202, 204, 299}},
		{Permanent, []int{0, 100, 101, 199}},
		{Permanent, []int{300, 301, 302, 303, 304, 307, 308, 399}},
		{Retryable, []int{http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests}},
		{Permanent, []int{400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 426, 451, 499}},
		{Retryable, []int{500, 501, 502, 503, 504, 599}},
	}
	for _, tt := range tests {
		for _, status := range tt.statuses {
			t.Run(fmt.Sprint(status), func(t *testing.T) {
				if got := Classify(status); got != tt.want {
					t.Errorf("Classify(%d) = %s, want %s", status, got, tt.want)
				}
			})
		}
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Success: "success", Retryable: "retryable", Permanent: "permanent"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	const year = 365 * 24 * time.Hour
	tests := []struct {
		name   string
		header string
		want   time.Duration
	}{
		{"absent", "", 0},
		{"blank", "  ", 0},
		{"delay-seconds", "120", 2 * time.Minute},
		{"delay-seconds with spaces", " 7 ", 7 * time.Second},
		{"zero", "0", 0},
		{"negative", "-30", 0},
		{"fraction", "1.5", 0},
		{"garbage", "soon", 0},
		{"seconds with unit", "10s", 0},
		{"one year", "31536000", year},
		{"just over one year is capped", "31536001", year},
		{"max int64 is capped", "9223372036854775807", year},
		{"HTTP-date in the future", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"RFC 850 date in the future", now.Add(time.Hour).Format(time.RFC850), time.Hour},
		{"ANSI C date in the future", now.Add(time.Minute).Format(time.ANSIC), time.Minute},
		{"HTTP-date now", now.Format(http.TimeFormat), 0},
		{"HTTP-date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"malformed date", "Sat, 14 Mar 2026 25:61:00 GMT", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RetryAfter(tt.header, now); got != tt.want {
				t.Errorf("RetryAfter(%q) = %s, want %s", tt.header, got, tt.want)
			}
		})
	}
}

func TestRetryAfter_FarFutureDateIsPositive(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	if got := RetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now); got <= 0 {
		t.Errorf("RetryAfter(year 9999) = %s, want a positive (saturated) delay", got)
	}
}

func TestRetryAfter_DelaySecondsBeyondInt64AreCapped(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	if got, want := RetryAfter("99999999999999999999", now), 365*24*time.Hour; got != want {
		t.Errorf("RetryAfter(20 digits) = %s, want %s", got, want)
	}
}

func TestDecide(t *testing.T) {
	policy := webhook.DefaultRetryPolicy() // 8 attempts; Backoff 5s, 30s, 3m, …
	resp := func(o Outcome, retryAfter time.Duration) *response {
		return &response{Outcome: o, RetryAfter: retryAfter}
	}
	tests := []struct {
		name    string
		resp    *response
		trigger string
		number  int
		policy  webhook.RetryPolicy
		active  bool
		want    decision
	}{
		{"success", resp(Success, 0), "SCHEDULED", 1, policy, true, decision{status: "SUCCEEDED"}},
		{"success of last attempt", resp(Success, 0), "SCHEDULED", 8, policy, true, decision{status: "SUCCEEDED"}},
		{"success on inactive endpoint", resp(Success, 0), "MANUAL_RETRY", 3, policy, false, decision{status: "SUCCEEDED"}},
		{"test success", resp(Success, 0), "TEST", 1, policy, true, decision{status: "SUCCEEDED"}},
		{"test retryable is not retried", resp(Retryable, time.Minute), "TEST", 1, policy, true, decision{status: "FAILED"}},
		{"test permanent is not final", resp(Permanent, 0), "TEST", 1, policy, true, decision{status: "FAILED"}},
		{"retryable with attempts left", resp(Retryable, 0), "SCHEDULED", 1, policy, true, decision{status: "RETRYING", retryIn: 5 * time.Second}},
		{"retryable third attempt", resp(Retryable, 0), "SCHEDULED", 3, policy, true, decision{status: "RETRYING", retryIn: 3 * time.Minute}},
		{"retryable honours Retry-After", resp(Retryable, time.Hour), "SCHEDULED", 1, policy, true, decision{status: "RETRYING", retryIn: time.Hour}},
		{"retryable Retry-After capped", resp(Retryable, 100*time.Hour), "SCHEDULED", 1, policy, true, decision{status: "RETRYING", retryIn: 12 * time.Hour}},
		// At the cap the jitter spreads under it: r = 0.5 is its middle.
		{"retryable next to last attempt waits about the cap", resp(Retryable, 0), "SCHEDULED", 7, policy, true, decision{status: "RETRYING", retryIn: 12 * time.Hour * 95 / 100}},
		{"manual retry with attempts left", resp(Retryable, 0), "MANUAL_RETRY", 2, policy, true, decision{status: "RETRYING", retryIn: 30 * time.Second}},
		{"retryable but endpoint inactive", resp(Retryable, 0), "SCHEDULED", 1, policy, false, decision{status: "FAILED", note: " (not retried: the endpoint is disabled)"}},
		{"retryable exhausted", resp(Retryable, 0), "SCHEDULED", 8, policy, true, decision{status: "FAILED", final: true, note: " (gave up after 8 attempts)"}},
		{"retryable exhausted and inactive", resp(Retryable, 0), "SCHEDULED", 8, policy, false, decision{status: "FAILED", final: true, note: " (gave up after 8 attempts)"}},
		{"manual retry beyond the policy", resp(Retryable, 0), "MANUAL_RETRY", 9, policy, true, decision{status: "FAILED", final: true, note: " (gave up after 9 attempts)"}},
		{"single-attempt policy", resp(Retryable, 0), "SCHEDULED", 1, webhook.RetryPolicy{MaxAttempts: 1, InitialDelay: time.Second, BackoffMultiplier: 2, MaxDelay: time.Minute}, true, decision{status: "FAILED", final: true, note: " (gave up after 1 attempts)"}},
		{"permanent", resp(Permanent, 0), "SCHEDULED", 1, policy, true, decision{status: "FAILED", final: true, note: " (permanent failure: not retried)"}},
		{"permanent on inactive endpoint", resp(Permanent, 0), "SCHEDULED", 1, policy, false, decision{status: "FAILED", final: true, note: " (permanent failure: not retried)"}},
		{"permanent ignores Retry-After", resp(Permanent, time.Hour), "SCHEDULED", 2, policy, true, decision{status: "FAILED", final: true, note: " (permanent failure: not retried)"}},
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
	lo := decide(&response{Outcome: Retryable}, "SCHEDULED", 2, policy, true, 0)
	hi := decide(&response{Outcome: Retryable}, "SCHEDULED", 2, policy, true, 0.999)
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
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyError(t *testing.T) {
	const timeout = 10 * time.Second
	blocked := &destination.BlockedError{
		Addr:   netip.MustParseAddrPort("10.0.0.1:443"),
		Reason: "is a private address",
		Range:  netip.MustParsePrefix("10.0.0.0/8"),
	}
	urlErr := &destination.URLError{URL: "ftp://example.com/hook", Reason: "uses ftp; use https"}
	post := func(err error) error { return &url.Error{Op: "Post", URL: "https://example.com/hook", Err: err} }
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	tests := []struct {
		name    string
		err     error
		want    Outcome
		message string // exact, or a prefix when it ends with "…"
	}{
		{"blocked address", blocked, Permanent, "destination not allowed: destination blocked: 10.0.0.1 is a private address (10.0.0.0/8)"},
		{"blocked at dial", post(dial(blocked)), Permanent, "destination not allowed: destination blocked: 10.0.0.1 is a private address (10.0.0.0/8)"},
		{"bad URL", urlErr, Permanent, urlErr.Error()},
		{"bad redirect URL", post(urlErr), Permanent, urlErr.Error()},
		{"URL blocked by its IP", &destination.URLError{URL: "https://10.0.0.1/", Reason: "is private", Err: blocked}, Permanent, "destination not allowed: …"},
		{"too many redirects", fmt.Errorf("%w: the endpoint redirected more than 2 times", errTooManyRedirects), Permanent, "too many redirects: the endpoint redirected more than 2 times"},
		{"deadline exceeded", post(context.DeadlineExceeded), Retryable, "timeout: no complete response within 10s"},
		{"net timeout", post(&net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}), Retryable, "timeout: no complete response within 10s"},
		{"os deadline", post(os.ErrDeadlineExceeded), Retryable, "timeout: …"},
		{"connection refused", post(dial(os.NewSyscallError("connect", syscall.ECONNREFUSED))), Retryable, "connection refused"},
		{"connection reset", post(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), Retryable, "connection reset by peer"},
		{"DNS failure", post(dial(&net.DNSError{Err: "no such host", Name: "hooks.example.invalid", IsNotFound: true})), Retryable, "DNS lookup of hooks.example.invalid failed: no such host"},
		{"other transport error", post(io.ErrUnexpectedEOF), Retryable, "unexpected EOF"},
		{"bare error", errors.New("tls: handshake failure"), Retryable, "tls: handshake failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := classifyError(tt.err, timeout)
			if got != tt.want {
				t.Errorf("outcome = %s, want %s (err %v)", got, tt.want, tt.err)
			}
			if prefix, ok := strings.CutSuffix(tt.message, "…"); ok {
				if !strings.HasPrefix(msg, prefix) {
					t.Errorf("message = %q, want prefix %q", msg, prefix)
				}
			} else if msg != tt.message {
				t.Errorf("message = %q, want %q", msg, tt.message)
			}
			if strings.Contains(msg, `Post "`) {
				t.Errorf("message %q repeats the request URL", msg)
			}
		})
	}
}

func TestRecordHeaders_MasksCredentialsKeepsSignatures(t *testing.T) {
	h := http.Header{
		"Authorization":      {"Bearer sk_live_0123456789WXYZ"},
		"X-Partner":          {"partner-credential-1234"},
		"X-Signature-256":    {"sha256=abcdef0123456789"},
		"Webhook-Signature":  {"v1,c2lnbmF0dXJlLXZhbHVl"},
		"X-Herald-Signature": {"0123456789abcdef"},
		"Webhook-Id":         {"evt_1"},
		"X-Api-Token":        {"custom-token-abcd"},
		"X-Trace":            {"a", "b"},
		"Content-Type":       {"application/json"},
	}
	tests := []struct {
		name   string
		auth   webhook.Auth
		masked []string
	}{
		{"bearer", webhook.Auth{Type: webhook.AuthBearer, Token: "sk_live_0123456789WXYZ"},
			[]string{"Authorization", "X-Api-Token", "X-Signature-256"}},
		{"api key in an innocuous header", webhook.Auth{Type: webhook.AuthAPIKey, HeaderName: "x-partner", HeaderValue: "partner-credential-1234"},
			[]string{"Authorization", "X-Api-Token", "X-Partner", "X-Signature-256"}},
		{"hmac keeps its signature header", webhook.Auth{Type: webhook.AuthHMAC, HeaderName: "x-signature-256", Secret: "0123456789abcdef"},
			[]string{"Authorization", "X-Api-Token"}},
		{"signature keeps its signature header", webhook.Auth{Type: webhook.AuthSignature, HeaderName: "X-Signature-256", Secret: "0123456789abcdef"},
			[]string{"Authorization", "X-Api-Token"}},
		{"none still masks Authorization", webhook.Auth{Type: webhook.AuthNone},
			[]string{"Authorization", "X-Api-Token", "X-Signature-256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := recordHeaders(h, tt.auth)
			if len(got) != len(h) {
				t.Fatalf("got %d headers, want %d: %+v", len(got), len(h), got)
			}
			if !slices.IsSortedFunc(got, func(a, b webhook.Header) int { return strings.Compare(a.Name, b.Name) }) {
				t.Errorf("headers not sorted by name: %+v", got)
			}
			for _, rh := range got {
				orig := strings.Join(h[rh.Name], ", ")
				if slices.Contains(tt.masked, rh.Name) {
					if want := webhook.Mask(orig); rh.Value != want {
						t.Errorf("%s = %q, want masked %q", rh.Name, rh.Value, want)
					}
				} else if rh.Value != orig {
					t.Errorf("%s = %q, want %q unmasked", rh.Name, rh.Value, orig)
				}
			}
		})
	}
}

func TestRecordHeaders_OfARealAttempt(t *testing.T) {
	s := &sender{userAgent: "Herald/test"}
	ep := &endpointConfig{
		URL:     "https://example.com/hook",
		Auth:    webhook.Auth{Type: webhook.AuthAPIKey, HeaderName: "X-Partner-Id", HeaderValue: "pk_live_0123456789abcd"},
		Headers: []webhook.Header{{Name: "X-Tenant", Value: "acme"}, {Name: "X-Session-Token", Value: "tok_0123456789abcdef"}},
		signer:  signing.NewSigner([]byte("0123456789abcdef0123456789abcdef")),
	}
	a := &attempt{DeliveryID: "dlv_1", Number: 2, Endpoint: ep, Msg: &message{ID: "evt_1", Type: "order.created", Body: []byte(`{}`)}}
	h := s.headers(a, time.Unix(1_700_000_000, 0))
	got := recordHeaders(h, ep.Auth)

	names := make([]string, len(got))
	values := make(map[string]string, len(got))
	for i, rh := range got {
		names[i] = rh.Name
		values[rh.Name] = rh.Value
	}
	wantNames := []string{
		"Content-Type", "User-Agent", "Webhook-Id", "Webhook-Signature", "Webhook-Timestamp",
		"X-Herald-Attempt", "X-Herald-Delivery-Id", "X-Herald-Event-Type", "X-Herald-Signature",
		"X-Partner-Id", "X-Session-Token", "X-Tenant",
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("recorded names =\n %q\nwant\n %q", names, wantNames)
	}
	want := map[string]string{
		"X-Partner-Id":         "****abcd",
		"X-Session-Token":      "****cdef",
		"X-Tenant":             "acme",
		"Webhook-Id":           "evt_1",
		"Webhook-Timestamp":    "1700000000",
		"Webhook-Signature":    h.Get("Webhook-Signature"),
		"X-Herald-Signature":   h.Get("X-Herald-Signature"),
		"X-Herald-Attempt":     "2",
		"X-Herald-Delivery-Id": "dlv_1",
	}
	for name, v := range want {
		if values[name] != v {
			t.Errorf("%s = %q, want %q", name, values[name], v)
		}
	}
	if !strings.HasPrefix(values["Webhook-Signature"], "v1,") {
		t.Errorf("Webhook-Signature = %q, want the unmasked v1 signature", values["Webhook-Signature"])
	}
}

// closeTracker records whether Close was called.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestReadBody(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		max       int
		want      string
		truncated bool
	}{
		{"empty", "", 10, "", false},
		{"under the limit", "hello", 10, "hello", false},
		{"exactly at the limit", "0123456789", 10, "0123456789", false},
		{"one over the limit", "0123456789X", 10, "0123456789", true},
		{"far over the limit", strings.Repeat("x", 1<<20), 10, "xxxxxxxxxx", true},
		{"zero limit, empty body", "", 0, "", false},
		{"zero limit, one byte", "x", 0, "", true},
		{"valid UTF-8 kept", "café ☕", 64, "café ☕", false},
		{"invalid UTF-8 replaced", "ok\xff\xfeok", 64, "ok\uFFFDok", false},
		{"lone continuation byte replaced", "a\x80b", 64, "a\uFFFDb", false},
		{"rune split by the limit replaced", "abé", 3, "ab\uFFFD", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &closeTracker{Reader: strings.NewReader(tt.body)}
			got, truncated, err := readBody(r, tt.max)
			if err != nil {
				t.Fatalf("readBody: %v", err)
			}
			if got != tt.want || truncated != tt.truncated {
				t.Errorf("readBody = %q, %v; want %q, %v", got, truncated, tt.want, tt.truncated)
			}
			if truncated && !r.closed {
				t.Errorf("truncated body was not drained and closed")
			}
		})
	}
}

func TestReadBody_ReturnsReadErrorWithPartialBody(t *testing.T) {
	boom := errors.New("connection lost")
	r := io.MultiReader(strings.NewReader("part"), &errReader{boom})
	got, truncated, err := readBody(r, 64)
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
	if got != "part" || truncated {
		t.Errorf("readBody = %q, %v; want %q, false", got, truncated, "part")
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }
