package secret

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldhq/herald/webhook"
)

func TestMask(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"a", "****"},
		{"abcd", "****"},
		{"abcdefghijk", "****"}, // 11: too short to show anything
		{"abcdefghijkl", "****ijkl"},
		{"whsec_0123456789abcdefWXYZ", "****WXYZ"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Mask(tt.in)
			if got != tt.want {
				t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.in != "" && strings.Contains(got, tt.in) {
				t.Errorf("Mask(%q) = %q reveals the secret", tt.in, got)
			}
		})
	}
	if got := Mask("€€€€€€€€€€€€€€"); !utf8.ValidString(got) {
		t.Errorf("Mask = %q, not valid UTF-8", got)
	}
}

func TestMaskAuth_HidesSecretsKeepsIdentifiers(t *testing.T) {
	in := webhook.Auth{Type: webhook.AuthOAuth2, Token: "tok_abcdefghijklmnop", Username: "ada", Password: "pa55word-long-enough",
		HeaderName: "X-Api-Key", HeaderValue: "key_abcdefghijklmnop", Secret: "whsec_0123456789abcdef",
		TokenURL: "https://auth.example.com/token", ClientID: "herald", ClientSecret: "cs_abcdefghijklmnop"}
	got := MaskAuth(in)
	if got.Token != "****mnop" || got.Password != "****ough" || got.HeaderValue != "****mnop" || got.Secret != "****cdef" || got.ClientSecret != "****mnop" {
		t.Errorf("MaskAuth = %+v", got)
	}
	if got.Username != "ada" || got.ClientID != "herald" || got.TokenURL != in.TokenURL || got.HeaderName != "X-Api-Key" {
		t.Errorf("MaskAuth hid identifiers: %+v", got)
	}
	if in.Token != "tok_abcdefghijklmnop" {
		t.Error("MaskAuth modified its argument")
	}
	back := UnmaskAuth(got, in)
	if back.ClientSecret != in.ClientSecret || back.Token != in.Token {
		t.Errorf("UnmaskAuth of the masked form = %+v, want the stored secrets", back)
	}
	changed := got
	changed.ClientSecret = "a-new-client-secret"
	if UnmaskAuth(changed, in).ClientSecret != "a-new-client-secret" {
		t.Error("UnmaskAuth dropped a new secret")
	}
}

func TestMaskHeaders_MasksSecretValues(t *testing.T) {
	in := []webhook.Header{
		{Name: "Authorization", Value: "Bearer sk_live_0123456789WXYZ"},
		{Name: "Cookie", Value: "session=abc"},
		{Name: "X-Api-Key", Value: "key_0123456789abcd"},
		{Name: "X-Tenant", Value: "acme-0123456789"},
		{Name: "X-Partner", Value: "partner-secret-0123", Secret: true},
		{Name: "Webhook-Id", Value: "msg_0123456789abcdef"},
	}
	orig := slices.Clone(in)
	got := MaskHeaders(in)
	want := []webhook.Header{
		{Name: "Authorization", Value: "****WXYZ", Secret: true},
		{Name: "Cookie", Value: "****", Secret: true},
		{Name: "X-Api-Key", Value: "****abcd", Secret: true},
		{Name: "X-Tenant", Value: "acme-0123456789"},
		{Name: "X-Partner", Value: "****0123", Secret: true},
		{Name: "Webhook-Id", Value: "msg_0123456789abcdef"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("MaskHeaders =\n %+v\nwant\n %+v", got, want)
	}
	if !slices.Equal(in, orig) {
		t.Error("MaskHeaders modified its input")
	}
	back := UnmaskHeaders(got, in)
	if !slices.EqualFunc(back, in, func(a, b webhook.Header) bool { return a.Value == b.Value }) {
		t.Errorf("UnmaskHeaders = %+v, want the stored values", back)
	}
}

func TestMaskConfig_MasksOnlySecretFields(t *testing.T) {
	got := MaskConfig(json.RawMessage(`{"url":"amqp://rabbit","password":"hunter2-hunter2","port":5672}`), []string{"password"})
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if m["password"] != "****ter2" || m["url"] != "amqp://rabbit" || m["port"] != float64(5672) {
		t.Errorf("MaskConfig = %s", got)
	}
}
