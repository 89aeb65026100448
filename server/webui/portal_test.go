package webui

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func portalHandler(origins []string, err error) http.Handler {
	return PortalHandler(func(*http.Request, string) ([]string, error) { return origins, err })
}

func TestPortalPage_FrameAncestorsAreTheAppsOrigins(t *testing.T) {
	for _, tc := range []struct {
		name    string
		origins []string
		want    []string
		xfo     string
	}{
		{"no origins refuse every frame", nil, []string{"'none'"}, "DENY"},
		{"allowed origins", []string{"https://app.example.com", "http://localhost:3000"}, []string{"https://app.example.com", "http://localhost:3000"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, portalHandler(tc.origins, nil), http.MethodGet, "http://herald.example:8080/portal/app_01", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			raw := rec.Header().Get("Content-Security-Policy")
			csp := cspDirectives(t, raw)
			if !slices.Equal(csp["frame-ancestors"], tc.want) {
				t.Errorf("frame-ancestors = %q, want %q", csp["frame-ancestors"], tc.want)
			}
			if strings.Contains(raw, "unsafe-") || !slices.Equal(csp["script-src"], []string{"'self'"}) || !slices.Equal(csp["style-src"], []string{"'self'"}) {
				t.Errorf("CSP %q", raw)
			}
			if got := rec.Header().Get("X-Frame-Options"); got != tc.xfo {
				t.Errorf("X-Frame-Options %q, want %q", got, tc.xfo)
			}
			if rec.Header().Get("Referrer-Policy") != "no-referrer" || rec.Header().Get("Cache-Control") != "no-cache" {
				t.Errorf("headers %v", rec.Header())
			}
			checkAssetsServed(t, Handler(), rec.Body.String(), []string{"/portal/app_01"})
		})
	}
	if rec := get(t, portalHandler(nil, errors.New("db down")), http.MethodGet, "/portal/app_01", nil); rec.Code != http.StatusInternalServerError {
		t.Errorf("lookup failure: status %d, want 500", rec.Code)
	}
	for _, p := range []string{"/portal/a/b", "/portal//", "/portals"} {
		if rec := get(t, portalHandler(nil, nil), http.MethodGet, p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, rec.Code)
		}
	}
	// Without an app, the page explains what the portal is.
	for _, p := range []string{"/portal", "/portal/"} {
		rec := get(t, portalHandler(nil, errors.New("not asked")), http.MethodGet, p, nil)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<div id="app">`) {
			t.Errorf("GET %s: status %d", p, rec.Code)
		}
	}
	if rec := get(t, portalHandler(nil, nil), http.MethodPost, "/portal/app_01", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d", rec.Code)
	}
	if rec := get(t, Handler(), http.MethodGet, "/static/app/portal.html", nil); rec.Code != http.StatusNotFound {
		t.Errorf("the portal page is served under /static/: %d", rec.Code)
	}
}

// A frame of the portal of an app that allows no site gets Herald's page
// saying what to configure, framable by any site; with allowed origins, or
// outside a frame, the portal itself with its frame-ancestors.
func TestPortalPage_RefusedFrameExplainsWhatToConfigure(t *testing.T) {
	frame := http.Header{"Sec-Fetch-Dest": {"iframe"}}
	rec := get(t, portalHandler(nil, nil), http.MethodGet, "/portal/app_01", frame)
	body := rec.Body.String()
	csp := cspDirectives(t, rec.Header().Get("Content-Security-Policy"))
	if rec.Code != http.StatusOK || !strings.Contains(body, `data-testid="frame-refused"`) || strings.Contains(body, "<script") {
		t.Errorf("framed, no origins: status %d, page:\n%s", rec.Code, body)
	}
	if !slices.Equal(csp["frame-ancestors"], []string{"*"}) || rec.Header().Get("X-Frame-Options") != "" {
		t.Errorf("framed, no origins: frame-ancestors %q, X-Frame-Options %q: the explanation must be framable", csp["frame-ancestors"], rec.Header().Get("X-Frame-Options"))
	}
	if !strings.Contains(rec.Header().Get("Vary"), "Sec-Fetch-Dest") {
		t.Errorf("Vary %q: caches must tell frames from pages", rec.Header().Get("Vary"))
	}
	checkAssetsServed(t, Handler(), body, []string{"/portal/app_01"})

	for name, tc := range map[string]struct {
		origins []string
		header  http.Header
	}{
		"framed, allowed origins": {[]string{"https://app.example.com"}, frame},
		"not framed":              {nil, nil},
	} {
		rec := get(t, portalHandler(tc.origins, nil), http.MethodGet, "/portal/app_01", tc.header)
		if strings.Contains(rec.Body.String(), "frame-refused") || !strings.Contains(rec.Body.String(), `<div id="app">`) {
			t.Errorf("%s: got the refusal page", name)
		}
	}
}
