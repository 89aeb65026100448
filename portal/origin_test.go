package portal_test

import (
	"testing"

	"github.com/heraldhq/herald/portal"
)

func TestNormalizeOrigin_AcceptsOnlyWhatFrameAncestorsCanNameSafely(t *testing.T) {
	for in, want := range map[string]string{
		"https://app.example.com":   "https://app.example.com",
		" HTTPS://App.Example.COM ": "https://app.example.com",
		"http://localhost:3000":     "http://localhost:3000",
		"https://*.example.com":     "https://*.example.com",
		"http://127.0.0.1:8080":     "http://127.0.0.1:8080",
	} {
		if got, err := portal.NormalizeOrigin(in); err != nil || got != want {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"app.example.com", "ftp://example.com", "https://example.com/path", "https://example.com?x", "https://user@example.com",
		"https://", "https://exa mple.com", "https://example.com:", "https://example.com:123456", "*", "'self'",
		"https://example.com; script-src *", "https://*", "https://a.*.com", "javascript:alert(1)",
	} {
		if got, err := portal.NormalizeOrigin(bad); err == nil {
			t.Errorf("NormalizeOrigin(%q) = %q, want an error", bad, got)
		}
	}
}
