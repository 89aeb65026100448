package webhook

import (
	"strings"

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
	// AuthOAuth2 fetches an access token from TokenURL with the OAuth 2.0
	// client credentials grant (RFC 6749 §4.4) and sends "Authorization:
	// Bearer <access token>".
	AuthOAuth2 AuthType = "OAUTH2_CLIENT_CREDENTIALS"
)

// Default header names of the HMAC and SIGNATURE schemes.
const (
	DefaultHMACHeader      = "X-Signature-256"
	DefaultSignatureHeader = "X-Webhook-Signature"
)

// AuthTypes lists every AuthType.
var AuthTypes = []AuthType{AuthNone, AuthBearer, AuthBasic, AuthAPIKey, AuthHMAC, AuthSignature, AuthOAuth2}

// Limits of an OAuth2 configuration.
const (
	MaxOAuth2Scopes   = 20
	maxOAuth2ScopeLen = 256
)

// Auth is an endpoint's outbound authentication. Only the fields of its Type
// are set; the others are empty. Token, Password, HeaderValue, Secret and
// ClientSecret are secrets (package secret stores and shows them).
type Auth struct {
	Type        AuthType `json:"type"`
	Token       string   `json:"token,omitempty"`
	Username    string   `json:"username,omitempty"`
	Password    string   `json:"password,omitempty"`
	HeaderName  string   `json:"headerName,omitempty"`
	HeaderValue string   `json:"headerValue,omitempty"`
	Secret      string   `json:"secret,omitempty"`
	// OAuth2 client credentials: where to fetch tokens, as whom, for what.
	TokenURL     string   `json:"tokenUrl,omitempty"`
	ClientID     string   `json:"clientId,omitempty"`
	ClientSecret string   `json:"clientSecret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	Audience     string   `json:"audience,omitempty"`
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
	case AuthOAuth2:
		// The token URL is checked against the destination policy by the
		// caller, which knows it.
		tu := strings.TrimSpace(a.TokenURL)
		if tu == "" {
			return Auth{}, fault.Invalid("tokenUrl", "is required for auth type %s", a.Type)
		}
		if len(tu) > 2048 {
			return Auth{}, fault.Invalid("tokenUrl", "must be at most 2048 characters")
		}
		if err := need("clientId", a.ClientID); err != nil {
			return Auth{}, err
		}
		if err := need("clientSecret", a.ClientSecret); err != nil {
			return Auth{}, err
		}
		if len(a.Scopes) > MaxOAuth2Scopes {
			return Auth{}, fault.Invalid("scopes", "at most %d scopes, got %d", MaxOAuth2Scopes, len(a.Scopes))
		}
		for _, sc := range a.Scopes {
			sc = strings.TrimSpace(sc)
			if sc == "" {
				continue
			}
			if len(sc) > maxOAuth2ScopeLen || strings.ContainsAny(sc, " \"") || hasControl(sc) {
				return Auth{}, fault.Invalid("scopes", "%q is not a scope: one word of at most %d characters, without spaces or quotes", sc, maxOAuth2ScopeLen)
			}
			out.Scopes = append(out.Scopes, sc)
		}
		if len(a.Audience) > 2048 || hasControl(a.Audience) {
			return Auth{}, fault.Invalid("audience", "must be at most 2048 characters with no control characters")
		}
		out.TokenURL, out.ClientID, out.ClientSecret, out.Audience = tu, a.ClientID, a.ClientSecret, strings.TrimSpace(a.Audience)
	default:
		return Auth{}, fault.Invalid("type", "unknown auth type %q; use one of NONE, BEARER, BASIC, API_KEY, HMAC, SIGNATURE, OAUTH2_CLIENT_CREDENTIALS", a.Type)
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
	case AuthBearer, AuthBasic, AuthOAuth2:
		return "Authorization"
	case AuthAPIKey, AuthHMAC, AuthSignature:
		return a.HeaderName
	}
	return ""
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
