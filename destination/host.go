package destination

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// A HostError reports why a broker's address was rejected.
type HostError struct {
	// Host is the host as given.
	Host string
	// Reason says what is wrong, following the host: "is a loopback
	// address (127.0.0.0/8); ...".
	Reason string
	// Err is the *BlockedError of an address the policy refuses, if any.
	Err error
}

// Error returns a message such as `host "127.0.0.1" is a loopback address`.
func (e *HostError) Error() string { return "host " + strconv.Quote(e.Host) + " " + e.Reason }

// Unwrap returns e.Err.
func (e *HostError) Unwrap() error { return e.Err }

// CheckHost validates a broker's host and port when an endpoint is saved,
// as CheckURL does a webhook URL's: IP literals the policy refuses, names
// that always mean this machine and IPv4 addresses in legacy forms are
// rejected. Other names are checked when dialed, by Control, like every
// address a driver connects to.
func (p Policy) CheckHost(host string, port uint16) error {
	h := strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if h == "" {
		return &HostError{Host: host, Reason: "is empty; give the broker's host name or address"}
	}
	if port == 0 {
		return &HostError{Host: host, Reason: "has no valid port; use a port from 1 to 65535"}
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if err := p.CheckAddr(netip.AddrPortFrom(ip, port)); err != nil {
			var be *BlockedError
			errors.As(err, &be)
			reason := "is " + ip.String() + ", which " + be.Reason
			if be.Range.IsValid() {
				reason += " (" + be.Range.String() + ")"
			}
			return &HostError{Host: host, Reason: reason + privateHint, Err: err}
		}
		return nil
	}
	if legacyIPv4(h) {
		return &HostError{Host: host, Reason: "is not a valid name and may be read as an IPv4 address; write IP addresses as four decimal numbers, like 203.0.113.7"}
	}
	if isLocalhost(h) && !p.allowsLoopback(port) {
		return &HostError{Host: host, Reason: "is always this machine" + privateHint}
	}
	return nil
}

// privateHint ends a HostError reason for a blocked broker.
const privateHint = "; Herald delivers only to public addresses: use one, or start Herald with --allow-private-destinations (or allow this address with --allow-destinations)"

// SplitHostPort splits "host:port" (or "[v6]:port", or a host alone, which
// takes defaultPort) into a host and a port, for a broker's address.
func SplitHostPort(addr string, defaultPort uint16) (string, uint16, bool) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", 0, false
	}
	host, portStr := addr, ""
	if strings.HasPrefix(addr, "[") {
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return "", 0, false
		}
		host, portStr = addr[1:end], strings.TrimPrefix(addr[end+1:], ":")
	} else if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		if strings.Count(addr, ":") > 1 {
			return addr, defaultPort, true // a bare IPv6 address
		}
		host, portStr = addr[:i], addr[i+1:]
	}
	if portStr == "" {
		return host, defaultPort, host != ""
	}
	n, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || n == 0 {
		return host, 0, false
	}
	return host, uint16(n), host != ""
}
