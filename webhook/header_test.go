package webhook

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCheckHeaders_ReturnsCanonicalNames(t *testing.T) {
	in := []Header{
		{Name: "x-api-version", Value: "2024-01-01"},
		{Name: "X-TENANT-ID", Value: "acme"},
		{Name: "accept-language", Value: ""},
		{Name: "x_custom", Value: "a b\tc"},
	}
	got, err := CheckHeaders("input.headers", in, Auth{Type: AuthNone})
	if err != nil {
		t.Fatal(err)
	}
	want := []Header{
		{Name: "X-Api-Version", Value: "2024-01-01"},
		{Name: "X-Tenant-Id", Value: "acme"},
		{Name: "Accept-Language", Value: ""},
		{Name: "X_custom", Value: "a b\tc"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("CheckHeaders = %+v, want %+v", got, want)
	}
	if in[0].Name != "x-api-version" {
		t.Errorf("CheckHeaders modified its input: %+v", in[0])
	}
}

func TestCheckHeaders_AcceptsLimits(t *testing.T) {
	hs := make([]Header, MaxCustomHeaders)
	for i := range hs {
		hs[i] = Header{Name: fmt.Sprintf("X-H%d", i), Value: strings.Repeat("v", 4096)}
	}
	if _, err := CheckHeaders("headers", hs, Auth{}); err != nil {
		t.Errorf("%d headers with 4096-byte values: %v", MaxCustomHeaders, err)
	}
	if _, err := CheckHeaders("headers", nil, Auth{}); err != nil {
		t.Errorf("no headers: %v", err)
	}
	// Without credentials of its own, an endpoint may send Authorization.
	if _, err := CheckHeaders("headers", []Header{{Name: "Authorization", Value: "Bearer x"}}, Auth{Type: AuthNone}); err != nil {
		t.Errorf("Authorization with auth NONE: %v", err)
	}
}

func TestCheckHeaders_RejectsWithField(t *testing.T) {
	many := make([]Header, MaxCustomHeaders+1)
	for i := range many {
		many[i] = Header{Name: fmt.Sprintf("X-H%d", i), Value: "v"}
	}
	ok := Header{Name: "X-Ok", Value: "v"}
	apiKey := Auth{Type: AuthAPIKey, HeaderName: "X-Api-Key", HeaderValue: "k"}
	hmac := Auth{Type: AuthHMAC, HeaderName: DefaultHMACHeader, Secret: "0123456789abcdef"}
	tests := []struct {
		name    string
		headers []Header
		auth    Auth
		field   string
	}{
		{"too many", many, Auth{}, "input.headers"},
		{"empty name", []Header{{Name: "", Value: "v"}}, Auth{}, "input.headers[0].name"},
		{"name with space", []Header{ok, {Name: "X Foo", Value: "v"}}, Auth{}, "input.headers[1].name"},
		{"name with colon", []Header{{Name: "X-Foo:", Value: "v"}}, Auth{}, "input.headers[0].name"},
		{"name with line break", []Header{{Name: "X-Foo\r\nX-Bar", Value: "v"}}, Auth{}, "input.headers[0].name"},
		{"non-ASCII name", []Header{{Name: "X-Größe", Value: "v"}}, Auth{}, "input.headers[0].name"},
		{"name too long", []Header{{Name: strings.Repeat("x", 257), Value: "v"}}, Auth{}, "input.headers[0].name"},
		{"reserved host", []Header{{Name: "host", Value: "v"}}, Auth{}, "input.headers[0].name"},
		{"reserved content-type", []Header{{Name: "Content-Type", Value: "text/plain"}}, Auth{}, "input.headers[0].name"},
		{"reserved content-length", []Header{{Name: "CONTENT-LENGTH", Value: "1"}}, Auth{}, "input.headers[0].name"},
		{"reserved transfer-encoding", []Header{{Name: "Transfer-Encoding", Value: "chunked"}}, Auth{}, "input.headers[0].name"},
		{"reserved user-agent", []Header{{Name: "User-Agent", Value: "x"}}, Auth{}, "input.headers[0].name"},
		{"reserved webhook-id", []Header{{Name: "webhook-id", Value: "x"}}, Auth{}, "input.headers[0].name"},
		{"reserved webhook-signature", []Header{{Name: "Webhook-Signature", Value: "x"}}, Auth{}, "input.headers[0].name"},
		{"reserved X-Herald-*", []Header{{Name: "x-herald-anything", Value: "x"}}, Auth{}, "input.headers[0].name"},
		{"bearer Authorization", []Header{{Name: "authorization", Value: "x"}}, Auth{Type: AuthBearer, Token: "t"}, "input.headers[0].name"},
		{"basic Authorization", []Header{ok, {Name: "AUTHORIZATION", Value: "x"}}, Auth{Type: AuthBasic, Username: "u", Password: "p"}, "input.headers[1].name"},
		{"api key header", []Header{{Name: "x-api-key", Value: "x"}}, apiKey, "input.headers[0].name"},
		{"hmac header", []Header{{Name: "x-signature-256", Value: "x"}}, hmac, "input.headers[0].name"},
		{"duplicate", []Header{{Name: "X-Foo", Value: "a"}, {Name: "X-Foo", Value: "b"}}, Auth{}, "input.headers[1].name"},
		{"duplicate ignoring case", []Header{{Name: "X-Foo", Value: "a"}, ok, {Name: "x-FOO", Value: "b"}}, Auth{}, "input.headers[2].name"},
		{"value too long", []Header{{Name: "X-Foo", Value: strings.Repeat("v", 4097)}}, Auth{}, "input.headers[0].value"},
		{"value with LF", []Header{{Name: "X-Foo", Value: "a\nX-Evil: 1"}}, Auth{}, "input.headers[0].value"},
		{"value with CR", []Header{{Name: "X-Foo", Value: "a\r"}}, Auth{}, "input.headers[0].value"},
		{"value with NUL", []Header{{Name: "X-Foo", Value: "a\x00b"}}, Auth{}, "input.headers[0].value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckHeaders("input.headers", tt.headers, tt.auth)
			wantFault(t, err, tt.field)
			if got != nil {
				t.Errorf("CheckHeaders returned %+v with an error", got)
			}
		})
	}
}

func TestCheckHeaders_RejectsControlCharactersNetHTTPWillNotSend(t *testing.T) {
	_, err := CheckHeaders("headers", []Header{{Name: "X-Foo", Value: "a\x01b"}}, Auth{})
	wantFault(t, err, "headers[0].value")
}

func TestSensitiveHeader(t *testing.T) {
	tests := []struct {
		name      string
		sensitive bool
	}{
		{"Authorization", true},
		{"authorization", true},
		{"Proxy-Authorization", true},
		{"Cookie", true},
		{"Set-Cookie", true},
		{"X-Auth-User", true},
		{"X-Api-Token", true},
		{"X-Access-Token", true},
		{"X-Api-Key", true},
		{"Apikey", true},
		{"X-Client-Secret", true},
		{"Webhook-Secret", true},
		{"X-Password", true},
		{"X-Signature-256", true},
		{"X-Hub-Signature", true},

		{"Webhook-Id", false},
		{"webhook-timestamp", false},
		{"Webhook-Signature", false},
		{"X-Herald-Signature", false},
		{"X-Herald-Event-Type", false},
		{"X-Herald-Delivery-Id", false},
		{"Content-Type", false},
		{"User-Agent", false},
		{"X-Request-Id", false},
		{"Keep-Alive", false},
		{"Accept", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SensitiveHeader(tt.name); got != tt.sensitive {
				t.Errorf("SensitiveHeader(%q) = %v, want %v", tt.name, got, tt.sensitive)
			}
		})
	}
}
