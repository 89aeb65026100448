package destination

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURLLength is the longest webhook URL CheckURL accepts, in bytes.
const MaxURLLength = 2048

// A URLError reports why a webhook URL was rejected.
type URLError struct {
	// URL is the URL as given.
	URL string
	// Reason says what is wrong and what to do about it, phrased to follow
	// the URL: "uses http; use https, or start Herald with --allow-http".
	Reason string
	// Err is the underlying error, if any: the parse error, or the
	// *BlockedError for an IP address the policy refuses.
	Err error
}

// Error returns a message such as
// `url: "http://example.com/hook" uses http; use https, or start Herald with --allow-http`.
func (e *URLError) Error() string {
	u := e.URL
	if len(u) > 100 {
		u = u[:100] + "..."
	}
	return "url: " + strconv.Quote(u) + " " + e.Reason
}

// Unwrap returns e.Err.
func (e *URLError) Unwrap() error { return e.Err }

// CheckURL validates a webhook URL when an endpoint is created or updated
// and returns it parsed. The URL must be absolute, use https (or http if
// AllowHTTP is set), name a host, have a valid port if any, be at most
// MaxURLLength bytes, and carry neither credentials (user:password@) nor a
// fragment.
//
// CheckURL also rejects URLs that can never be delivered to under p: IP
// literals that CheckAddr refuses, host names that always mean this machine
// ("localhost", "*.localhost", "localhost.localdomain") unless an Allow rule
// covers a loopback address on the URL's port, and IPv4 addresses in the
// legacy forms some resolvers accept ("127.1", "2130706433", "0x7f.0.0.1").
// Other host names are not resolved here: the addresses they resolve to are
// checked when dialing, by Control.
//
// Errors are *URLError values whose Reason a person can act on.
func (p Policy) CheckURL(raw string) (*url.URL, error) {
	reject := func(reason string, err error) (*url.URL, error) {
		return nil, &URLError{URL: raw, Reason: reason, Err: err}
	}
	switch {
	case raw == "":
		return reject("is empty; give the endpoint's https URL", nil)
	case len(raw) > MaxURLLength:
		return reject("is "+strconv.Itoa(len(raw))+" bytes long; the limit is "+strconv.Itoa(MaxURLLength), nil)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return reject("is not a valid URL: "+err.Error(), err)
	}
	switch {
	case u.Scheme == "":
		return reject("is not absolute; write it in full, like https://example.com/webhooks", nil)
	case u.Scheme == "http" && !p.AllowHTTP:
		return reject("uses http; use https, or start Herald with --allow-http", nil)
	case u.Scheme != "https" && u.Scheme != "http":
		return reject("uses the "+u.Scheme+" scheme; webhook URLs must use https", nil)
	case u.Opaque != "" || strings.TrimSuffix(u.Hostname(), ".") == "":
		return reject("has no host; write it like "+u.Scheme+"://example.com/webhooks", nil)
	case u.User != nil:
		return reject("contains credentials (user:password@); remove them and set the endpoint's authentication instead", nil)
	case strings.Contains(raw, "#"):
		return reject("has a fragment (#...), which is never sent to the receiver; remove it", nil)
	}

	port, ok := urlPort(u)
	if !ok {
		return reject("has invalid port "+strconv.Quote(u.Port())+"; use a port from 1 to 65535", nil)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))

	if ip, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckAddr(netip.AddrPortFrom(ip, port)); err != nil {
			var be *BlockedError
			errors.As(err, &be)
			reason := "points to " + ip.String() + ", which " + be.Reason
			if be.Range.IsValid() {
				reason += " (" + be.Range.String() + ")"
			}
			return reject(reason+blockedHint, err)
		}
		return u, nil
	}
	if legacyIPv4(host) {
		return reject("has host "+strconv.Quote(u.Hostname())+", which is not a valid name and may be read as an IPv4 address; write IP addresses as four decimal numbers, like 203.0.113.7", nil)
	}
	if isLocalhost(host) && !p.allowsLoopback(port) {
		return reject("points to "+strconv.Quote(u.Hostname())+", which is always this machine"+blockedHint, nil)
	}
	return u, nil
}

// blockedHint ends a URLError reason for a blocked destination.
const blockedHint = "; Herald delivers only to public addresses: use one, or allow this destination in Herald's configuration"

// urlPort returns the port u connects to: its explicit port or the scheme's
// default. It reports false for an invalid explicit port.
func urlPort(u *url.URL) (uint16, bool) {
	s := u.Port()
	if s == "" {
		if u.Scheme == "http" {
			return 80, true
		}
		return 443, true
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint16(n), true
}

// isLocalhost reports whether the lower-case host name always means this
// machine (RFC 6761 section 6.3).
func isLocalhost(host string) bool {
	return host == "localhost" || host == "localhost.localdomain" || strings.HasSuffix(host, ".localhost")
}

// legacyIPv4 reports whether host, which is not a valid IP address, ends in
// a numeric label, as IPv4 addresses written in the legacy forms "127.1",
// "2130706433" or "0x7f.0.0.1" do. No top-level domain is numeric, so such a
// host is never a valid DNS name, but resolvers built on inet_aton, and
// WHATWG URL parsers, read it as an IPv4 address.
func legacyIPv4(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		last = h
		if last == "" {
			return true
		}
		return strings.Trim(last, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// loopback4 and loopback6 are where a name that always means this machine
// resolves to.
var (
	loopback4 = netip.MustParsePrefix("127.0.0.0/8")
	loopback6 = netip.MustParsePrefix("::1/128")
)

// allowsLoopback reports whether p permits some loopback address on port,
// which is what a URL naming localhost needs.
func (p Policy) allowsLoopback(port uint16) bool {
	if p.AllowPrivate {
		return true
	}
	for _, r := range p.Allow {
		if (r.Port == 0 || r.Port == port) && (r.Prefix.Overlaps(loopback4) || r.Prefix.Overlaps(loopback6)) {
			return true
		}
	}
	return false
}
