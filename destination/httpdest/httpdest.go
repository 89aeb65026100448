// Package httpdest is Herald's HTTP destination: it POSTs each delivery's
// JSON envelope to the endpoint's URL, signed (Standard Webhooks) and
// authenticated as the endpoint says, over one shared transport whose
// dialer enforces the destination policy on every connection, redirects
// included.
package httpdest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/signing"
	"github.com/heraldhq/herald/webhook"
)

// MaxRedirects is how many redirects a delivery follows. Each hop is checked
// against the destination policy, re-sent as the same POST with the same
// body, and stripped of credentials when it leaves the original host.
const MaxRedirects = 2

// Spec declares the HTTP destination type. Its configuration is the
// endpoint's own url, auth and headers, which the endpoints service
// checks.
func Spec() *destination.Spec {
	return &destination.Spec{
		Type:    destination.HTTP,
		Name:    "HTTP",
		Summary: "POSTs each event to a URL, signed with Standard Webhooks headers.",
		Open:    func(env destination.Env) (destination.Driver, error) { return New(env), nil },
	}
}

// Driver sends to HTTP endpoints over one shared transport.
type Driver struct {
	client    *http.Client
	policy    destination.Policy
	userAgent string
	maxBody   int
	now       func() time.Time
}

// New returns a driver that keeps up to env.Concurrency idle connections
// per host: as many as requests may be in flight, since several endpoints
// often share a host. An answer whose headers exceed 64 KiB is refused (a
// retryable failure) rather than read: receivers need far less, and
// net/http's default of 10 MiB per request adds up across many workers.
// Idle connections close after env.IdleTimeout.
func New(env destination.Env) *Driver {
	tr := &http.Transport{
		DialContext:           env.Policy.Dialer(10 * time.Second).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   env.Concurrency,
		IdleConnTimeout:       env.IdleTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
		Proxy:                 nil, // never route webhooks through an environment proxy

		MaxResponseHeaderBytes: 64 << 10,
	}
	return &Driver{
		client: &http.Client{
			Transport: tr,
			// Redirects are followed by send, which re-checks each hop.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		policy:    env.Policy,
		userAgent: env.UserAgent,
		maxBody:   env.MaxResponseBody,
		now:       env.Now,
	}
}

// Close closes the idle connections.
func (d *Driver) Close() error {
	d.client.CloseIdleConnections()
	return nil
}

// Prepare returns the target of an HTTP endpoint.
func (d *Driver) Prepare(ep *destination.Endpoint) (destination.Target, error) {
	u, err := url.Parse(ep.URL)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: url: %w", ep.ID, err)
	}
	t := &target{d: d, url: ep.URL, auth: ep.Auth, headers: ep.Headers, timeout: ep.Timeout}
	if t.timeout <= 0 {
		t.timeout = webhook.DefaultTimeout
	}
	// Without the query and credentials: they may hold secrets.
	t.info = destination.Info{Address: u.Scheme + "://" + u.Host + u.Path, System: "http", Host: u.Hostname()}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		t.info.Port = p
	}
	return t, nil
}

// target is one HTTP endpoint.
type target struct {
	d       *Driver
	url     string
	auth    webhook.Auth
	headers []webhook.Header
	timeout time.Duration
	info    destination.Info
}

func (t *target) Info() destination.Info { return t.info }

// Send performs one attempt: every failure is an outcome recorded on the
// attempt.
func (t *target) Send(ctx context.Context, m *destination.Message) *destination.Result {
	d := t.d
	started := d.now()
	rawURL := t.url
	if m.URL != "" {
		rawURL = m.URL
	}
	method := http.MethodPost
	if m.Method != "" {
		method = m.Method
	}
	r := &destination.Result{Started: started, RequestURL: rawURL}
	h := t.header(m, started)
	r.RequestHeaders = recordHeaders(h, t.auth)

	attemptCtx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	resp, err := d.do(attemptCtx, method, rawURL, m.Body, h, t.auth)
	if err != nil {
		r.Completed = d.now()
		if ctx.Err() != nil {
			// Cut off by Herald, not by the endpoint's timeout.
			r.Outcome, r.Error = destination.Interrupted, "interrupted: Herald was shutting down"
			return r
		}
		r.Outcome, r.Error = classifyError(err, t.timeout)
		return r
	}
	defer resp.Body.Close()
	body, truncated, readErr := readBody(resp.Body, d.maxBody)
	if readErr != nil && ctx.Err() != nil {
		r.Completed = d.now()
		r.Outcome, r.Error = destination.Interrupted, "interrupted: Herald was shutting down"
		return r
	}
	r.Completed = d.now()
	r.Status = resp.StatusCode
	r.ResponseHeaders = flattenHeaders(resp.Header)
	r.ResponseBody = body
	r.Truncated = truncated
	r.Outcome = Classify(resp.StatusCode)
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.Error = fmt.Sprintf("HTTP %d redirect without a usable Location header", resp.StatusCode)
	case r.Outcome != destination.Delivered:
		r.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		r.Overloaded = true
	case http.StatusGone:
		r.Gone = true
	}
	if r.Outcome.Retries() {
		r.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), r.Completed)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			r.Pause = r.RetryAfter
		}
	}
	if readErr != nil && r.Outcome == destination.Delivered {
		// The endpoint answered 2xx; a broken body after that does not
		// make the delivery fail, but the log says so.
		r.Error = fmt.Sprintf("reading response body: %v", readErr)
	}
	return r
}

// Classify returns the outcome of an HTTP status code: 2xx delivered; 429
// throttled; 408, 425 and 5xx retryable; anything else permanent.
func Classify(status int) destination.Outcome {
	switch {
	case status >= 200 && status < 300:
		return destination.Delivered
	case status == http.StatusTooManyRequests:
		return destination.Throttled
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status >= 500:
		return destination.Retryable
	default:
		return destination.Permanent
	}
}

// errTooManyRedirects is returned when a redirect chain is longer than
// MaxRedirects.
var errTooManyRedirects = errors.New("too many redirects")

// classifyError returns the outcome of a request that got no HTTP answer
// and a message for the attempt log.
func classifyError(err error, timeout time.Duration) (destination.Outcome, string) {
	if errors.Is(err, errTooManyRedirects) {
		return destination.Permanent, err.Error()
	}
	return destination.ClassifyNetError(err, timeout)
}

// RetryAfter parses a Retry-After header (delay-seconds or an HTTP date)
// relative to now. It returns 0 when the header is absent or unusable.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	const maxSecs = int64(365 * 24 * time.Hour / time.Second)
	secs, err := strconv.ParseInt(h, 10, 64)
	if errors.Is(err, strconv.ErrRange) && h[0] != '-' {
		secs, err = maxSecs, nil // more digits than int64 holds: "a long time"
	}
	if err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// do sends body to rawURL, following up to MaxRedirects redirects as the
// same request. Once a redirect leaves the original host or scheme, the
// request carries no credentials (see hasCredentials) for the rest of the
// chain.
func (d *Driver) do(ctx context.Context, method, rawURL string, body []byte, h http.Header, auth webhook.Auth) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse endpoint url: %w", err)
	}
	origin := u
	for hop := 0; ; hop++ {
		req := &http.Request{
			Method:        method,
			URL:           u,
			Header:        h,
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          u.Host,
			GetBody: func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(body)), nil
			},
		}
		resp, err := d.client.Do(req.WithContext(ctx))
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
		if _, err := d.policy.CheckURL(next.String()); err != nil {
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
	case strings.EqualFold(name, destination.HeaderWebhookSignature), strings.EqualFold(name, destination.HeaderSignature):
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

// header builds the request headers of an attempt sent at t: the
// endpoint's custom headers, then those a transformation added, then
// Herald's and the endpoint's authentication, which neither can replace.
func (t *target) header(m *destination.Message, at time.Time) http.Header {
	h := make(http.Header, 10+len(t.headers)+len(m.Extra))
	for _, ch := range t.headers {
		h[ch.Name] = []string{ch.Value}
	}
	for _, xh := range m.Extra {
		h[http.CanonicalHeaderKey(xh.Name)] = []string{xh.Value}
	}
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{t.d.userAgent}
	m.Headers(at, func(name, value string) { h[name] = []string{value} })
	switch a := &t.auth; a.Type {
	case webhook.AuthBearer:
		h["Authorization"] = []string{"Bearer " + a.Token}
	case webhook.AuthBasic:
		h["Authorization"] = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password))}
	case webhook.AuthAPIKey:
		h.Set(a.HeaderName, a.HeaderValue)
	case webhook.AuthHMAC:
		h.Set(a.HeaderName, signing.HMACHex(a.Secret, m.Body))
	case webhook.AuthSignature:
		h.Set(a.HeaderName, signing.Timestamped(a.Secret, at, m.Body))
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
	destination.SortHeaders(out)
	return out
}

// isSignatureHeader reports whether name carries a signature, which is not
// a secret and helps debugging.
func isSignatureHeader(name string, a webhook.Auth) bool {
	if strings.EqualFold(name, destination.HeaderWebhookSignature) || strings.EqualFold(name, destination.HeaderSignature) {
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
	destination.SortHeaders(out)
	return out
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
