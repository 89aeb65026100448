package destination

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Policy decides which destinations Herald may send to. The zero value
// requires https and blocks private, loopback, link-local and other
// non-public addresses.
//
// A Policy must not be modified while it is in use.
type Policy struct {
	// AllowHTTP permits http:// URLs (otherwise https is required).
	AllowHTTP bool
	// AllowPrivate permits every address (loopback, private, link-local,
	// ...): for development and tests.
	AllowPrivate bool
	// Allow lists extra permitted destinations: prefixes (10.1.0.0/16) or
	// single address:port pairs (127.0.0.1:9000).
	Allow []Rule
}

// A BlockedError reports that a policy refuses an address.
type BlockedError struct {
	// Addr is the refused address, as it was to be dialed.
	Addr netip.AddrPort
	// Reason describes the address, following it in a sentence: "is a
	// loopback address" or "maps to 10.0.0.1, a private address".
	Reason string
	// Range is the blocked range the address falls in. It is the zero
	// Prefix when the refusal is not about one range, as for IPv6 addresses
	// outside global unicast space.
	Range netip.Prefix
}

// Error returns a message such as
// "destination blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)".
func (e *BlockedError) Error() string {
	msg := "destination blocked: " + e.Addr.Addr().String() + " " + e.Reason
	if e.Range.IsValid() {
		msg += " (" + e.Range.String() + ")"
	}
	return msg
}

// CheckAddr reports whether Herald may connect to addr. It returns nil if
// the policy allows private addresses, an Allow rule matches addr, or the
// address is public; otherwise a *BlockedError naming the address and the
// blocked range. IPv4-mapped IPv6 addresses are judged as the IPv4 address
// they map to, and NAT64 addresses (64:ff9b::/96) as the IPv4 address they
// embed. A zone (%eth0) is ignored.
func (p Policy) CheckAddr(addr netip.AddrPort) error {
	ip := addr.Addr().WithZone("")
	if !ip.IsValid() {
		return &BlockedError{Addr: addr, Reason: "is not a valid IP address"}
	}
	if p.AllowPrivate || p.allowed(ip, addr.Port()) {
		return nil
	}
	if r, ok := classify(ip); ok {
		return &BlockedError{Addr: addr, Reason: r.reason, Range: r.prefix}
	}
	return nil
}

// allowed reports whether an Allow rule matches ip and port.
func (p Policy) allowed(ip netip.Addr, port uint16) bool {
	for _, r := range p.Allow {
		if r.matches(ip, port) {
			return true
		}
	}
	return false
}

// Control is a [net.Dialer] Control function. It enforces CheckAddr on
// address, the IP address and port actually being dialed after name
// resolution, so neither DNS rebinding nor redirects reach a blocked
// address. It refuses networks other than tcp, tcp4 and tcp6.
func (p Policy) Control(network, address string, c syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("destination: refusing to dial %s over %s: only tcp is allowed", address, network)
	}
	addr, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("destination: refusing to dial %q: not an IP address and port: %w", address, err)
	}
	return p.CheckAddr(addr)
}

// Dialer returns a [net.Dialer] that connects only where p allows, with the
// given connect timeout. Use its DialContext as an [net/http.Transport]'s
// DialContext.
func (p Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, Control: p.Control}
}
