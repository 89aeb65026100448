// Package httpdest is Herald's HTTP destination: it POSTs each delivery's
// JSON envelope to the endpoint's URL, signed (Standard Webhooks) and
// authenticated as the endpoint says (OAuth2 client credentials included),
// over one shared transport whose dialer enforces the destination policy
// on every connection, redirects included; endpoints with mutual TLS get a
// transport of their own, shared by every endpoint with the same
// certificate. With an egress proxy, every request leaves through it, the
// destination checked before the proxy is asked.
package httpdest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/secret"
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
	base      *http.Transport
	client    *http.Client
	policy    destination.Policy
	proxy     *url.URL
	userAgent string
	maxBody   int
	now       func() time.Time
	// mtls holds the transports of endpoints with mutual TLS, one per
	// client certificate and roots, closed when idle.
	mtls *destination.Pool[*http.Transport]
	// tokens caches OAuth2 access tokens per client credentials.
	tokens *tokenCaches
}

// New returns a driver that keeps up to env.Concurrency idle connections
// per host: as many as requests may be in flight, since several endpoints
// often share a host. An answer whose headers exceed 64 KiB is refused (a
// retryable failure) rather than read: receivers need far less, and
// net/http's default of 10 MiB per request adds up across many workers.
// Idle connections close after env.IdleTimeout.
func New(env destination.Env) *Driver {
	tr := &http.Transport{
		DialContext:           env.Dialer(10 * time.Second).DialContext,
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
	if env.Proxy != nil {
		useProxy(tr, env)
	}
	return &Driver{
		base:      tr,
		client:    newClient(tr),
		policy:    env.Policy,
		proxy:     env.Proxy,
		userAgent: env.UserAgent,
		maxBody:   env.MaxResponseBody,
		now:       env.Now,
		mtls:      destination.NewPool(env.IdleTimeout, func(t *http.Transport) error { t.CloseIdleConnections(); return nil }),
		tokens:    newTokenCaches(),
	}
}

// newClient returns a client over tr that follows no redirect: send
// follows them itself, re-checking each hop.
func newClient(tr http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// useProxy sends every request of tr through the egress proxy: https with
// CONNECT, http in absolute form, the proxy's credentials from its URL.
// The destination is resolved and checked against the policy before the
// proxy is asked (the proxy's own address is allowed whatever the policy
// says); the proxy's failures are *destination.ProxyError values.
func useProxy(tr *http.Transport, env destination.Env) {
	proxy, policy := env.Proxy, env.Policy
	tr.Proxy = func(req *http.Request) (*url.URL, error) {
		if err := policy.CheckResolved(req.Context(), destination.HostPort(req.URL)); err != nil {
			return nil, err
		}
		return proxy, nil
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		// With Proxy set, the transport only ever dials the proxy.
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &destination.ProxyError{Proxy: destination.RedactProxy(proxy), Err: err}
		}
		return c, nil
	}
	tr.OnProxyConnectResponse = func(_ context.Context, _ *url.URL, _ *http.Request, resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			_, text, _ := strings.Cut(resp.Status, " ")
			return &destination.ProxyError{Proxy: destination.RedactProxy(proxy), Status: resp.StatusCode, Text: text}
		}
		return nil
	}
}

// Close closes the idle connections.
func (d *Driver) Close() error {
	d.client.CloseIdleConnections()
	return d.mtls.Close()
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
	if ep.TLS != nil && !ep.TLS.IsZero() {
		t.tls = *ep.TLS
		t.tlsKey = tlsKey(t.tls)
	}
	if ep.Auth.Type == webhook.AuthOAuth2 {
		t.oauth = d.tokens.get(ep.Auth)
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
	// tls is the endpoint's mutual TLS, and tlsKey its transport's key
	// in the pool ("": none, the shared transport).
	tls    webhook.TLS
	tlsKey string
	// oauth caches the endpoint's OAuth2 tokens (nil: no OAuth2).
	oauth *tokenCache
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
	attemptCtx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()

	client := d.client
	if t.tlsKey != "" {
		tr, release, err := d.mtls.Acquire(attemptCtx, t.tlsKey, t.openTLS)
		if err != nil {
			r.Completed = d.now()
			r.Outcome, r.Error = destination.Permanent, "mutual TLS: "+err.Error()
			return r
		}
		defer release(false)
		client = newClient(tr)
	}
	var token *oauth2.Token
	if t.oauth != nil {
		var err error
		if token, err = t.oauth.token(attemptCtx, d.client, d.now()); err != nil {
			r.Completed = d.now()
			if destination.CutOff(ctx, r) {
				return r
			}
			r.Outcome, r.Error = t.oauth.classify(err, t.timeout)
			return r
		}
	}
	h := t.header(m, started, token)
	r.RequestHeaders = recordHeaders(h, t.auth)

	// Through the proxy, a failure before the request has a connection
	// (and is not the destination's: its name, its TLS) is the proxy's.
	reqCtx, connected := attemptCtx, &atomic.Bool{}
	if d.proxy != nil {
		reqCtx = httptrace.WithClientTrace(attemptCtx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
	}
	resp, err := d.do(reqCtx, client, method, rawURL, m.Body, h, t.auth)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && token != nil {
		// The token was revoked or expired early: fetch a new one, once,
		// and send again.
		drain(resp.Body)
		t.oauth.invalidate(token)
		if token, err = t.oauth.token(attemptCtx, d.client, d.now()); err != nil {
			r.Completed = d.now()
			if destination.CutOff(ctx, r) {
				return r
			}
			r.Outcome, r.Error = t.oauth.classify(err, t.timeout)
			r.Error = "the endpoint answered 401 and a new token could not be fetched: " + r.Error
			return r
		}
		h = t.header(m, d.now(), token)
		r.RequestHeaders = recordHeaders(h, t.auth)
		connected.Store(false)
		resp, err = d.do(reqCtx, client, method, rawURL, m.Body, h, t.auth)
	}
	if err != nil && d.proxy != nil && !connected.Load() && proxyFailure(err) {
		err = &destination.ProxyError{Proxy: destination.RedactProxy(d.proxy), Err: err}
	}
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
	if resp.StatusCode == http.StatusProxyAuthRequired && d.proxy != nil {
		// The egress proxy refused Herald's credentials (a request in
		// absolute form): not the endpoint's answer.
		drain(resp.Body)
		r.Completed = d.now()
		pe := &destination.ProxyError{Proxy: destination.RedactProxy(d.proxy), Status: resp.StatusCode}
		r.Outcome, r.Error = destination.Deferred, pe.Error()
		return r
	}
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

// proxyFailure reports whether an error a request through the egress
// proxy got before it had a connection is the proxy's: not the policy's
// refusal, the destination's name or TLS, or a timeout (the destination
// not answering through the tunnel).
func proxyFailure(err error) bool {
	var blocked *destination.BlockedError
	var urlErr *destination.URLError
	var dnsErr *net.DNSError
	switch {
	case destination.IsProxyError(err), errors.As(err, &blocked), errors.As(err, &urlErr), errors.As(err, &dnsErr),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), destination.IsTimeout(err):
		return false
	}
	if o, _ := destination.ClassifyNetError(err, 0); o != destination.Retryable {
		return false
	}
	msg := err.Error()
	return !strings.Contains(msg, "tls:") && !strings.Contains(msg, "x509:")
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
func (d *Driver) do(ctx context.Context, client *http.Client, method, rawURL string, body []byte, h http.Header, auth webhook.Auth) (*http.Response, error) {
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
		// Straight to the transport: the client would follow no redirect
		// (this loop does) and sets no deadline (ctx does), so all that
		// client.Do adds is a copy of the headers for the redirects it
		// never follows. Errors come unwrapped (classifyError reads both).
		resp, err := client.Transport.RoundTrip(req.WithContext(ctx))
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
func (t *target) header(m *destination.Message, at time.Time, token *oauth2.Token) http.Header {
	n := 12 + len(t.headers) + len(m.Extra)
	h := make(http.Header, n)
	// Each header's one value is a slice of one array, not an allocation
	// of its own.
	values := make([]string, 0, n)
	set := func(name, value string) {
		if len(values) == cap(values) {
			values = make([]string, 0, 4)
		}
		values = append(values, value)
		h[name] = values[len(values)-1 : len(values) : len(values)]
	}
	for _, ch := range t.headers {
		set(ch.Name, ch.Value)
	}
	for _, xh := range m.Extra {
		set(http.CanonicalHeaderKey(xh.Name), xh.Value)
	}
	set("Content-Type", "application/json")
	set("User-Agent", t.d.userAgent)
	m.Headers(at, set)
	switch a := &t.auth; a.Type {
	case webhook.AuthBearer:
		set("Authorization", "Bearer "+a.Token)
	case webhook.AuthBasic:
		set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	case webhook.AuthAPIKey:
		h.Set(a.HeaderName, a.HeaderValue)
	case webhook.AuthHMAC:
		h.Set(a.HeaderName, signing.HMACHex(a.Secret, m.Body))
	case webhook.AuthSignature:
		h.Set(a.HeaderName, signing.Timestamped(a.Secret, at, m.Body))
	case webhook.AuthOAuth2:
		if token != nil {
			set("Authorization", "Bearer "+token.AccessToken)
		}
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
			v = secret.Mask(v)
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
