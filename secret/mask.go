package secret

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/heraldhq/herald/webhook"
)

// Changed stands for a secret's value in audit records and other
// descriptions of a change: that it changed, never what it is.
const Changed = "changed"

// Mask hides a secret for display: "" stays "", secrets of 12 or more
// characters keep their last four ("****wxyz"), shorter ones become
// "****".
func Mask(s string) string {
	switch {
	case s == "":
		return ""
	case utf8.RuneCountInString(s) >= 12:
		tail := len(s)
		for range 4 {
			_, size := utf8.DecodeLastRuneInString(s[:tail])
			tail -= size
		}
		return "****" + s[tail:]
	default:
		return "****"
	}
}

// Unmask returns stored when in is its masked form, as a client sends
// back what it read, and in otherwise: a mask never becomes a credential.
func Unmask(in, stored string) string {
	if stored != "" && in == Mask(stored) {
		return stored
	}
	return in
}

// IsSecretHeader reports whether a custom header's value is a secret: it
// is marked secret, or its name says it carries a credential
// (webhook.SensitiveHeader).
func IsSecretHeader(h webhook.Header) bool {
	return h.Secret || webhook.SensitiveHeader(h.Name)
}

// MaskHeaders returns a copy of headers with the values of secret headers
// masked.
func MaskHeaders(headers []webhook.Header) []webhook.Header {
	out := make([]webhook.Header, len(headers))
	for i, h := range headers {
		if IsSecretHeader(h) {
			h.Value = Mask(h.Value)
			h.Secret = true
		}
		out[i] = h
	}
	return out
}

// UnmaskHeaders keeps the stored value of a secret header whose input
// repeats its masked form.
func UnmaskHeaders(in, stored []webhook.Header) []webhook.Header {
	out := make([]webhook.Header, len(in))
	for i, h := range in {
		out[i] = h
		for _, old := range stored {
			if equalFold(old.Name, h.Name) && IsSecretHeader(old) {
				out[i].Value = Unmask(h.Value, old.Value)
			}
		}
	}
	return out
}

// authFields returns pointers to the secret fields of an auth
// configuration, by name.
func authFields(a *webhook.Auth) []struct {
	name string
	v    *string
} {
	return []struct {
		name string
		v    *string
	}{
		{"token", &a.Token}, {"password", &a.Password}, {"headerValue", &a.HeaderValue},
		{"secret", &a.Secret}, {"clientSecret", &a.ClientSecret},
	}
}

// MaskAuth returns a copy of an auth configuration with its secrets
// masked.
func MaskAuth(a webhook.Auth) webhook.Auth {
	for _, f := range authFields(&a) {
		*f.v = Mask(*f.v)
	}
	return a
}

// UnmaskAuth keeps the stored secrets of an auth configuration of the
// same type whose input repeats their masked form.
func UnmaskAuth(in, stored webhook.Auth) webhook.Auth {
	if in.Type != stored.Type {
		return in
	}
	old := authFields(&stored)
	for i, f := range authFields(&in) {
		*f.v = Unmask(*f.v, *old[i].v)
	}
	return in
}

// MaskTLS returns a copy of a TLS configuration with its private key
// masked.
func MaskTLS(t webhook.TLS) webhook.TLS {
	t.ClientKey = Mask(t.ClientKey)
	return t
}

// MaskConfig returns a broker configuration (a JSON object) with the
// string values of the named secret fields masked.
func MaskConfig(cfg json.RawMessage, secrets []string) json.RawMessage {
	var vals map[string]any
	if err := json.Unmarshal(cfg, &vals); err != nil || vals == nil {
		return json.RawMessage("{}")
	}
	for _, name := range secrets {
		if v, ok := vals[name].(string); ok {
			vals[name] = Mask(v)
		}
	}
	b, _ := json.Marshal(vals)
	return b
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
