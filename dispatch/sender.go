package dispatch

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/signing"
	"github.com/heraldhq/herald/webhook"
)

// MaxRedirects is how many redirects a delivery follows. Each hop is checked
// against the destination policy, re-sent as the same POST with the same
// body, and stripped of credentials when it leaves the original host.
const MaxRedirects = 2

// Headers Herald sets on every delivery, besides Content-Type and
// User-Agent. The first three are Standard Webhooks'.
const (
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
	HeaderSignature        = "X-Herald-Signature"
	HeaderEventType        = "X-Herald-Event-Type"
	HeaderDeliveryID       = "X-Herald-Delivery-Id"
	HeaderAttempt          = "X-Herald-Attempt"
	// HeaderTest is "true" on test events (testEndpoint), whose envelope
	// also says "test": true under the signature.
	HeaderTest = "X-Herald-Test"
	// HeaderTraceParent carries the attempt span's W3C trace context when
	// tracing is on.
	HeaderTraceParent = "Traceparent"
)

// endpointConfig is what the sender needs of an endpoint, parsed once per
// change of the endpoint.
type endpointConfig struct {
	ID        string
	AppID     string
	URL       string
	Auth      webhook.Auth
	Headers   []webhook.Header
	Retry     webhook.RetryPolicy
	Timeout   time.Duration
	Active    bool
	Deleted   bool
	UpdatedAt time.Time
	loadedAt  time.Time // when the scheduler read it
	// Flow control: the order deliveries go in, a rate limit (nil: none)
	// and a pause the endpoint asked for.
	Ordering    webhook.Ordering
	RateLimit   *webhook.RateLimit
	PausedUntil time.Time

	// signer signs with the current secret; rotating also with the
	// previous one, until prevUntil.
	signer    *signing.Signer
	rotating  *signing.Signer
	prevUntil time.Time
}

// ordered reports whether the endpoint's deliveries go in publish order.
func (e *endpointConfig) ordered() bool {
	return e.Ordering == webhook.OrderByKey || e.Ordering == webhook.OrderStrict
}

// controlled reports whether one engine at a time must send to the
// endpoint: it orders its deliveries or limits its rate.
func (e *endpointConfig) controlled() bool { return e.ordered() || e.RateLimit != nil }

// signerAt returns the signer to use at time t.
func (e *endpointConfig) signerAt(t time.Time) *signing.Signer {
	if e.rotating != nil && t.Before(e.prevUntil) {
		return e.rotating
	}
	return e.signer
}

// newEndpointConfig parses a stored endpoint for sending.
func newEndpointConfig(ep *ent.Endpoint) (*endpointConfig, error) {
	key, err := signing.DecodeSecret(ep.Secret)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: signing secret: %w", ep.ID, err)
	}
	c := &endpointConfig{
		ID: ep.ID, AppID: ep.AppID, URL: ep.URL, Auth: ep.Auth, Headers: ep.Headers,
		Retry: ep.RetryPolicy, Timeout: ep.Timeout, Active: ep.IsActive, Deleted: ep.DeletedAt != nil,
		UpdatedAt: ep.UpdatedAt, signer: signing.NewSigner(key),
		Ordering: webhook.Ordering(ep.Ordering), RateLimit: ep.RateLimit,
	}
	if c.Ordering == "" {
		c.Ordering = webhook.OrderNone
	}
	if ep.PausedUntil != nil {
		c.PausedUntil = *ep.PausedUntil
	}
	if c.Timeout <= 0 {
		c.Timeout = webhook.DefaultTimeout
	}
	if ep.PreviousSecret != nil && *ep.PreviousSecret != "" && ep.PreviousSecretExpiresAt != nil {
		prev, err := signing.DecodeSecret(*ep.PreviousSecret)
		if err != nil {
			return nil, fmt.Errorf("endpoint %s: previous signing secret: %w", ep.ID, err)
		}
		c.rotating = signing.NewSigner(key, prev)
		c.prevUntil = *ep.PreviousSecretExpiresAt
	}
	return c, nil
}

// message is an event rendered for sending.
type message struct {
	ID   string
	Type string
	// Body is the JSON envelope {"id","type","timestamp","data"}.
	Body []byte
	// Test marks a test event (its envelope has "test": true).
	Test bool
}

// renderEnvelope returns the request body of an event. A test event's
// says "test": true, under the signature, so that no receiver can mistake
// it for a business event.
func renderEnvelope(id, typ string, created time.Time, payload []byte, test bool) []byte {
	b := make([]byte, 0, len(payload)+len(id)+len(typ)+96)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `","timestamp":"`...)
	b = created.UTC().AppendFormat(b, time.RFC3339Nano)
	if test {
		b = append(b, `","test":true,"data":`...)
	} else {
		b = append(b, `","data":`...)
	}
	b = append(b, payload...)
	b = append(b, '}')
	return b
}

// attempt is one request to send.
type attempt struct {
	DeliveryID string
	Number     int
	Endpoint   *endpointConfig
	Msg        *message
	// TraceParent is the W3C traceparent of the attempt's span, sent so
	// that receivers can join the trace ("" when tracing is off).
	TraceParent string
}

// response is what happened to an attempt.
type response struct {
	Outcome         Outcome
	Status          int // 0: no HTTP answer
	RetryAfter      time.Duration
	RequestURL      string
	RequestHeaders  []webhook.Header
	ResponseHeaders []webhook.Header
	ResponseBody    string
	Truncated       bool
	Error           string
	Started         time.Time
	Completed       time.Time
}

// Duration is how long the attempt took.
func (r *response) Duration() time.Duration { return r.Completed.Sub(r.Started) }

// sender sends attempts over one shared HTTP transport whose dialer enforces
// the destination policy on every connection.
type sender struct {
	client    *http.Client
	policy    destination.Policy
	userAgent string
	maxBody   int
	now       func() time.Time
}

// newSender returns a sender that keeps up to idlePerHost idle connections
// per host: as many as requests may be in flight, since several endpoints
// often share a host. An answer whose headers exceed 64 KiB is refused (a
// retryable failure) rather than read: receivers need far less, and
// net/http's default of 10 MiB per request adds up across many workers.
func newSender(policy destination.Policy, userAgent string, maxBody, idlePerHost int, now func() time.Time) *sender {
	tr := &http.Transport{
		DialContext:           policy.Dialer(10 * time.Second).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   idlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
		Proxy:                 nil, // never route webhooks through an environment proxy

		MaxResponseHeaderBytes: 64 << 10,
	}
	return &sender{
		client: &http.Client{
			Transport: tr,
			// Redirects are followed by send, which re-checks each hop.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		policy:    policy,
		userAgent: userAgent,
		maxBody:   maxBody,
		now:       now,
	}
}

func (s *sender) close() {
	s.client.CloseIdleConnections()
}

// send performs one attempt and never returns an error: every failure is an
// outcome recorded on the attempt.
func (s *sender) send(ctx context.Context, a *attempt) *response {
	ep := a.Endpoint
	started := s.now()
	r := &response{Started: started, RequestURL: ep.URL}
	h := s.headers(a, started)
	r.RequestHeaders = recordHeaders(h, ep.Auth)

	attemptCtx, cancel := context.WithTimeout(ctx, ep.Timeout)
	defer cancel()
	resp, err := s.do(attemptCtx, ep.URL, a.Msg.Body, h, ep.Auth)
	if err != nil {
		r.Completed = s.now()
		if ctx.Err() != nil {
			// Cut off by Herald, not by the endpoint's timeout.
			r.Outcome, r.Error = Interrupted, "interrupted: Herald was shutting down"
			return r
		}
		r.Outcome, r.Error = classifyError(err, ep.Timeout)
		return r
	}
	defer resp.Body.Close()
	body, truncated, readErr := readBody(resp.Body, s.maxBody)
	if readErr != nil && ctx.Err() != nil {
		r.Completed = s.now()
		r.Outcome, r.Error = Interrupted, "interrupted: Herald was shutting down"
		return r
	}
	r.Completed = s.now()
	r.Status = resp.StatusCode
	r.ResponseHeaders = flattenHeaders(resp.Header)
	r.ResponseBody = body
	r.Truncated = truncated
	r.Outcome = Classify(resp.StatusCode)
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.Error = fmt.Sprintf("HTTP %d redirect without a usable Location header", resp.StatusCode)
	case r.Outcome != Success:
		r.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	if r.Outcome == Retryable {
		r.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), r.Completed)
	}
	if readErr != nil && r.Outcome == Success {
		// The endpoint answered 2xx; a broken body after that does not
		// make the delivery fail, but the log says so.
		r.Error = fmt.Sprintf("reading response body: %v", readErr)
	}
	return r
}

// do posts body to rawURL, following up to MaxRedirects redirects as the
// same POST. Once a redirect leaves the original host or scheme, the
// request carries no credentials (see hasCredentials) for the rest of the
// chain.
func (s *sender) do(ctx context.Context, rawURL string, body []byte, h http.Header, auth webhook.Auth) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse endpoint url: %w", err)
	}
	origin := u
	for hop := 0; ; hop++ {
		req := &http.Request{
			Method:        http.MethodPost,
			URL:           u,
			Header:        h,
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          u.Host,
			GetBody: func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(body)), nil
			},
		}
		resp, err := s.client.Do(req.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if !isRedirect(resp.StatusCode) || resp.Header.Get("Location") == "" {
			return resp, nil
		}
		next, err := resp.Location()
		drain(resp.Body)
		if err != nil {
			return nil, &destination.URLError{URL: resp.Header.Get("Location"), Reason: fmt.Sprintf("redirect Location is not a valid URL: %v", err)}
		}
		if hop == MaxRedirects {
			return nil, fmt.Errorf("%w: the endpoint redirected more than %d times (next hop %s)", errTooManyRedirects, MaxRedirects, redact(next))
		}
		if _, err := s.policy.CheckURL(next.String()); err != nil {
			return nil, err
		}
		if !strings.EqualFold(next.Host, origin.Host) || next.Scheme != origin.Scheme {
			h = stripCredentials(h, auth)
		}
		u = next
	}
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// hasCredentials reports whether the request header called name carries a
// credential that must not follow a redirect to another host or scheme:
// the standard credential headers, the endpoint's auth header, and custom
// headers whose names suggest a secret (webhook.SensitiveHeader). Herald's
// own signatures are not credentials: receivers anywhere may verify them.
func hasCredentials(name string, a webhook.Auth) bool {
	switch {
	case strings.EqualFold(name, HeaderWebhookSignature), strings.EqualFold(name, HeaderSignature):
		return false
	case strings.EqualFold(name, "Authorization"), strings.EqualFold(name, "Proxy-Authorization"),
		strings.EqualFold(name, "Cookie"):
		return true
	case a.Header() != "" && strings.EqualFold(name, a.Header()):
		return true
	}
	return webhook.SensitiveHeader(name)
}

// stripCredentials returns h without the headers that carry credentials
// (see hasCredentials): a copy if there were any, h itself otherwise.
func stripCredentials(h http.Header, a webhook.Auth) http.Header {
	var out http.Header
	for name := range h {
		if !hasCredentials(name, a) {
			continue
		}
		if out == nil {
			out = h.Clone()
		}
		delete(out, name)
	}
	if out == nil {
		return h
	}
	return out
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// headers builds the request headers of an attempt sent at t.
func (s *sender) headers(a *attempt, t time.Time) http.Header {
	ep, msg := a.Endpoint, a.Msg
	ts := t.Unix()
	sig := ep.signerAt(t)
	h := make(http.Header, 10+len(ep.Headers))
	for _, ch := range ep.Headers {
		h[ch.Name] = []string{ch.Value}
	}
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{s.userAgent}
	h[HeaderWebhookID] = []string{msg.ID}
	h[HeaderWebhookTimestamp] = []string{strconv.FormatInt(ts, 10)}
	h[HeaderWebhookSignature] = []string{string(sig.AppendStandard(nil, msg.ID, ts, msg.Body))}
	h[HeaderSignature] = []string{string(sig.AppendBodyHex(nil, msg.Body))}
	h[HeaderEventType] = []string{msg.Type}
	h[HeaderDeliveryID] = []string{a.DeliveryID}
	h[HeaderAttempt] = []string{strconv.Itoa(a.Number)}
	if msg.Test {
		h[HeaderTest] = []string{"true"}
	}
	if a.TraceParent != "" {
		h[HeaderTraceParent] = []string{a.TraceParent}
	}
	switch ep.Auth.Type {
	case webhook.AuthBearer:
		h["Authorization"] = []string{"Bearer " + ep.Auth.Token}
	case webhook.AuthBasic:
		h["Authorization"] = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(ep.Auth.Username+":"+ep.Auth.Password))}
	case webhook.AuthAPIKey:
		h.Set(ep.Auth.HeaderName, ep.Auth.HeaderValue)
	case webhook.AuthHMAC:
		h.Set(ep.Auth.HeaderName, signing.HMACHex(ep.Auth.Secret, msg.Body))
	case webhook.AuthSignature:
		h.Set(ep.Auth.HeaderName, signing.Timestamped(ep.Auth.Secret, t, msg.Body))
	}
	return h
}

// recordHeaders returns the request headers as logged on the attempt, with
// credentials masked.
func recordHeaders(h http.Header, a webhook.Auth) []webhook.Header {
	out := make([]webhook.Header, 0, len(h))
	for name, vs := range h {
		v := strings.Join(vs, ", ")
		switch {
		case strings.EqualFold(name, "Authorization"),
			(a.Type == webhook.AuthAPIKey && strings.EqualFold(name, a.HeaderName)),
			webhook.SensitiveHeader(name) && !isSignatureHeader(name, a):
			v = webhook.Mask(v)
		}
		out = append(out, webhook.Header{Name: name, Value: v})
	}
	sortHeaders(out)
	return out
}

// isSignatureHeader reports whether name carries a signature, which is not
// a secret and helps debugging.
func isSignatureHeader(name string, a webhook.Auth) bool {
	if strings.EqualFold(name, HeaderWebhookSignature) || strings.EqualFold(name, HeaderSignature) {
		return true
	}
	return (a.Type == webhook.AuthHMAC || a.Type == webhook.AuthSignature) && strings.EqualFold(name, a.HeaderName)
}

// maxRecordedHeaders bounds how many response headers an attempt keeps.
const maxRecordedHeaders = 64

func flattenHeaders(h http.Header) []webhook.Header {
	out := make([]webhook.Header, 0, min(len(h), maxRecordedHeaders))
	for name, vs := range h {
		if len(out) == maxRecordedHeaders {
			break
		}
		v := strings.Join(vs, ", ")
		if len(v) > 1024 {
			v = v[:1024]
		}
		out = append(out, webhook.Header{Name: name, Value: strings.ToValidUTF8(v, "\uFFFD")})
	}
	sortHeaders(out)
	return out
}

func sortHeaders(hs []webhook.Header) {
	// Insertion sort: a handful of headers, and no allocation.
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].Name < hs[j-1].Name; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

// readBody reads up to max bytes of a response body, reporting whether there
// was more, and drains a bounded remainder so the connection can be reused.
func readBody(r io.Reader, max int) (string, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	truncated := len(b) > max
	if truncated {
		b = b[:max]
		drain(r)
	}
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, truncated, err
}

// drain reads and discards at most 256 KiB so that a keep-alive connection
// can be reused; a longer body is cut off by closing the connection.
func drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 256<<10))
	if c, ok := r.(io.Closer); ok {
		_ = c.Close()
	}
}
