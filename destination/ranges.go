package destination

import "net/netip"

// blockedRange is a range of addresses Herald does not send to unless a
// policy allows it.
type blockedRange struct {
	prefix netip.Prefix
	noun   string // what an address in the range is, after "a"/"an"/"the"
}

// Blocked IPv4 ranges, from the IANA IPv4 Special-Purpose Address Registry.
// More specific prefixes come first so that they name the address.
var blocked4 = [...]blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (\"this network\") address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT (shared) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.169.254/32"), "the cloud metadata address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay anycast address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
}

// Blocked IPv6 ranges, from the IANA IPv6 Special-Purpose Address Registry.
// IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96) addresses are judged
// by the IPv4 address in them instead, and every address outside global
// unicast space (2000::/3) is blocked too.
var blocked6 = [...]blockedRange{
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "the loopback address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("fc00::/7"), "a unique local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("2001::/32"), "a Teredo address"},
	{netip.MustParsePrefix("2001:2::/48"), "a benchmarking address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("2002::/16"), "a 6to4 address"},
}

var (
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// verdict explains why an address is blocked.
type verdict struct {
	prefix netip.Prefix // the blocked range; zero if none in particular
	reason string       // follows the address in a sentence
}

// classify reports whether ip, which has no zone, is in a blocked range, and
// why.
func classify(ip netip.Addr) (verdict, bool) {
	if ip.Is4() {
		if r, ok := lookup(blocked4[:], ip); ok {
			return verdict{r.prefix, "is " + r.noun}, true
		}
		return verdict{}, false
	}
	if ip.Is4In6() {
		v4 := ip.Unmap()
		if r, ok := lookup(blocked4[:], v4); ok {
			return verdict{r.prefix, "maps to " + v4.String() + ", " + r.noun}, true
		}
		return verdict{}, false
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		v4 := netip.AddrFrom4([4]byte(b[12:]))
		if r, ok := lookup(blocked4[:], v4); ok {
			return verdict{r.prefix, "is a NAT64 address of " + v4.String() + ", " + r.noun}, true
		}
		return verdict{}, false
	}
	if r, ok := lookup(blocked6[:], ip); ok {
		return verdict{r.prefix, "is " + r.noun}, true
	}
	if !globalUnicast.Contains(ip) {
		return verdict{reason: "is not a global unicast address (outside 2000::/3)"}, true
	}
	return verdict{}, false
}

// lookup returns the first range in ranges that contains ip.
func lookup(ranges []blockedRange, ip netip.Addr) (blockedRange, bool) {
	for _, r := range ranges {
		if r.prefix.Contains(ip) {
			return r, true
		}
	}
	return blockedRange{}, false
}
