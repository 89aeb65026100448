package webhook

import (
	"strings"
	"unicode/utf8"

	"github.com/heraldhq/herald/fault"
)

// AuthType says how Herald authenticates itself to an endpoint, in addition
// to the Standard Webhooks signature every delivery carries.
type AuthType string

// Authentication schemes.
const (
	// AuthNone adds no credentials; receivers verify webhook-signature.
	AuthNone AuthType = "NONE"
	// AuthBearer sends "Authorization: Bearer <token>".
	AuthBearer AuthType = "BEARER"
	// AuthBasic sends HTTP Basic credentials.
	AuthBasic AuthType = "BASIC"
	// AuthAPIKey sends a fixed value in a named header.
	AuthAPIKey AuthType = "API_KEY"
	// AuthHMAC sends "sha256=<hex HMAC-SHA256(secret, body)>" in a named
	// header (GitHub style; default header X-Signature-256).
	AuthHMAC AuthType = "HMAC"
	// AuthSignature sends "t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
	// "<t>.<body>")>" in a named header (Stripe style; default header
	// X-Webhook-Signature), which binds the signature to a timestamp.
	AuthSignature AuthType = "SIGNATURE"
)

// Default header names of the HMAC and SIGNATURE schemes.
const (
	DefaultHMACHeader      = "X-Signature-256"
	DefaultSignatureHeader = "X-Webhook-Signature"
)

// AuthTypes lists every AuthType.
var AuthTypes = []AuthType{AuthNone, AuthBearer, AuthBasic, AuthAPIKey, AuthHMAC, AuthSignature}

// Auth is an endpoint's outbound authentication. Only the fields of its Type
// are set; the others are empty.
type Auth struct {
	Type        AuthType `json:"type"`
	Token       string   `json:"token,omitempty"`
	Username    string   `json:"username,omitempty"`
	Password    string   `json:"password,omitempty"`
	HeaderName  string   `json:"headerName,omitempty"`
	HeaderValue string   `json:"headerValue,omitempty"`
	Secret      string   `json:"secret,omitempty"`
}

// Normalize validates a and returns it with defaults filled in and fields
// that do not belong to its type cleared. Errors are BAD_USER_INPUT faults
// with fields relative to the auth input ("token").
func (a Auth) Normalize() (Auth, error) {
	if a.Type == "" {
		a.Type = AuthNone
	}
	out := Auth{Type: a.Type}
	need := func(field, v string) error {
		if strings.TrimSpace(v) == "" {
			return fault.Invalid(field, "is required for auth type %s", a.Type)
		}
		if len(v) > 4096 {
			return fault.Invalid(field, "must be at most 4096 characters")
		}
		if hasControl(v) {
			return fault.Invalid(field, "must not contain line breaks or other control characters")
		}
		return nil
	}
	switch a.Type {
	case AuthNone:
	case AuthBearer:
		if err := need("token", a.Token); err != nil {
			return Auth{}, err
		}
		out.Token = a.Token
	case AuthBasic:
		if err := need("username", a.Username); err != nil {
			return Auth{}, err
		}
		if strings.Contains(a.Username, ":") {
			return Auth{}, fault.Invalid("username", "must not contain ':' (HTTP Basic separates user and password with it)")
		}
		if err := need("password", a.Password); err != nil {
			return Auth{}, err
		}
		out.Username, out.Password = a.Username, a.Password
	case AuthAPIKey:
		if err := need("headerName", a.HeaderName); err != nil {
			return Auth{}, err
		}
		if err := need("headerValue", a.HeaderValue); err != nil {
			return Auth{}, err
		}
		out.HeaderName, out.HeaderValue = a.HeaderName, a.HeaderValue
	case AuthHMAC, AuthSignature:
		out.HeaderName = a.HeaderName
		if out.HeaderName == "" {
			out.HeaderName = DefaultHMACHeader
			if a.Type == AuthSignature {
				out.HeaderName = DefaultSignatureHeader
			}
		}
		if err := need("secret", a.Secret); err != nil {
			return Auth{}, err
		}
		if len(a.Secret) < 16 {
			return Auth{}, fault.Invalid("secret", "must be at least 16 characters")
		}
		out.Secret = a.Secret
	default:
		return Auth{}, fault.Invalid("type", "unknown auth type %q; use one of NONE, BEARER, BASIC, API_KEY, HMAC, SIGNATURE", a.Type)
	}
	if out.HeaderName != "" {
		if !validHeaderName(out.HeaderName) {
			return Auth{}, fault.Invalid("headerName", "%q is not a valid HTTP header name", out.HeaderName)
		}
		if reservedHeader(out.HeaderName) {
			return Auth{}, fault.Invalid("headerName", "%q is set by Herald and cannot carry credentials", out.HeaderName)
		}
	}
	return out, nil
}

// Header returns the name of the request header the auth scheme writes, or
// "" for NONE.
func (a Auth) Header() string {
	switch a.Type {
	case AuthBearer, AuthBasic:
		return "Authorization"
	case AuthAPIKey, AuthHMAC, AuthSignature:
		return a.HeaderName
	}
	return ""
}

// Masked returns a copy of a with every secret replaced by a mask that shows
// at most its last four characters.
func (a Auth) Masked() Auth {
	a.Token = Mask(a.Token)
	a.Password = Mask(a.Password)
	a.HeaderValue = Mask(a.HeaderValue)
	a.Secret = Mask(a.Secret)
	return a
}

// Mask hides a secret: "" stays "", secrets of 12 or more characters keep
// their last four ("****wxyz"), shorter ones become "****".
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

// hasControl reports whether s contains a character that HTTP header
// values cannot carry: any control character but the horizontal tab.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}
