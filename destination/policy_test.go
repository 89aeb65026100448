package destination

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// blockedAddrs has an address in every blocked range, with the range
// CheckAddr must name ("" for IPv6 outside global unicast space) and a
// phrase its reason must contain.
var blockedAddrs = []struct {
	addr, wantRange, wantReason string
}{
	{"0.0.0.0", "0.0.0.0/8", "unspecified"},
	{"0.1.2.3", "0.0.0.0/8", "unspecified"},
	{"10.0.0.1", "10.0.0.0/8", "private"},
	{"10.255.255.255", "10.0.0.0/8", "private"},
	{"100.64.0.1", "100.64.0.0/10", "carrier-grade NAT"},
	{"100.127.255.255", "100.64.0.0/10", "carrier-grade NAT"},
	{"127.0.0.1", "127.0.0.0/8", "is a loopback address"},
	{"127.255.255.254", "127.0.0.0/8", "loopback"},
	{"169.254.169.254", "169.254.169.254/32", "metadata"},
	{"169.254.0.1", "169.254.0.0/16", "link-local"},
	{"172.16.0.1", "172.16.0.0/12", "private"},
	{"172.31.255.255", "172.16.0.0/12", "private"},
	{"192.0.0.170", "192.0.0.0/24", "IETF protocol assignment"},
	{"192.0.2.1", "192.0.2.0/24", "documentation"},
	{"192.88.99.1", "192.88.99.0/24", "6to4 relay"},
	{"192.168.0.1", "192.168.0.0/16", "private"},
	{"192.168.255.255", "192.168.0.0/16", "private"},
	{"198.18.0.1", "198.18.0.0/15", "benchmarking"},
	{"198.19.255.255", "198.18.0.0/15", "benchmarking"},
	{"198.51.100.7", "198.51.100.0/24", "documentation"},
	{"203.0.113.9", "203.0.113.0/24", "documentation"},
	{"224.0.0.1", "224.0.0.0/4", "multicast"},
	{"239.255.255.250", "224.0.0.0/4", "multicast"},
	{"255.255.255.255", "255.255.255.255/32", "broadcast"},
	{"240.0.0.1", "240.0.0.0/4", "reserved"},
	{"255.255.255.254", "240.0.0.0/4", "reserved"},

	{"::", "::/128", "unspecified"},
	{"::1", "::1/128", "loopback"},
	{"::ffff:127.0.0.1", "127.0.0.0/8", "maps to 127.0.0.1, a loopback address"},
	{"::ffff:10.1.2.3", "10.0.0.0/8", "maps to 10.1.2.3, a private address"},
	{"::ffff:169.254.169.254", "169.254.169.254/32", "metadata"},
	{"::ffff:0.0.0.0", "0.0.0.0/8", "unspecified"},
	{"64:ff9b::a00:1", "10.0.0.0/8", "NAT64 address of 10.0.0.1, a private address"},
	{"64:ff9b::7f00:1", "127.0.0.0/8", "NAT64 address of 127.0.0.1"},
	{"64:ff9b::a9fe:a9fe", "169.254.169.254/32", "metadata"},
	{"64:ff9b:1::a00:1", "64:ff9b:1::/48", "local-use NAT64"},
	{"fe80::1", "fe80::/10", "link-local"},
	{"fe80::1%eth0", "fe80::/10", "link-local"},
	{"febf::1", "fe80::/10", "link-local"},
	{"fec0::1", "fec0::/10", "site-local"},
	{"fc00::1", "fc00::/7", "unique local"},
	{"fd00:ec2::254", "fc00::/7", "unique local"},
	{"ff02::1", "ff00::/8", "multicast"},
	{"ff0e::1", "ff00::/8", "multicast"},
	{"2001:db8::1", "2001:db8::/32", "documentation"},
	{"2002:7f00:1::1", "2002::/16", "6to4"},
	{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32", "Teredo"},
	{"2001:2::1", "2001:2::/48", "benchmarking"},
	{"::7f00:1", "", "not a global unicast address"}, // deprecated IPv4-compatible
	{"100::1", "", "not a global unicast address"},   // discard-only
	{"4000::1", "", "not a global unicast address"},
}

// publicAddrs are addresses no policy blocks, many of them just outside a
// blocked range.
var publicAddrs = []string{
	"1.1.1.1",
	"8.8.8.8",
	"9.255.255.255",
	"11.0.0.0",
	"100.63.255.255",
	"100.128.0.0",
	"126.255.255.255",
	"128.0.0.0",
	"169.253.255.255",
	"169.255.0.0",
	"172.15.255.255",
	"172.32.0.0",
	"192.0.1.255",
	"192.0.3.0",
	"192.167.255.255",
	"192.169.0.0",
	"198.17.255.255",
	"198.20.0.0",
	"223.255.255.255",
	"2606:4700:4700::1111",
	"2001:4860:4860::8888",
	"2001:1::1",
	"2001:db9::1",
	"2003::1",
	"3fff:ffff::1",
	"::ffff:8.8.8.8",
	"64:ff9b::808:808",
}

func TestPolicy_CheckAddrBlocksEveryReservedRange(t *testing.T) {
	var p Policy
	for _, tt := range blockedAddrs {
		t.Run(tt.addr, func(t *testing.T) {
			addr := netip.AddrPortFrom(netip.MustParseAddr(tt.addr), 443)
			err := p.CheckAddr(addr)
			var be *BlockedError
			if !errors.As(err, &be) {
				t.Fatalf("CheckAddr(%v) = %v, want a *BlockedError", addr, err)
			}
			if be.Addr != addr {
				t.Errorf("BlockedError.Addr = %v, want %v", be.Addr, addr)
			}
			if got := rangeString(be.Range); got != tt.wantRange {
				t.Errorf("BlockedError.Range = %q, want %q", got, tt.wantRange)
			}
			if !strings.Contains(be.Reason, tt.wantReason) {
				t.Errorf("BlockedError.Reason = %q, want it to contain %q", be.Reason, tt.wantReason)
			}
		})
	}
}

func rangeString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func TestPolicy_CheckAddrAllowsPublicAddresses(t *testing.T) {
	var p Policy
	for _, s := range publicAddrs {
		for _, port := range []uint16{80, 443, 8443} {
			addr := netip.AddrPortFrom(netip.MustParseAddr(s), port)
			if err := p.CheckAddr(addr); err != nil {
				t.Errorf("CheckAddr(%v) = %v, want nil", addr, err)
			}
		}
	}
}

func TestPolicy_AllowPrivatePermitsEveryAddress(t *testing.T) {
	p := Policy{AllowPrivate: true}
	for _, tt := range blockedAddrs {
		addr := netip.AddrPortFrom(netip.MustParseAddr(tt.addr), 443)
		if err := p.CheckAddr(addr); err != nil {
			t.Errorf("with AllowPrivate, CheckAddr(%v) = %v, want nil", addr, err)
		}
	}
}

func TestPolicy_CheckAddrRejectsInvalidAddress(t *testing.T) {
	for _, p := range []Policy{{}, {Allow: []Rule{{Prefix: netip.MustParsePrefix("0.0.0.0/0")}}}} {
		var be *BlockedError
		if err := p.CheckAddr(netip.AddrPort{}); !errors.As(err, &be) {
			t.Errorf("CheckAddr of the zero AddrPort = %v, want a *BlockedError", err)
		}
	}
}

func TestPolicy_AllowRulesPermitOnlyWhatTheyName(t *testing.T) {
	rules, err := ParseRules("10.1.0.0/16, 127.0.0.1:9000, [::1]:8080, 192.168.1.5, fd12:3456::/32")
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	p := Policy{Allow: rules}
	tests := []struct {
		addr  string
		allow bool
	}{
		{"10.1.2.3:443", true},
		{"10.1.255.255:1", true},
		{"10.2.0.1:443", false},
		{"10.0.255.255:443", false},
		{"127.0.0.1:9000", true},
		{"127.0.0.1:9001", false},
		{"127.0.0.1:443", false},
		{"127.0.0.2:9000", false},
		{"[::ffff:127.0.0.1]:9000", true},
		{"[::ffff:127.0.0.1]:9001", false},
		{"[::1]:8080", true},
		{"[::1]:9000", false},
		{"192.168.1.5:1", true},
		{"192.168.1.5:65535", true},
		{"192.168.1.6:80", false},
		{"[fd12:3456::1]:443", true},
		{"[fd12:3457::1]:443", false},
		{"169.254.169.254:80", false},
	}
	for _, tt := range tests {
		err := p.CheckAddr(netip.MustParseAddrPort(tt.addr))
		if tt.allow && err != nil {
			t.Errorf("CheckAddr(%s) = %v, want allowed by a rule", tt.addr, err)
		}
		if !tt.allow && err == nil {
			t.Errorf("CheckAddr(%s) = nil, want blocked: no rule covers it", tt.addr)
		}
	}
}

func TestBlockedError_NamesAddressAndRange(t *testing.T) {
	tests := []struct {
		addr, want string
	}{
		{"127.0.0.1:8080", "destination blocked: 127.0.0.1 is a loopback address (127.0.0.0/8)"},
		{"169.254.169.254:80", "destination blocked: 169.254.169.254 is the cloud metadata address (169.254.169.254/32)"},
		{"[::ffff:10.0.0.1]:443", "destination blocked: ::ffff:10.0.0.1 maps to 10.0.0.1, a private address (10.0.0.0/8)"},
		{"[100::1]:443", "destination blocked: 100::1 is not a global unicast address (outside 2000::/3)"},
	}
	for _, tt := range tests {
		err := Policy{}.CheckAddr(netip.MustParseAddrPort(tt.addr))
		if err == nil || err.Error() != tt.want {
			t.Errorf("CheckAddr(%s) = %v, want %q", tt.addr, err, tt.want)
		}
	}
}

func TestPolicy_ControlChecksDialedAddressAndNetwork(t *testing.T) {
	p := Policy{Allow: []Rule{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Port: 9000}}}
	tests := []struct {
		network, address string
		wantErr          string // "" for allowed
		wantBlocked      bool
	}{
		{"tcp4", "8.8.8.8:443", "", false},
		{"tcp6", "[2606:4700:4700::1111]:443", "", false},
		{"tcp", "127.0.0.1:9000", "", false},
		{"tcp4", "127.0.0.1:9001", "127.0.0.1 is a loopback address", true},
		{"tcp6", "[::1]:9000", "::1 is the loopback address", true},
		{"tcp6", "[fe80::1%eth0]:80", "fe80::1%eth0 is a link-local address", true},
		{"tcp4", "10.0.0.1:443", "10.0.0.1 is a private address", true},
		{"udp4", "8.8.8.8:53", "only tcp", false},
		{"udp6", "[2606:4700:4700::1111]:53", "only tcp", false},
		{"unix", "/run/docker.sock", "only tcp", false},
		{"tcp", "example.com:443", "not an IP address and port", false},
	}
	for _, tt := range tests {
		err := p.Control(tt.network, tt.address, nil)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Control(%s, %s) = %v, want nil", tt.network, tt.address, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Control(%s, %s) = %v, want an error containing %q", tt.network, tt.address, err, tt.wantErr)
		}
		var be *BlockedError
		if got := errors.As(err, &be); got != tt.wantBlocked {
			t.Errorf("Control(%s, %s): errors.As(*BlockedError) = %v, want %v", tt.network, tt.address, got, tt.wantBlocked)
		}
	}
}
