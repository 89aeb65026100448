package webui

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const placeholderHeaders = `"Authorization": "Bearer <paste your API key>"`

func get(t *testing.T, h http.Handler, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// cspDirectives parses a Content-Security-Policy header into directive ->
// sources.
func cspDirectives(t *testing.T, csp string) map[string][]string {
	t.Helper()
	d := make(map[string][]string)
	for part := range strings.SplitSeq(csp, ";") {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		if _, dup := d[f[0]]; dup {
			t.Errorf("CSP directive %s repeated in %q", f[0], csp)
		}
		d[f[0]] = f[1:]
	}
	return d
}

var htmlComment = regexp.MustCompile(`(?s)<!--.*?-->`)

// pageRefs returns the src and href attribute values of the page's elements
// that load something (comments, links and data: URIs excluded).
func pageRefs(t *testing.T, page string) []string {
	t.Helper()
	page = htmlComment.ReplaceAllString(page, "")
	var refs []string
	for _, m := range regexp.MustCompile(`(?i)<(?:script|link|img)\b[^>]*\s(?:src|href)\s*=\s*["']([^"']*)["']`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "data:") {
			refs = append(refs, m[1])
		}
	}
	if len(refs) == 0 {
		t.Fatal("page references no assets")
	}
	return refs
}

func TestGraphiQLPage(t *testing.T) {
	h := Handler()
	nonces := map[string]bool{}
	for _, p := range []string{"/", "/graphiql"} {
		rec := get(t, h, http.MethodGet, p, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d", p, rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", p, cc)
		}
		body := rec.Body.String()
		if !strings.Contains(body, placeholderHeaders) {
			t.Errorf("GET %s: page lacks the header placeholder %s", p, placeholderHeaders)
		}
		if strings.Contains(body, noncePlaceholder) {
			t.Errorf("GET %s: nonce placeholder not replaced", p)
		}
		csp := cspDirectives(t, rec.Header().Get("Content-Security-Policy"))
		var nonce string
		for _, src := range csp["style-src"] {
			if n, ok := strings.CutPrefix(src, "'nonce-"); ok {
				nonce = strings.TrimSuffix(n, "'")
			}
		}
		if len(nonce) < 22 || !strings.Contains(body, `"cspNonce": "`+nonce+`"`) {
			t.Errorf("GET %s: CSP style-src nonce %q missing from the page", p, nonce)
		}
		nonces[nonce] = true
	}
	if len(nonces) != 2 {
		t.Error("two responses had the same CSP nonce")
	}

	rec := get(t, h, http.MethodHead, "/", nil)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD /: status %d, %d body bytes", rec.Code, rec.Body.Len())
	}
	rec = get(t, h, http.MethodPost, "/", nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestContentSecurityPolicy(t *testing.T) {
	rec := get(t, Handler(), http.MethodGet, "http://herald.example:8080/", nil)
	raw := rec.Header().Get("Content-Security-Policy")
	if strings.Contains(raw, "unsafe-") {
		t.Errorf("CSP allows unsafe sources: %q", raw)
	}
	csp := cspDirectives(t, raw)
	want := map[string][]string{
		"default-src":     {"'none'"},
		"script-src":      {"'self'"},
		"font-src":        {"'self'", "data:"},
		"img-src":         {"'self'", "data:"},
		"connect-src":     {"'self'", "ws://herald.example:8080", "wss://herald.example:8080"},
		"base-uri":        {"'none'"},
		"form-action":     {"'none'"},
		"frame-ancestors": {"'none'"},
	}
	for dir, srcs := range want {
		if !slices.Equal(csp[dir], srcs) {
			t.Errorf("CSP %s = %q, want %q", dir, csp[dir], srcs)
		}
	}
	if style := csp["style-src"]; len(style) != 2 || style[0] != "'self'" || !strings.HasPrefix(style[1], "'nonce-") {
		t.Errorf("CSP style-src = %q, want 'self' and a nonce", style)
	}
	for _, name := range []string{"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"} {
		if rec.Header().Get(name) == "" {
			t.Errorf("missing %s header", name)
		}
	}

	// A Host that is not a plain host[:port] is not echoed into the CSP.
	for _, host := range []string{"evil; script-src *", "a b", "x'y", ""} {
		c := contentSecurityPolicy(host, "")
		if strings.Contains(c, "ws://") || (host != "" && strings.Contains(c, host)) {
			t.Errorf("host %q leaked into CSP %q", host, c)
		}
	}
	if c := contentSecurityPolicy("[::1]:9000", ""); !strings.Contains(c, "wss://[::1]:9000") {
		t.Errorf("IPv6 host missing from CSP %q", c)
	}
}

// pageURLs lists each page's URL paths; the first serves as the canonical one.
var pageURLs = map[string][]string{
	graphiqlFile: {"/", "/graphiql"},
	consoleFile:  {"/console", "/console/"},
}

func TestPageAssetsServed(t *testing.T) {
	h := Handler()
	for file, paths := range pageURLs {
		t.Run(file, func(t *testing.T) {
			page := get(t, h, http.MethodGet, paths[0], nil).Body.String()
			checkAssetsServed(t, h, page, paths)
		})
	}
}

// checkAssetsServed fetches every asset a page references, resolved from
// each of the page's URL paths as a browser would.
func checkAssetsServed(t *testing.T, h http.Handler, page string, paths []string) {
	t.Helper()
	for _, ref := range pageRefs(t, page) {
		for _, p := range paths {
			base := "http://herald.test" + p
			b, _ := url.Parse(base)
			u, err := b.Parse(ref)
			if err != nil {
				t.Fatalf("bad reference %q: %v", ref, err)
			}
			if u.Host != "herald.test" {
				t.Errorf("reference %q is not same-origin", ref)
				continue
			}
			rec := get(t, h, http.MethodGet, u.String(), nil)
			if rec.Code != http.StatusOK {
				t.Errorf("GET %s (from %s): status %d", u.Path, base, rec.Code)
				continue
			}
			want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[path.Ext(u.Path)]
			if ct := rec.Header().Get("Content-Type"); ct != want {
				t.Errorf("GET %s: Content-Type %q, want %q", u.Path, ct, want)
			}
			wantCache := "no-cache"
			if strings.HasPrefix(u.Path, "/static/vendor/") || strings.HasPrefix(u.Path, "/static/app/assets/") {
				wantCache = "public, max-age=31536000, immutable"
			}
			if cc := rec.Header().Get("Cache-Control"); cc != wantCache {
				t.Errorf("GET %s: Cache-Control %q, want %q", u.Path, cc, wantCache)
			}
			etag := rec.Header().Get("ETag")
			if etag == "" {
				t.Errorf("GET %s: no ETag", u.Path)
				continue
			}
			rec = get(t, h, http.MethodGet, u.String(), http.Header{"If-None-Match": {etag}})
			if rec.Code != http.StatusNotModified {
				t.Errorf("GET %s with If-None-Match: status %d, want 304", u.Path, rec.Code)
			}
		}
	}
}

func TestUnknownPathsNotFound(t *testing.T) {
	h := Handler()
	for _, p := range []string{
		"/static/nope.js",
		"/static/",
		"/static",
		"/static/vendor/",
		"/static/vendor/react-18.3.1/",
		"/static/graphiql.html", // the page is only at / and /graphiql
		"/static/../webui.go",
		"/static/vendor/../graphiql.js",
		"/graphiql/",
		"/index.html",
		"/graphql",
		"/static/app/console.html", // the console is only at /console and /console/
		"/static/app/portal.html",
		"/console/static/app/console.html",
		"/console/index.html",
		"/console//",
		"/consoles",
		"/favicon.ico",
	} {
		if rec := get(t, h, http.MethodGet, p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, rec.Code)
		}
	}
}

// Loadable absolute references: what a browser would fetch by itself.
var (
	// HTML: src/href of elements that load something (not <a href>).
	htmlLoad = regexp.MustCompile(`(?is)<(?:script|link|img|iframe|source|audio|video|embed|object|track|input)\b[^>]*\s(?:src|href|data|poster|srcset)\s*=\s*["']?\s*(?:https?:)?//`)
	// CSS, also in CSS held by JS strings: url(...) and @import.
	cssURL    = regexp.MustCompile(`(?i)url\(\s*["']?\s*(?:https?:)?//`)
	cssImport = regexp.MustCompile(`(?i)@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//`)
	// JS: module/script loading and fetches of absolute URL literals.
	jsLoad = regexp.MustCompile("(?i)(?:\\bimport\\s*\\(|\\bimportScripts\\s*\\(|\\bfetch\\s*\\(|\\bnew\\s+(?:WebSocket|EventSource|Worker|SharedWorker)\\s*\\(|\\.src\\s*=|\\bfrom)\\s*[\"'`](?:(?:https?|wss?):)?//")
	// Hosts that only ever serve assets to load.
	cdnHost = regexp.MustCompile(`(?i)\b(?:unpkg\.com|cdn\.jsdelivr\.net|cdnjs\.cloudflare\.com|fonts\.googleapis\.com|fonts\.gstatic\.com|esm\.sh|cdn\.skypack\.dev|ga\.jspm\.io|use\.typekit\.net|use\.fontawesome\.com)\b`)
)

func TestNoExternalURLs(t *testing.T) {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	scanned := map[string]bool{}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		body := string(b)
		var patterns []*regexp.Regexp
		switch path.Ext(name) {
		case ".html":
			body = htmlComment.ReplaceAllString(body, "")
			patterns = []*regexp.Regexp{htmlLoad, cssURL, cssImport, jsLoad}
		case ".css":
			patterns = []*regexp.Regexp{cssURL, cssImport}
		case ".js":
			patterns = []*regexp.Regexp{cssURL, cssImport, jsLoad, htmlLoad}
		default:
			return nil // LICENSE, SHA256SUMS: not loaded by the page
		}
		patterns = append(patterns, cdnHost)
		checked++
		scanned[name] = true
		for _, re := range patterns {
			for _, loc := range re.FindAllStringIndex(body, 5) {
				lo, hi := max(loc[0]-40, 0), min(loc[1]+60, len(body))
				t.Errorf("%s: loadable external URL: …%s…", name, body[lo:hi])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 9 {
		t.Errorf("scanned only %d files", checked)
	}
	for _, name := range []string{"graphiql.html", "graphiql.js", "graphiql.css", consoleFile, portalFile, refusedFile} {
		if !scanned[name] {
			t.Errorf("%s was not scanned", name)
		}
	}

	// The scanner itself must catch what it is for.
	for _, bad := range []struct {
		re  *regexp.Regexp
		src string
	}{
		{htmlLoad, `<script src="https://unpkg.com/react.js"></script>`},
		{htmlLoad, `<link rel="stylesheet" href="//cdn.example/x.css">`},
		{cssURL, `@font-face{src:url(https://fonts.gstatic.com/x.woff2)}`},
		{cssURL, `background:url( "//cdn.example/x.png")`},
		{cssImport, `@import url("https://fonts.googleapis.com/css?family=Roboto");`},
		{cssImport, `@import "//cdn.example/x.css";`},
		{jsLoad, `await import("https://esm.sh/graphql")`},
		{jsLoad, `fetch('https://api.example/graphql')`},
		{jsLoad, `s.src = "https://cdn.example/x.js"`},
	} {
		if !bad.re.MatchString(bad.src) {
			t.Errorf("scanner %v misses %q", bad.re, bad.src)
		}
	}
	for _, ok := range []string{
		`<a href="https://github.com/graphql/graphiql">`,
		`url(data:font/woff2;base64,AAAA)`,
		`"http://www.w3.org/2000/svg"`,
		`// see https://commonmark.org/`,
		`@import "./local.css";`,
	} {
		for _, re := range []*regexp.Regexp{htmlLoad, cssURL, cssImport, jsLoad, cdnHost} {
			if re.MatchString(ok) {
				t.Errorf("scanner %v flags harmless %q", re, ok)
			}
		}
	}
}

// TestVendorIntegrity checks static/vendor/ against the SHA256SUMS written by
// vendor.sh and the versions pinned in package.json: a hand edit, a stale
// file or a version bump without rerunning vendor.sh fails here.
func TestVendorIntegrity(t *testing.T) {
	sums, err := staticFS.ReadFile("static/vendor/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("bad SHA256SUMS line %q", sc.Text())
		}
		listed[name] = true
		b, err := staticFS.ReadFile("static/vendor/" + name)
		if err != nil {
			t.Errorf("SHA256SUMS lists missing file %s", name)
			continue
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("static/vendor/%s does not match SHA256SUMS: rerun vendor.sh", name)
		}
	}

	var pkg struct{ Dependencies map[string]string }
	b, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	vendor, _ := fs.Sub(staticFS, "static/vendor")
	err = fs.WalkDir(vendor, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && name != "SHA256SUMS" && !listed[name] {
			t.Errorf("static/vendor/%s is not in SHA256SUMS: rerun vendor.sh", name)
		}
		if d.IsDir() && name != "." {
			i := strings.LastIndex(name, "-")
			if i < 0 || pkg.Dependencies[name[:i]] != name[i+1:] {
				t.Errorf("static/vendor/%s does not match package.json %v", name, pkg.Dependencies)
			}
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHandlerBodiesMatchEmbeddedFiles(t *testing.T) {
	h := Handler()
	for target, file := range map[string]string{
		"/static/graphiql.js":  "graphiql.js",
		"/console":             consoleFile,
		"/console/":            consoleFile,
		"/static/graphiql.css": "graphiql.css",
	} {
		want, err := staticFS.ReadFile("static/" + file)
		if err != nil {
			t.Fatal(err)
		}
		rec := get(t, h, http.MethodGet, target, nil)
		got, _ := io.ReadAll(rec.Body)
		if !bytes.Equal(got, want) {
			t.Errorf("GET %s differs from the embedded %s", target, file)
		}
	}
}

func TestConsolePage(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/console", "/console/"} {
		rec := get(t, h, http.MethodGet, "http://herald.example:8080"+p, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d", p, rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", p, cc)
		}
		for _, name := range []string{"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"} {
			if rec.Header().Get(name) == "" {
				t.Errorf("GET %s: missing %s header", p, name)
			}
		}
		raw := rec.Header().Get("Content-Security-Policy")
		if strings.Contains(raw, "unsafe-") || strings.Contains(raw, "nonce-") {
			t.Errorf("GET %s: CSP allows inline code: %q", p, raw)
		}
		csp := cspDirectives(t, raw)
		for dir, srcs := range map[string][]string{
			"default-src":     {"'none'"},
			"script-src":      {"'self'"},
			"style-src":       {"'self'"},
			"connect-src":     {"'self'", "ws://herald.example:8080", "wss://herald.example:8080"},
			"base-uri":        {"'none'"},
			"form-action":     {"'none'"},
			"frame-ancestors": {"'none'"},
		} {
			if !slices.Equal(csp[dir], srcs) {
				t.Errorf("GET %s: CSP %s = %q, want %q", p, dir, csp[dir], srcs)
			}
		}
		body := rec.Body.String()
		if !regexp.MustCompile(`<script type="module" crossorigin src="/static/app/assets/console-[A-Za-z0-9_-]+\.js"></script>`).MatchString(body) ||
			!strings.Contains(body, `<div id="app"></div>`) {
			t.Errorf("GET %s: the page does not load the console's built script:\n%s", p, body)
		}
	}
	rec := get(t, h, http.MethodHead, "/console", nil)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD /console: status %d, %d body bytes", rec.Code, rec.Body.Len())
	}
	rec = get(t, h, http.MethodPost, "/console", nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /console: status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

var (
	scriptTag   = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	srcAttr     = regexp.MustCompile(`(?i)\ssrc\s*=`)
	jsonType    = regexp.MustCompile(`(?i)\stype\s*=\s*["']application/json["']`)
	inlineStyle = regexp.MustCompile(`(?i)<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:`)
)

// TestPagesHaveNoInlineCode checks what the CSP enforces, so that a page
// never depends on a browser that does not: scripts are files or inert JSON
// data blocks, and there are no inline styles or event handler attributes.
func TestPagesHaveNoInlineCode(t *testing.T) {
	for file := range pageFiles {
		b, err := staticFS.ReadFile("static/" + file)
		if err != nil {
			t.Fatal(err)
		}
		page := htmlComment.ReplaceAllString(string(b), "")
		scripts := scriptTag.FindAllStringSubmatch(page, -1)
		if len(scripts) == 0 && file != refusedFile {
			t.Errorf("%s: no scripts", file)
		}
		for _, m := range scripts {
			attrs, body := m[1], strings.TrimSpace(m[2])
			switch {
			case srcAttr.MatchString(attrs) && body == "":
			case jsonType.MatchString(attrs) && json.Valid([]byte(strings.ReplaceAll(body, noncePlaceholder, "n"))):
			default:
				t.Errorf("%s: inline script <script%s>%.60s", file, attrs, body)
			}
		}
		if m := inlineStyle.FindString(page); m != "" {
			t.Errorf("%s: inline style or handler %q", file, m)
		}
	}
}

// TestWebAppKeepsCredentialsForTheTabOnly: the console's API key and the
// portal's session token are held in sessionStorage at most (one tab, until
// it closes), never where they outlive the tab, and the portal removes its
// token from the address bar.
func TestWebAppKeepsCredentialsForTheTabOnly(t *testing.T) {
	sub, _ := fs.Sub(staticFS, "static/app/assets")
	var all strings.Builder
	n := 0
	err := fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".js") {
			return err
		}
		n++
		b, _ := fs.ReadFile(sub, name)
		for _, bad := range []string{"localStorage", "indexedDB", "document.cookie", "caches.open"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
		all.Write(b)
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("no built scripts (%v): run make assets", err)
	}
	for _, want := range []string{"history.replaceState", "sessionStorage", "removeItem"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("the built app does not use %s: update this test if that is on purpose", want)
		}
	}
}
