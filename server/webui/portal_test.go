package webui

import (
	"errors"
	"io/fs"
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
	for _, p := range []string{"/portal/", "/portal/a/b", "/portal"} {
		if rec := get(t, portalHandler(nil, nil), http.MethodGet, p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, rec.Code)
		}
	}
	if rec := get(t, portalHandler(nil, nil), http.MethodPost, "/portal/app_01", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d", rec.Code)
	}
	if rec := get(t, Handler(), http.MethodGet, "/static/app/portal.html", nil); rec.Code != http.StatusNotFound {
		t.Errorf("the portal page is served under /static/: %d", rec.Code)
	}
}

// TestPortalKeepsTheTokenInMemory: the session token comes in the URL
// fragment and must not be written anywhere that outlives the page.
func TestPortalKeepsTheTokenInMemory(t *testing.T) {
	sub, _ := fs.Sub(staticFS, "static/app/assets")
	n := 0
	err := fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".js") {
			return err
		}
		n++
		b, _ := fs.ReadFile(sub, name)
		for _, bad := range []string{"localStorage", "sessionStorage", "indexedDB", "document.cookie", "caches.open"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
		if !strings.Contains(string(b), "history.replaceState") {
			t.Errorf("%s does not remove the token from the address bar", name)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("no built portal scripts (%v): run make assets", err)
	}
}
