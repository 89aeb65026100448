package webhook

import (
	"fmt"
	"strings"

	"github.com/heraldhq/herald/fault"
)

// Header is one HTTP header name and value. Secret marks a custom header
// whose value is a credential: encrypted at rest and masked when read
// (package secret); headers whose names look like credentials
// (SensitiveHeader) are secret whatever it says.
type Header struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Secret bool   `json:"secret,omitempty"`
}

// MaxCustomHeaders is the most custom headers an endpoint may set.
const MaxCustomHeaders = 20

// CheckHeaders validates an endpoint's custom headers against its auth
// scheme and returns them with canonical names. field names the list.
func CheckHeaders(field string, headers []Header, auth Auth) ([]Header, error) {
	if len(headers) > MaxCustomHeaders {
		return nil, fault.Invalid(field, "at most %d custom headers, got %d", MaxCustomHeaders, len(headers))
	}
	out := make([]Header, 0, len(headers))
	seen := make(map[string]bool, len(headers))
	for i, h := range headers {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !validHeaderName(h.Name) {
			return nil, fault.Invalid(f+".name", "%q is not a valid HTTP header name", h.Name)
		}
		name := canonical(h.Name)
		if reservedHeader(name) {
			return nil, fault.Invalid(f+".name", "%q is set by Herald and cannot be overridden", h.Name)
		}
		if ah := auth.Header(); ah != "" && strings.EqualFold(ah, name) {
			return nil, fault.Invalid(f+".name", "%q is written by the endpoint's %s auth; remove it here or change the auth", h.Name, auth.Type)
		}
		if seen[name] {
			return nil, fault.Invalid(f+".name", "header %q is listed twice", h.Name)
		}
		seen[name] = true
		if len(h.Value) > 4096 || hasControl(h.Value) {
			return nil, fault.Invalid(f+".value", "must be at most 4096 characters with no line breaks or other control characters")
		}
		out = append(out, Header{Name: name, Value: h.Value, Secret: h.Secret || SensitiveHeader(name)})
	}
	return out, nil
}

// SensitiveHeader reports whether a header of this name likely carries a
// credential.
func SensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	if n == "cookie" || n == "set-cookie" || n == "proxy-authorization" {
		return true
	}
	switch {
	case n == "webhook-id", n == "webhook-timestamp", n == "webhook-signature", strings.HasPrefix(n, "x-herald-"):
		// Herald's own headers: IDs, times and signatures are not
		// secrets. Other webhook-* names ("Webhook-Secret") may be.
		return false
	}
	for _, s := range []string{"auth", "token", "secret", "key", "password", "signature"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// reservedHeader reports whether Herald itself sets the header on every
// delivery (or the transport owns it).
func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "host", "content-length", "content-type", "transfer-encoding", "connection",
		"user-agent", "webhook-id", "webhook-timestamp", "webhook-signature", "te",
		"upgrade", "expect", "keep-alive", "proxy-connection", "trailer":
		return true
	}
	return strings.HasPrefix(n, "x-herald-")
}

func validHeaderName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for _, c := range []byte(name) {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// canonical returns the canonical MIME form of a header name
// ("x-api-key" → "X-Api-Key").
func canonical(name string) string {
	b := []byte(name)
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}
