// Package webui serves Herald's browser pages from embedded assets: GraphiQL at "/" (and later a live console at "/console").
//
// Everything the browser loads is embedded from static/ with go:embed; no CDN
// or other external URL is referenced. The third-party files under
// static/vendor/ are pinned in package.json/package-lock.json and regenerated
// with vendor.sh; the page itself (static/graphiql.html, graphiql.js,
// graphiql.css) is hand-written.
package webui

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

//go:embed static
var staticFS embed.FS

const (
	// pageFile is the GraphiQL page, served at "/" and "/graphiql" only.
	pageFile = "graphiql.html"

	// staticPrefix is the URL path prefix of the page's assets.
	staticPrefix = "/static/"

	// vendorDir holds third-party files in versioned directories
	// (vendor/<package>-<version>/), so their content never changes under
	// a given URL and they can be cached for a long time.
	vendorDir = "vendor/"

	cacheNoCache = "no-cache"
	cacheVendor  = "public, max-age=31536000, immutable"
)

// noncePlaceholder in the page is replaced by a fresh CSP nonce for each
// response. graphiql.js hands it to GraphiQL's dialogs, which insert a
// <style> element (react-remove-scroll) carrying window.__webpack_nonce__.
const noncePlaceholder = "__HERALD_CSP_NONCE__"

// contentSecurityPolicy returns the CSP for a response to a request for host.
// With a nonce (the page), inline <style> elements carrying it are allowed;
// nothing needs 'unsafe-inline' or 'unsafe-eval'. Fonts and images are data:
// URIs inlined in GraphiQL's CSS. connect-src adds ws:// and wss:// to the
// request's own host for graphql-ws subscriptions: CSP3 browsers include
// them in 'self', older ones do not.
func contentSecurityPolicy(host, nonce string) string {
	style := "style-src 'self'"
	if nonce != "" {
		style += " 'nonce-" + nonce + "'"
	}
	connect := "connect-src 'self'"
	if validHost.MatchString(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'none'; " +
		"script-src 'self'; " +
		style + "; " +
		"font-src 'self' data:; " +
		"img-src 'self' data:; " +
		connect + "; " +
		"base-uri 'none'; " +
		"form-action 'none'; " +
		"frame-ancestors 'none'"
}

// validHost matches a plain Host header value (name or IPv4, or bracketed
// IPv6, with an optional port) that is safe to echo into the CSP.
var validHost = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

type asset struct {
	body        []byte
	contentType string
	cache       string
	etag        string
}

var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".md":    "text/plain; charset=utf-8",
	".txt":   "text/plain; charset=utf-8",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".woff":  "font/woff",
	// Files without an extension (LICENSE, SHA256SUMS).
	"": "text/plain; charset=utf-8",
}

func newAsset(name string, body []byte) *asset {
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	cache := cacheNoCache
	if strings.HasPrefix(name, vendorDir) {
		cache = cacheVendor
	}
	sum := sha256.Sum256(body)
	return &asset{
		body:        body,
		contentType: ct,
		cache:       cache,
		etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
	}
}

type site struct {
	// page is graphiql.html split around noncePlaceholder.
	pageBefore, pageAfter []byte
	// static holds the assets by path relative to static/, page excluded.
	static map[string]*asset
}

// loadSite reads the embedded files once; they cannot change at run time.
var loadSite = sync.OnceValue(func() *site {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic("webui: " + err.Error())
	}
	s := &site{static: make(map[string]*asset)}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		if name != pageFile {
			s.static[name] = newAsset(name, body)
			return nil
		}
		before, after, ok := bytes.Cut(body, []byte(noncePlaceholder))
		if !ok || bytes.Contains(after, []byte(noncePlaceholder)) {
			return errors.New(pageFile + " must contain " + noncePlaceholder + " exactly once")
		}
		s.pageBefore, s.pageAfter = before, after
		return nil
	})
	if err == nil && s.pageBefore == nil {
		err = errors.New(pageFile + " is missing")
	}
	if err != nil {
		panic("webui: embedded files: " + err.Error())
	}
	return s
})

// page returns the GraphiQL page with nonce in place of noncePlaceholder.
func (s *site) page(nonce string) []byte {
	b := make([]byte, 0, len(s.pageBefore)+len(nonce)+len(s.pageAfter))
	b = append(b, s.pageBefore...)
	b = append(b, nonce...)
	return append(b, s.pageAfter...)
}

// Handler returns an http.Handler serving GraphiQL at "/" and its assets
// under "/static/". Unknown paths under /static/ are 404.
//
// The page is served for exactly "/" and "/graphiql"; every other path outside
// "/static/" is 404 too, so a server can mount this handler at "/" next to its
// own routes. Only GET and HEAD are allowed (405 otherwise). The page expects
// the GraphQL endpoint at "/graphql" on the same origin: HTTP POST for queries
// and mutations, a graphql-transport-ws WebSocket for subscriptions, both
// authenticated with the "Authorization: Bearer <key>" header that the user
// pastes into GraphiQL's header editor.
//
// Responses set Content-Type; Cache-Control "no-cache" for the page and the
// hand-written assets (which carry an ETag) and a year, immutable, for the
// vendored files (their URLs contain the package version); and a
// Content-Security-Policy allowing only 'self' for scripts, styles, fonts,
// images and connections, plus data: fonts and images (inlined in GraphiQL's
// CSS), ws:// and wss:// to the request's host, and a per-response nonce for
// the <style> element GraphiQL's dialogs insert. Neither 'unsafe-inline' nor
// 'unsafe-eval' is needed.
func Handler() http.Handler {
	s := loadSite()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")

		p := r.URL.Path
		isPage := p == "/" || p == "/graphiql"
		nonce := ""
		if isPage {
			nonce = rand.Text()
		}
		h.Set("Content-Security-Policy", contentSecurityPolicy(r.Host, nonce))

		var a *asset
		if !isPage && strings.HasPrefix(p, staticPrefix) {
			a = s.static[strings.TrimPrefix(p, staticPrefix)]
		}
		if !isPage && a == nil {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		if isPage {
			h.Set("Content-Type", contentTypes[".html"])
			h.Set("Cache-Control", cacheNoCache)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.page(nonce)))
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", a.cache)
		h.Set("ETag", a.etag)
		// ServeContent handles If-None-Match (304), HEAD and Range.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
