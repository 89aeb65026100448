package destination

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/signing"
	"github.com/heraldhq/herald/webhook"
)

// Headers every delivery carries, in HTTP's canonical form. The first
// three are Standard Webhooks'. Brokers carry them as message headers or
// attributes named in lower case (webhook-id, x-herald-event-type, ...).
const (
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
	HeaderSignature        = "X-Herald-Signature"
	HeaderEventType        = "X-Herald-Event-Type"
	HeaderDeliveryID       = "X-Herald-Delivery-Id"
	HeaderAttempt          = "X-Herald-Attempt"
	// HeaderTraceParent carries the attempt span's W3C trace context when
	// tracing is on.
	HeaderTraceParent = "Traceparent"
	// HeaderTest is "true" on test events (testEndpoint), whose envelope
	// also says "test": true under the signature.
	HeaderTest = "X-Herald-Test"
)

// Message is one attempt of a delivery, prepared by the engine: the
// event's JSON envelope and what a destination needs to sign and label it
// at the moment it leaves.
type Message struct {
	// ID is the event's ID, sent as webhook-id: receivers deduplicate on it.
	ID string
	// EventType is the event's type.
	EventType string
	// DeliveryID and Attempt identify the attempt (attempt 1 is the first).
	DeliveryID string
	Attempt    int
	// OrderingKey is the event's ordering key ("" if none): a broker's
	// message key, group or ordering key.
	OrderingKey string
	// Body is what the endpoint receives: the JSON envelope
	// {"id","type","timestamp","data"}, or what the endpoint's
	// transformation made of it.
	Body []byte
	// Signer signs the body (Standard Webhooks): with the endpoint's
	// current secret and, while a rotation overlaps, its previous one.
	Signer *signing.Signer
	// TraceParent is the W3C traceparent of the attempt's span ("" when
	// tracing is off).
	TraceParent string
	// Test marks a test event (testEndpoint): it carries HeaderTest.
	Test bool

	// A transformation may change these; zero values leave the
	// destination's own.
	//
	// Method replaces POST (HTTP only).
	Method string
	// URL replaces the endpoint's URL (HTTP only); the engine has checked
	// it against the destination policy.
	URL string
	// Extra headers to send besides Herald's, which they cannot replace.
	Extra []webhook.Header
}

// Headers calls fn with each header Herald sends with a message signed at
// t, in HTTP's canonical form: webhook-id, webhook-timestamp and
// webhook-signature (Standard Webhooks), Herald's hex signature of the
// body, the event type, the delivery ID, the attempt number, and the
// traceparent when there is one. Destinations map them to their own
// headers or attributes.
func (m *Message) Headers(t time.Time, fn func(name, value string)) {
	ts := t.Unix()
	fn(HeaderWebhookID, m.ID)
	fn(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	if m.Signer != nil {
		fn(HeaderWebhookSignature, string(m.Signer.AppendStandard(nil, m.ID, ts, m.Body)))
		// Herald's hex signature is an HMAC: Ed25519 keys have none.
		if hex := m.Signer.AppendBodyHex(nil, m.Body); len(hex) > 0 {
			fn(HeaderSignature, string(hex))
		}
	}
	fn(HeaderEventType, m.EventType)
	fn(HeaderDeliveryID, m.DeliveryID)
	fn(HeaderAttempt, strconv.Itoa(m.Attempt))
	if m.Test {
		fn(HeaderTest, "true")
	}
	if m.TraceParent != "" {
		fn(HeaderTraceParent, m.TraceParent)
	}
}

// Result is what happened to one attempt, as the attempt's log records it.
type Result struct {
	Outcome Outcome
	// Status is the HTTP status of the answer (0: no HTTP answer, as for
	// every broker).
	Status int
	// RetryAfter is how long the endpoint asked this delivery to wait
	// before its next attempt (0: the retry policy decides).
	RetryAfter time.Duration
	// Pause is how long the endpoint asked to be left alone altogether
	// (an HTTP Retry-After on 429 or 503; 0: no pause).
	Pause time.Duration
	// Overloaded reports that the endpoint said it is overloaded or
	// unavailable (an HTTP 502, 503 or 504): such answers slow the
	// endpoint's pace once they are a pattern, not one by one.
	Overloaded bool
	// Gone reports that the endpoint said it will never accept deliveries
	// again (an HTTP 410): the engine disables it at once.
	Gone bool

	// RequestURL is where the message went, without credentials: the URL
	// for HTTP, the broker's address and queue or topic for a broker.
	RequestURL string
	// RequestHeaders are the headers or attributes sent, credentials
	// masked, sorted by name.
	RequestHeaders []webhook.Header
	// ResponseHeaders, ResponseBody and Truncated are the answer's (for a
	// broker: what its acknowledgement said, such as the message ID or
	// the partition and offset).
	ResponseHeaders []webhook.Header
	ResponseBody    string
	Truncated       bool
	// Error says what went wrong, for a person ("" on success).
	Error string
	// Started and Completed bound the attempt.
	Started   time.Time
	Completed time.Time
}

// ProxyFailure reports whether the attempt failed because the egress
// proxy did (a Deferred outcome whose error is a ProxyError's).
func (r *Result) ProxyFailure() bool {
	return r.Outcome == Deferred && strings.Contains(r.Error, proxyErrorPrefix)
}

// Duration is how long the attempt took.
func (r *Result) Duration() time.Duration { return r.Completed.Sub(r.Started) }

// SortHeaders sorts headers by name in place (a handful of headers: an
// insertion sort, without allocating).
func SortHeaders(hs []webhook.Header) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].Name < hs[j-1].Name; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

// BrokerHeaders returns the headers of a message signed at t as a broker
// carries them: Herald's (see Headers) and a transformation's extra ones,
// names in lower case, sorted by name. They are also what the attempt
// records: none is a credential.
func (m *Message) BrokerHeaders(t time.Time) []webhook.Header {
	hs := make([]webhook.Header, 0, 8+len(m.Extra))
	for _, x := range m.Extra {
		hs = append(hs, webhook.Header{Name: strings.ToLower(x.Name), Value: x.Value})
	}
	m.Headers(t, func(name, value string) {
		name = strings.ToLower(name)
		for i := range hs {
			if hs[i].Name == name { // Herald's win over extra ones
				hs[i].Value = value
				return
			}
		}
		hs = append(hs, webhook.Header{Name: name, Value: value})
	})
	SortHeaders(hs)
	return hs
}

// Finish ends r at completed with outcome o and error msg, unless ctx, the
// engine's context of the attempt, has ended (then r is Interrupted, as
// CutOff makes it), and returns r.
func Finish(ctx context.Context, r *Result, completed time.Time, o Outcome, msg string) *Result {
	r.Completed = completed
	if !CutOff(ctx, r) {
		r.Outcome, r.Error = o, msg
	}
	return r
}

// CutOff reports whether ctx, the engine's context of an attempt, has
// ended, and if so makes r the Interrupted outcome: Herald cut the attempt
// off itself, and the endpoint is not to blame.
func CutOff(ctx context.Context, r *Result) bool {
	if ctx.Err() == nil {
		return false
	}
	r.Outcome, r.Error = Interrupted, "interrupted: Herald was shutting down"
	return true
}
