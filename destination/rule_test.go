package destination

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseRules_ParsesPrefixesAddressesAndPorts(t *testing.T) {
	pfx := netip.MustParsePrefix
	tests := []struct {
		in   string
		want []Rule
	}{
		{"", nil},
		{"  ", nil},
		{
			"10.0.0.0/8,127.0.0.1:9000,[::1]:8080,192.168.1.5",
			[]Rule{
				{Prefix: pfx("10.0.0.0/8")},
				{Prefix: pfx("127.0.0.1/32"), Port: 9000},
				{Prefix: pfx("::1/128"), Port: 8080},
				{Prefix: pfx("192.168.1.5/32")},
			},
		},
		{" 10.1.0.0/16 , fd00::/8 ", []Rule{{Prefix: pfx("10.1.0.0/16")}, {Prefix: pfx("fd00::/8")}}},
		{"::1", []Rule{{Prefix: pfx("::1/128")}}},
		{"10.1.2.3/16", []Rule{{Prefix: pfx("10.1.0.0/16")}}}, // host bits masked
		{"127.0.0.1:65535", []Rule{{Prefix: pfx("127.0.0.1/32"), Port: 65535}}},
		// IPv4-mapped forms become the IPv4 rule they mean.
		{"::ffff:10.0.0.1", []Rule{{Prefix: pfx("10.0.0.1/32")}}},
		{"[::ffff:127.0.0.1]:9000", []Rule{{Prefix: pfx("127.0.0.1/32"), Port: 9000}}},
		{"::ffff:10.0.0.0/104", []Rule{{Prefix: pfx("10.0.0.0/8")}}},
		// An IPv6 address and port need brackets: this is the address ::1:8080.
		{"::1:8080", []Rule{{Prefix: pfx("::1:8080/128")}}},
	}
	for _, tt := range tests {
		got, err := ParseRules(tt.in)
		if err != nil {
			t.Errorf("ParseRules(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRules(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseRules_RejectsMalformedEntries(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"10.0.0.0/8,", "rule 2: empty rule"},
		{"10.0.0.0/33", "rule 1: \"10.0.0.0/33\" is not a prefix"},
		{"10.0.0.0/8:443", "is not a prefix"},
		{"localhost:9000", "is not an address"},
		{"127.0.0.1:0", "port 0"},
		{"127.0.0.1:70000", "is not an address"},
		{"fe80::1%eth0", "zone"},
		{"[fe80::1%eth0]:80", "zone"},
		{"fe80::1%eth0/64", "is not a prefix"},
		{"256.0.0.1", "is not an address"},
	}
	for _, tt := range tests {
		rules, err := ParseRules(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseRules(%q) = %v, %v; want an error containing %q", tt.in, rules, err, tt.wantErr)
		}
	}
}
