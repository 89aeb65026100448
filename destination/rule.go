package destination

import (
	"fmt"
	"net/netip"
	"strings"
)

// A Rule permits destinations that a Policy would otherwise block: every
// address in Prefix, on Port or, if Port is 0, on any port.
type Rule struct {
	Prefix netip.Prefix
	Port   uint16 // 0 means any port
}

// matches reports whether r permits ip, which has no zone, on port.
// IPv4-mapped IPv6 addresses match rules for the IPv4 address.
func (r Rule) matches(ip netip.Addr, port uint16) bool {
	if r.Port != 0 && r.Port != port {
		return false
	}
	return r.Prefix.Contains(ip) || r.Prefix.Contains(ip.Unmap())
}

// ParseRules parses a comma-separated list of rules such as
// "10.0.0.0/8,127.0.0.1:9000,[::1]:8080,192.168.1.5": a prefix, an address
// and port, or an address alone, which permits any port. Spaces around
// entries are ignored; an empty or blank s yields no rules.
func ParseRules(s string) ([]Rule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var rules []Rule
	for i, f := range strings.Split(s, ",") {
		r, err := parseRule(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("destination: rule %d: %w", i+1, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// parseRule parses one entry of a ParseRules list.
func parseRule(s string) (Rule, error) {
	switch {
	case s == "":
		return Rule{}, fmt.Errorf("empty rule; remove the extra comma")
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Rule{}, fmt.Errorf("%q is not a prefix like 10.0.0.0/8 or fd00::/8: %w", s, err)
		}
		return Rule{Prefix: unmapPrefix(p.Masked())}, nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return Rule{}, fmt.Errorf("%q has a zone; write the address without %%zone", s)
		}
		ip = ip.Unmap()
		return Rule{Prefix: netip.PrefixFrom(ip, ip.BitLen())}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return Rule{}, fmt.Errorf("%q is not an address (192.168.1.5), address:port (127.0.0.1:9000, [::1]:8080) or prefix (10.0.0.0/8)", s)
	}
	if ap.Addr().Zone() != "" {
		return Rule{}, fmt.Errorf("%q has a zone; write the address without %%zone", s)
	}
	if ap.Port() == 0 {
		return Rule{}, fmt.Errorf("%q has port 0; leave the port out to allow every port", s)
	}
	ip := ap.Addr().Unmap()
	return Rule{Prefix: netip.PrefixFrom(ip, ip.BitLen()), Port: ap.Port()}, nil
}

// unmapPrefix turns a prefix of IPv4-mapped IPv6 addresses into the IPv4
// prefix it maps, which is what Rule.matches compares with.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}
