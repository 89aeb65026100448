package destination

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// ParseProxy reads an egress proxy's URL: http:// or https://, a host and
// port (default 80 and 443), and optionally the proxy's credentials as
// user information ("http://user:password@proxy.internal:3128").
func ParseProxy(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("egress proxy %q: the scheme must be http or https (the protocol spoken to the proxy)", RedactProxy(u))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("egress proxy %q: no host", RedactProxy(u))
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("egress proxy %q: a proxy URL has no path or query", RedactProxy(u))
	}
	return u, nil
}

// RedactProxy returns a proxy URL without its password, for messages.
func RedactProxy(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}

// HostPort returns the host:port a URL connects to: its port, or the
// scheme's default.
func HostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// proxyErrorPrefix begins every ProxyError's message.
const proxyErrorPrefix = "egress proxy "

// ProxyError reports that the egress proxy itself failed: it refused or
// dropped the connection, asked for credentials (407), or answered a
// CONNECT with anything but 200. It is Herald's side that failed, not the
// endpoint: the attempt is Deferred (it uses up no attempt and does not
// count toward the endpoint's health).
type ProxyError struct {
	// Proxy is the proxy's URL, without its password.
	Proxy string
	// Status is the proxy's HTTP answer (0: none).
	Status int
	// Text is the status line's text, or what went wrong.
	Text string
	Err  error
}

func (e *ProxyError) Error() string {
	switch {
	case e.Status == http.StatusProxyAuthRequired:
		return fmt.Sprintf("egress proxy %s refused Herald's credentials (407 Proxy Authentication Required): check the user and password of --egress-proxy", e.Proxy)
	case e.Status != 0:
		return fmt.Sprintf("egress proxy %s answered %d %s", e.Proxy, e.Status, e.Text)
	case e.Err != nil:
		return fmt.Sprintf("egress proxy %s failed: %s", e.Proxy, CleanError(e.Err))
	default:
		return fmt.Sprintf("egress proxy %s failed: %s", e.Proxy, e.Text)
	}
}

func (e *ProxyError) Unwrap() error { return e.Err }

// IsProxyError reports whether err is a failure of the egress proxy.
func IsProxyError(err error) bool {
	var pe *ProxyError
	return errors.As(err, &pe)
}

// Dialer connects drivers to their destinations: directly, checking every
// address actually dialed against the policy, or, with an egress proxy,
// through an HTTP CONNECT tunnel, after resolving the destination's name
// and checking its addresses (the proxy's own address is allowed whatever
// the policy says). Failures of the proxy are *ProxyError values.
type Dialer struct {
	policy  Policy
	proxy   *url.URL
	timeout time.Duration
}

// Dialer returns the dialer of the environment's drivers, with the given
// connect timeout (the CONNECT exchange included).
func (e Env) Dialer(timeout time.Duration) *Dialer {
	return &Dialer{policy: e.Policy, proxy: e.Proxy, timeout: timeout}
}

// Dial connects to addr (host:port) over tcp.
func (d *Dialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialContext connects to addr (host:port) over tcp.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.proxy == nil {
		return d.policy.Dialer(d.timeout).DialContext(ctx, network, addr)
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("destination: refusing to dial %s over %s: only tcp is allowed", addr, network)
	}
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	if err := d.policy.CheckResolved(ctx, addr); err != nil {
		return nil, err
	}
	conn, err := d.DialProxy(ctx)
	if err != nil {
		return nil, err
	}
	tunnel, err := connectTunnel(ctx, conn, d.proxy, addr)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return tunnel, nil
}

// DialProxy connects to the egress proxy itself (TLS for an https proxy).
func (d *Dialer) DialProxy(ctx context.Context) (net.Conn, error) {
	nd := &net.Dialer{Timeout: d.timeout}
	conn, err := nd.DialContext(ctx, "tcp", HostPort(d.proxy))
	if err != nil {
		return nil, &ProxyError{Proxy: RedactProxy(d.proxy), Err: err}
	}
	if d.proxy.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: d.proxy.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, &ProxyError{Proxy: RedactProxy(d.proxy), Err: err}
		}
		conn = tc
	}
	return conn, nil
}

// ProxyAuthorization returns the Proxy-Authorization header value of a
// proxy URL's credentials ("" without).
func ProxyAuthorization(u *url.URL) string {
	if u == nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw))
}

// connectTunnel asks the proxy on conn for a tunnel to addr.
func connectTunnel(ctx context.Context, conn net.Conn, proxy *url.URL, addr string) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
		defer conn.SetDeadline(time.Time{}) //nolint:errcheck // cleared for the tunnel's user
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: make(http.Header)}
	if a := ProxyAuthorization(proxy); a != "" {
		req.Header.Set("Proxy-Authorization", a)
	}
	if err := req.Write(conn); err != nil {
		return nil, &ProxyError{Proxy: RedactProxy(proxy), Err: err}
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ProxyError{Proxy: RedactProxy(proxy), Err: fmt.Errorf("reading its answer to CONNECT %s: %w", addr, err)}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, text, _ := strings.Cut(resp.Status, " ")
		return nil, &ProxyError{Proxy: RedactProxy(proxy), Status: resp.StatusCode, Text: text}
	}
	if br.Buffered() > 0 {
		// The destination spoke first (NATS, SMTP-like protocols) and
		// its first bytes came with the proxy's answer.
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn is a connection whose first bytes were read ahead.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

// CheckResolved resolves the host of addr (host:port) and checks its
// addresses against the policy, before a proxy is asked to connect there:
// the proxy resolves the name again, so the policy holds for what the
// name means now. An IP literal is checked as it is.
func (p Policy) CheckResolved(ctx context.Context, addr string) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return &URLError{URL: addr, Reason: "is not host:port"}
	}
	port, err := parsePort(portStr)
	if err != nil {
		return &URLError{URL: addr, Reason: "has an invalid port"}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(netip.AddrPortFrom(ip, port))
	}
	if p.AllowPrivate {
		return nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if err := p.CheckAddr(netip.AddrPortFrom(ip.Unmap(), port)); err != nil {
			return err
		}
	}
	return nil
}

func parsePort(s string) (uint16, error) {
	var n uint16
	if s == "" || len(s) > 5 {
		return 0, errors.New("bad port")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("bad port")
		}
		v := uint32(n)*10 + uint32(c-'0')
		if v > 65535 {
			return 0, errors.New("bad port")
		}
		n = uint16(v)
	}
	return n, nil
}
