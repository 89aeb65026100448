package destination

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestPolicy_CheckURL(t *testing.T) {
	var (
		strict   = Policy{}
		http     = Policy{AllowHTTP: true}
		private  = Policy{AllowPrivate: true}
		port9000 = Policy{Allow: []Rule{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Port: 9000}}}
	)
	long := "https://example.com/" + strings.Repeat("a", MaxURLLength-len("https://example.com/"))

	tests := []struct {
		name        string
		policy      Policy
		url         string
		wantErr     string // "" when the URL is accepted
		wantBlocked bool   // whether the error wraps a *BlockedError
	}{
		{"https with path and query", strict, "https://example.com/hooks?x=1", "", false},
		{"port and mixed case", strict, "HTTPS://Example.COM:8443/x", "", false},
		{"public IPv4 literal", strict, "https://8.8.8.8/hook", "", false},
		{"public IPv6 literal", strict, "https://[2606:4700:4700::1111]/hook", "", false},
		{"names are not resolved", strict, "https://hooks.internal.example/x", "", false},
		{"name containing localhost", strict, "https://localhost.example.com/", "", false},
		{"longest allowed", strict, long, "", false},
		{"http when allowed", http, "http://example.com/hook", "", false},

		{"empty", strict, "", "is empty", false},
		{"too long", strict, long + "a", "bytes long; the limit is 2048", false},
		{"unparsable", strict, "https://exa mple.com/", "is not a valid URL", false},
		{"relative", strict, "example.com/hook", "is not absolute", false},
		{"path only", strict, "/hook", "is not absolute", false},
		{"http", strict, "http://example.com/hook", `url: "http://example.com/hook" uses http; use https, or start Herald with --allow-http`, false},
		{"other scheme", http, "ftp://example.com/", "uses the ftp scheme", false},
		{"javascript scheme", strict, "javascript:alert(1)", "uses the javascript scheme", false},
		{"opaque", strict, "https:example.com", "has no host", false},
		{"empty host", strict, "https:///hook", "has no host", false},
		{"port without host", strict, "https://:443/hook", "has no host", false},
		{"root label only", strict, "https://./hook", "has no host", false},
		{"user and password", strict, "https://user:pw@example.com/", "contains credentials", false},
		{"user only", strict, "https://token@example.com/", "contains credentials", false},
		{"fragment", strict, "https://example.com/hook#part", "has a fragment", false},
		{"empty fragment", strict, "https://example.com/hook#", "has a fragment", false},
		{"port 0", strict, "https://example.com:0/", "invalid port", false},
		{"port too large", strict, "https://example.com:70000/", "invalid port", false},

		{"loopback literal", strict, "https://127.0.0.1/", "points to 127.0.0.1, which is a loopback address (127.0.0.0/8)", true},
		{"IPv6 loopback literal", strict, "https://[::1]:8443/", "points to ::1, which is the loopback address", true},
		{"metadata literal", strict, "http://169.254.169.254/latest/meta-data/", "uses http", false},
		{"metadata literal over https", strict, "https://169.254.169.254/latest/meta-data/", "cloud metadata address", true},
		{"private literal", strict, "https://10.0.0.5/", "private address", true},
		{"mapped private literal", strict, "https://[::ffff:192.168.0.1]/", "maps to 192.168.0.1", true},
		{"link-local literal with zone", strict, "https://[fe80::1%25eth0]/", "link-local", true},
		{"NAT64 of loopback", strict, "https://[64:ff9b::7f00:1]/", "NAT64 address of 127.0.0.1", true},
		{"localhost", strict, "https://localhost/", "always this machine", false},
		{"localhost upper case with dot", strict, "https://LOCALHOST./", "always this machine", false},
		{"subdomain of localhost", strict, "https://api.localhost:8443/", "always this machine", false},
		{"localhost.localdomain", strict, "https://localhost.localdomain/", "always this machine", false},
		{"short IPv4 form", strict, "https://127.1/", "may be read as an IPv4 address", false},
		{"decimal IPv4 form", strict, "https://2130706433/", "may be read as an IPv4 address", false},
		{"hex IPv4 form", strict, "https://0x7f000001/", "may be read as an IPv4 address", false},
		{"octal IPv4 form", strict, "https://0177.0.0.1/", "may be read as an IPv4 address", false},
		{"numeric top-level label", strict, "https://example.123/", "may be read as an IPv4 address", false},

		{"AllowPrivate permits loopback", private, "https://127.0.0.1/", "", false},
		{"AllowPrivate permits localhost", private, "https://localhost:8080/", "", false},
		{"rule permits its address and port", port9000, "https://127.0.0.1:9000/", "", false},
		{"rule permits localhost on its port", port9000, "https://localhost:9000/", "", false},
		{"rule does not permit another port", port9000, "https://127.0.0.1:9001/", "loopback", true},
		{"rule does not permit the default port", port9000, "https://127.0.0.1/", "loopback", true},
		{"rule does not permit localhost on another port", port9000, "https://localhost:9001/", "always this machine", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := tt.policy.CheckURL(tt.url)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q): %v", tt.url, err)
				}
				if u == nil || u.Host == "" {
					t.Errorf("CheckURL(%q) = %v, want the parsed URL", tt.url, u)
				}
				return
			}
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Fatalf("CheckURL(%q) = %v, %v; want a *URLError", tt.url, u, err)
			}
			if u != nil {
				t.Errorf("CheckURL(%q) returned URL %v with an error", tt.url, u)
			}
			if ue.URL != tt.url {
				t.Errorf("URLError.URL = %q, want %q", ue.URL, tt.url)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CheckURL(%q) error = %q, want it to contain %q", tt.url, err, tt.wantErr)
			}
			var be *BlockedError
			if got := errors.As(err, &be); got != tt.wantBlocked {
				t.Errorf("errors.As(*BlockedError) = %v, want %v", got, tt.wantBlocked)
			}
		})
	}
}

func TestURLError_ShortensLongURLs(t *testing.T) {
	raw := "https://example.com/" + strings.Repeat("x", 5000)
	_, err := Policy{}.CheckURL(raw)
	if err == nil {
		t.Fatal("CheckURL accepted a 5020-byte URL")
	}
	if n := len(err.Error()); n > 300 {
		t.Errorf("error message is %d bytes long: %.80q...", n, err)
	}
}
