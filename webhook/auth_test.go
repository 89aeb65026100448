package webhook

import (
	"reflect"
	"strings"
	"testing"
)

// fullAuth has every field set, so tests can see which ones Normalize keeps.
func fullAuth(typ AuthType) Auth {
	return Auth{
		Type:         typ,
		Token:        "tok_abcdefghijklmnop",
		Username:     "ada",
		Password:     "pa55word-long-enough",
		HeaderName:   "X-Api-Key",
		HeaderValue:  "key_abcdefghijklmnop",
		Secret:       "whsec_0123456789abcdef",
		TokenURL:     "https://auth.example.com/token",
		ClientID:     "herald",
		ClientSecret: "cs_abcdefghijklmnop",
		Scopes:       []string{"webhooks:write", " "},
		Audience:     "https://api.example.com",
	}
}

func TestAuthNormalize_KeepsOnlyFieldsOfItsType(t *testing.T) {
	tests := []struct {
		name string
		in   Auth
		want Auth
	}{
		{"none", fullAuth(AuthNone), Auth{Type: AuthNone}},
		{"empty type is none", fullAuth(""), Auth{Type: AuthNone}},
		{"bearer", fullAuth(AuthBearer), Auth{Type: AuthBearer, Token: "tok_abcdefghijklmnop"}},
		{"basic", fullAuth(AuthBasic), Auth{Type: AuthBasic, Username: "ada", Password: "pa55word-long-enough"}},
		{"api key", fullAuth(AuthAPIKey), Auth{Type: AuthAPIKey, HeaderName: "X-Api-Key", HeaderValue: "key_abcdefghijklmnop"}},
		{"hmac with header", fullAuth(AuthHMAC), Auth{Type: AuthHMAC, HeaderName: "X-Api-Key", Secret: "whsec_0123456789abcdef"}},
		{"signature with header", fullAuth(AuthSignature), Auth{Type: AuthSignature, HeaderName: "X-Api-Key", Secret: "whsec_0123456789abcdef"}},
		{"oauth2", fullAuth(AuthOAuth2), Auth{Type: AuthOAuth2, TokenURL: "https://auth.example.com/token", ClientID: "herald",
			ClientSecret: "cs_abcdefghijklmnop", Scopes: []string{"webhooks:write"}, Audience: "https://api.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Normalize()
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Normalize() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAuthNormalize_DefaultsHeaderNameOfSigningTypes(t *testing.T) {
	tests := []struct {
		typ        AuthType
		headerName string
		want       string
	}{
		{AuthHMAC, "", DefaultHMACHeader},
		{AuthSignature, "", DefaultSignatureHeader},
		{AuthHMAC, "X-Hub-Signature-256", "X-Hub-Signature-256"},
		{AuthSignature, "Stripe-Signature", "Stripe-Signature"},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ)+" "+tt.headerName, func(t *testing.T) {
			got, err := Auth{Type: tt.typ, HeaderName: tt.headerName, Secret: "0123456789abcdef"}.Normalize()
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if got.HeaderName != tt.want {
				t.Errorf("HeaderName = %q, want %q", got.HeaderName, tt.want)
			}
		})
	}
	if DefaultHMACHeader != "X-Signature-256" || DefaultSignatureHeader != "X-Webhook-Signature" {
		t.Errorf("default headers = %q, %q; the docs promise X-Signature-256 and X-Webhook-Signature", DefaultHMACHeader, DefaultSignatureHeader)
	}
}

func TestAuthNormalize_AcceptsLimits(t *testing.T) {
	tests := []struct {
		name string
		in   Auth
	}{
		{"token of 4096 characters", Auth{Type: AuthBearer, Token: strings.Repeat("t", 4096)}},
		{"secret of exactly 16 characters", Auth{Type: AuthHMAC, Secret: strings.Repeat("s", 16)}},
		{"password with colon", Auth{Type: AuthBasic, Username: "ada", Password: "a:b"}},
		{"lower-case api key header", Auth{Type: AuthAPIKey, HeaderName: "x-api-key", HeaderValue: "v"}},
		{"api key in Authorization", Auth{Type: AuthAPIKey, HeaderName: "Authorization", HeaderValue: "Token abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.in.Normalize(); err != nil {
				t.Errorf("Normalize(%+v) = %v, want nil", tt.in, err)
			}
		})
	}
}

func TestAuthNormalize_RejectsWithField(t *testing.T) {
	long := strings.Repeat("x", 4097)
	secret := "0123456789abcdef"
	tests := []struct {
		name  string
		in    Auth
		field string
	}{
		{"unknown type", Auth{Type: "OAUTH2"}, "type"},
		{"lower-case type", Auth{Type: "bearer", Token: "t"}, "type"},

		{"bearer without token", Auth{Type: AuthBearer}, "token"},
		{"bearer with blank token", Auth{Type: AuthBearer, Token: " \t "}, "token"},
		{"bearer token too long", Auth{Type: AuthBearer, Token: long}, "token"},
		{"bearer token with LF", Auth{Type: AuthBearer, Token: "abc\nX-Evil: 1"}, "token"},
		{"bearer token with CR", Auth{Type: AuthBearer, Token: "abc\r"}, "token"},

		{"basic without username", Auth{Type: AuthBasic, Password: "p"}, "username"},
		{"basic username with colon", Auth{Type: AuthBasic, Username: "a:b", Password: "p"}, "username"},
		{"basic username with line break", Auth{Type: AuthBasic, Username: "a\nb", Password: "p"}, "username"},
		{"basic without password", Auth{Type: AuthBasic, Username: "ada"}, "password"},
		{"basic password too long", Auth{Type: AuthBasic, Username: "ada", Password: long}, "password"},

		{"api key without header name", Auth{Type: AuthAPIKey, HeaderValue: "v"}, "headerName"},
		{"api key without value", Auth{Type: AuthAPIKey, HeaderName: "X-Api-Key"}, "headerValue"},
		{"api key value with line break", Auth{Type: AuthAPIKey, HeaderName: "X-Api-Key", HeaderValue: "v\r\nX-Evil: 1"}, "headerValue"},
		{"api key header name with space", Auth{Type: AuthAPIKey, HeaderName: "X Api Key", HeaderValue: "v"}, "headerName"},
		{"api key header name with colon", Auth{Type: AuthAPIKey, HeaderName: "X-Api-Key:", HeaderValue: "v"}, "headerName"},
		{"api key header name too long", Auth{Type: AuthAPIKey, HeaderName: strings.Repeat("h", 257), HeaderValue: "v"}, "headerName"},
		{"api key in Content-Type", Auth{Type: AuthAPIKey, HeaderName: "content-type", HeaderValue: "v"}, "headerName"},
		{"api key in Host", Auth{Type: AuthAPIKey, HeaderName: "Host", HeaderValue: "v"}, "headerName"},
		{"api key in webhook-id", Auth{Type: AuthAPIKey, HeaderName: "webhook-id", HeaderValue: "v"}, "headerName"},
		{"api key in X-Herald-*", Auth{Type: AuthAPIKey, HeaderName: "X-Herald-Key", HeaderValue: "v"}, "headerName"},

		{"hmac without secret", Auth{Type: AuthHMAC}, "secret"},
		{"hmac secret of 15 characters", Auth{Type: AuthHMAC, Secret: secret[:15]}, "secret"},
		{"hmac secret with line break", Auth{Type: AuthHMAC, Secret: secret + "\n"}, "secret"},
		{"hmac in Webhook-Signature", Auth{Type: AuthHMAC, HeaderName: "Webhook-Signature", Secret: secret}, "headerName"},
		{"hmac in X-Herald-Signature", Auth{Type: AuthHMAC, HeaderName: "x-herald-signature", Secret: secret}, "headerName"},
		{"hmac header with line break", Auth{Type: AuthHMAC, HeaderName: "X-Sig\r\nX-Evil", Secret: secret}, "headerName"},
		{"signature without secret", Auth{Type: AuthSignature}, "secret"},
		{"signature in Webhook-Timestamp", Auth{Type: AuthSignature, HeaderName: "Webhook-Timestamp", Secret: secret}, "headerName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Normalize()
			wantFault(t, err, tt.field)
			if !reflect.DeepEqual(got, Auth{}) {
				t.Errorf("Normalize returned %+v with an error, want the zero Auth", got)
			}
		})
	}
}

func TestAuthNormalize_RejectsControlCharactersNetHTTPWillNotSend(t *testing.T) {
	for _, a := range []Auth{
		{Type: AuthBearer, Token: "abc\x00def"},
		{Type: AuthAPIKey, HeaderName: "X-Api-Key", HeaderValue: "abc\x7fdef"},
	} {
		if _, err := a.Normalize(); err == nil {
			t.Errorf("Normalize(%+q) accepted a control character", a)
		}
	}
}

func TestAuthHeader(t *testing.T) {
	tests := []struct {
		a    Auth
		want string
	}{
		{Auth{Type: AuthNone}, ""},
		{Auth{}, ""},
		{Auth{Type: AuthBearer}, "Authorization"},
		{Auth{Type: AuthBasic}, "Authorization"},
		{Auth{Type: AuthAPIKey, HeaderName: "X-Api-Key"}, "X-Api-Key"},
		{Auth{Type: AuthHMAC, HeaderName: DefaultHMACHeader}, DefaultHMACHeader},
		{Auth{Type: AuthSignature, HeaderName: DefaultSignatureHeader}, DefaultSignatureHeader},
	}
	for _, tt := range tests {
		if got := tt.a.Header(); got != tt.want {
			t.Errorf("%+v.Header() = %q, want %q", tt.a, got, tt.want)
		}
	}
}
