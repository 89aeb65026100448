package httpdest

import (
	"context"
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
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/signing"
	"github.com/heraldhq/herald/webhook"
)

func TestClassify_StatusClasses(t *testing.T) {
	tests := []struct {
		want     destination.Outcome
		statuses []int
	}{
		{destination.Delivered, []int{200, 201, 202, 204, 299}},
		{destination.Permanent, []int{0, 100, 101, 199}},
		{destination.Permanent, []int{300, 301, 302, 303, 304, 307, 308, 399}},
		{destination.Retryable, []int{http.StatusRequestTimeout, http.StatusTooEarly}},
		{destination.Throttled, []int{http.StatusTooManyRequests}},
		{destination.Permanent, []int{400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 426, 451, 499}},
		{destination.Retryable, []int{500, 501, 502, 503, 504, 599}},
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
		want    destination.Outcome
		message string // exact, or a prefix when it ends with "…"
	}{
		{"blocked address", blocked, destination.Permanent, "destination not allowed: destination blocked: 10.0.0.1 is a private address (10.0.0.0/8)"},
		{"blocked at dial", post(dial(blocked)), destination.Permanent, "destination not allowed: destination blocked: 10.0.0.1 is a private address (10.0.0.0/8)"},
		{"bad URL", urlErr, destination.Permanent, urlErr.Error()},
		{"bad redirect URL", post(urlErr), destination.Permanent, urlErr.Error()},
		{"URL blocked by its IP", &destination.URLError{URL: "https://10.0.0.1/", Reason: "is private", Err: blocked}, destination.Permanent, "destination not allowed: …"},
		{"too many redirects", fmt.Errorf("%w: the endpoint redirected more than 2 times", errTooManyRedirects), destination.Permanent, "too many redirects: the endpoint redirected more than 2 times"},
		{"deadline exceeded", post(context.DeadlineExceeded), destination.Retryable, "timeout: no complete response within 10s"},
		{"net timeout", post(&net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}), destination.Retryable, "timeout: no complete response within 10s"},
		{"os deadline", post(os.ErrDeadlineExceeded), destination.Retryable, "timeout: …"},
		{"connection refused", post(dial(os.NewSyscallError("connect", syscall.ECONNREFUSED))), destination.Retryable, "connection refused"},
		{"connection reset", post(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), destination.Retryable, "connection reset by peer"},
		{"DNS failure", post(dial(&net.DNSError{Err: "no such host", Name: "hooks.example.invalid", IsNotFound: true})), destination.Retryable, "DNS lookup of hooks.example.invalid failed: no such host"},
		{"other transport error", post(io.ErrUnexpectedEOF), destination.Retryable, "unexpected EOF"},
		{"bare error", errors.New("tls: handshake failure"), destination.Retryable, "tls: handshake failure"},
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
					if want := secret.Mask(orig); rh.Value != want {
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
	ep := &target{
		d:       &Driver{userAgent: "Herald/test"},
		url:     "https://example.com/hook",
		auth:    webhook.Auth{Type: webhook.AuthAPIKey, HeaderName: "X-Partner-Id", HeaderValue: "pk_live_0123456789abcd"},
		headers: []webhook.Header{{Name: "X-Tenant", Value: "acme"}, {Name: "X-Session-Token", Value: "tok_0123456789abcdef"}},
	}
	m := &destination.Message{ID: "evt_1", EventType: "order.created", DeliveryID: "dlv_1", Attempt: 2, Body: []byte(`{}`),
		Signer: signing.NewSigner([]byte("0123456789abcdef0123456789abcdef"))}
	h := ep.header(m, time.Unix(1_700_000_000, 0), nil)
	got := recordHeaders(h, ep.auth)

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
