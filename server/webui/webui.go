// Package webui serves Herald's browser pages from embedded assets: GraphiQL
// at "/", the operator console at "/console", and the customer portal at
// "/portal/<app id>" (PortalHandler).
//
// Everything the browser loads is embedded from static/ with go:embed; no CDN
// or other external URL is referenced. The third-party files under
// static/vendor/ are pinned in package.json/package-lock.json and regenerated
// with vendor.sh; GraphiQL's page (static/graphiql.html, graphiql.js,
// graphiql.css) is hand-written. The console and the portal are one Preact
// app whose sources are in app/; app/build.sh builds it with Vite into
// static/app/ (committed, and checked by CI to match its sources).
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
	// graphiqlFile is the GraphiQL page, served at "/" and "/graphiql" only.
	graphiqlFile = "graphiql.html"

	// portalFile is the customer portal, built by Vite from app/ into
	// static/app/ and served under "/portal" only (PortalHandler).
	portalFile = "app/portal.html"

	// refusedFile is what a frame of the portal shows when the app allows
	// no site to embed it: the platform's instructions, with no script.
	refusedFile = "app/portal-refused.html"

	// consoleFile is the operator console, built with the portal and
	// served at "/console" and "/console/" only. Its assets have
	// root-relative URLs ("/static/app/…") so that both paths load them.
	consoleFile = "app/console.html"

	// staticPrefix is the URL path prefix of the page's assets.
	staticPrefix = "/static/"

	// vendorDir holds third-party files in versioned directories
	// (vendor/<package>-<version>/), so their content never changes under
	// a given URL and they can be cached for a long time.
	vendorDir = "vendor/"

	// appAssetsDir holds the portal's built scripts and styles, whose
	// file names carry a hash of their content.
	appAssetsDir = "app/assets/"

	cacheNoCache = "no-cache"
	cacheVendor  = "public, max-age=31536000, immutable"
)

// noncePlaceholder in the page is replaced by a fresh CSP nonce for each
// response. graphiql.js hands it to GraphiQL's dialogs, which insert a
// <style> element (react-remove-scroll) carrying window.__webpack_nonce__.
const noncePlaceholder = "__HERALD_CSP_NONCE__"

// pageFiles lists the HTML pages in static/ and whether each needs a CSP
// nonce (then it holds noncePlaceholder exactly once; otherwise never).
// Pages are served only at their paths in pagePaths, never under /static/.
var pageFiles = map[string]bool{
	graphiqlFile: true,
	consoleFile:  false, // no inline styles at all: style-src 'self' only
	portalFile:   false,
	refusedFile:  false,
}

// pagePaths maps the URL paths of the pages to their files.
var pagePaths = map[string]string{
	"/":         graphiqlFile,
	"/graphiql": graphiqlFile,
	"/console":  consoleFile,
	"/console/": consoleFile,
}

// contentSecurityPolicy returns the CSP for a response to a request for host.
// With a nonce (the page), inline <style> elements carrying it are allowed;
// nothing needs 'unsafe-inline' or 'unsafe-eval'. Fonts and images are data:
// URIs inlined in GraphiQL's CSS. connect-src adds ws:// and wss:// to the
// request's own host for graphql-ws subscriptions: CSP3 browsers include
// them in 'self', older ones do not.
func contentSecurityPolicy(host, nonce string) string {
	return contentSecurityPolicyFramed(host, nonce, nil)
}

// contentSecurityPolicyFramed is contentSecurityPolicy with the origins
// that may frame the page as frame-ancestors ('none' without any). The
// origins must be plain scheme://host[:port] values (portal.NormalizeOrigin).
func contentSecurityPolicyFramed(host, nonce string, ancestors []string) string {
	frame := "'none'"
	if len(ancestors) > 0 {
		frame = strings.Join(ancestors, " ")
	}
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
		"frame-ancestors " + frame
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
	if strings.HasPrefix(name, vendorDir) || strings.HasPrefix(name, appAssetsDir) {
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

// page is an HTML page split around noncePlaceholder (after is nil for a
// page without a nonce).
type page struct {
	before, after []byte
	nonce         bool
}

// render returns the page with nonce in place of noncePlaceholder.
func (p *page) render(nonce string) []byte {
	if !p.nonce {
		return p.before
	}
	b := make([]byte, 0, len(p.before)+len(nonce)+len(p.after))
	b = append(b, p.before...)
	b = append(b, nonce...)
	return append(b, p.after...)
}

type site struct {
	// pages holds the HTML pages by file name.
	pages map[string]*page
	// static holds the assets by path relative to static/, pages excluded.
	static map[string]*asset
}

// loadSite reads the embedded files once; they cannot change at run time.
var loadSite = sync.OnceValue(func() *site {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic("webui: " + err.Error())
	}
	s := &site{pages: make(map[string]*page), static: make(map[string]*asset)}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		needsNonce, isPage := pageFiles[name]
		if !isPage {
			s.static[name] = newAsset(name, body)
			return nil
		}
		p, err := newPage(name, body, needsNonce)
		s.pages[name] = p
		return err
	})
	for name := range pageFiles {
		if err == nil && s.pages[name] == nil {
			err = errors.New(name + " is missing")
		}
	}
	if err != nil {
		panic("webui: embedded files: " + err.Error())
	}
	return s
})

// newPage splits a page around its nonce placeholder, which it must hold
// exactly once if it needs a nonce, and never otherwise.
func newPage(name string, body []byte, needsNonce bool) (*page, error) {
	n := bytes.Count(body, []byte(noncePlaceholder))
	switch {
	case needsNonce && n != 1:
		return nil, errors.New(name + " must contain " + noncePlaceholder + " exactly once")
	case !needsNonce && n != 0:
		return nil, errors.New(name + " must not contain " + noncePlaceholder + ": it gets no nonce")
	case !needsNonce:
		return &page{before: body}, nil
	}
	before, after, _ := bytes.Cut(body, []byte(noncePlaceholder))
	return &page{before: before, after: after, nonce: true}, nil
}

// Handler returns an http.Handler serving GraphiQL at "/" (and "/graphiql"),
// the operator console at "/console" (and "/console/"), and their assets
// under "/static/". Unknown paths under /static/ are 404.
//
// Every other path is 404 too, so a server can mount this handler at "/" next
// to its own routes. Only GET and HEAD are allowed (405 otherwise). Both pages
// expect the GraphQL endpoint at "/graphql" on the same origin: HTTP POST for
// queries and mutations, a graphql-transport-ws WebSocket for subscriptions,
// both authenticated with "Authorization: Bearer <key>": GraphiQL sends what
// the user pastes into its header editor, the console the key typed in at
// sign-in (held in the tab's sessionStorage until the tab closes or the
// operator signs out).
//
// Responses set Content-Type; Cache-Control "no-cache" for the pages and the
// hand-written assets (which carry an ETag) and a year, immutable, for the
// vendored files (their URLs contain the package version); and a
// Content-Security-Policy allowing only 'self' for scripts, styles, fonts,
// images and connections, plus data: fonts and images (inlined in GraphiQL's
// CSS), ws:// and wss:// to the request's host, and, for GraphiQL only, a
// per-response nonce for the <style> element its dialogs insert. Neither
// 'unsafe-inline' nor 'unsafe-eval' is needed.
func Handler() http.Handler {
	s := loadSite()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")

		p := r.URL.Path
		pg := s.pages[pagePaths[p]]
		isPage := pg != nil
		nonce := ""
		if isPage && pg.nonce {
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
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(pg.render(nonce)))
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", a.cache)
		h.Set("ETag", a.etag)
		// ServeContent handles If-None-Match (304), HEAD and Range.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

// PortalHandler returns an http.Handler serving the customer portal page at
// "/portal/<app id>" (every path under "/portal/" with one segment), and at
// "/portal" and "/portal/", where the page explains what the portal is;
// other paths are 404. ancestors returns the origins that may frame the
// page of an app (the app's allowed origins); they become the CSP
// frame-ancestors, and without any the page refuses every frame ('none'
// and X-Frame-Options DENY). With origins, X-Frame-Options is left out: it
// cannot name several origins, and every browser the portal runs in
// honours frame-ancestors.
//
// A request for a frame (Sec-Fetch-Dest iframe or frame) of an app without
// allowed origins gets, instead of a frame the browser blocks, a page
// without script that any site may frame, saying what the platform must
// configure. It reads nothing from the link, so the token stays unused.
//
// The page reads its session token from the URL fragment, which browsers
// never send; the app ID in the path is not secret. Headers are otherwise
// those of Handler's pages.
func PortalHandler(ancestors func(r *http.Request, appID string) ([]string, error)) http.Handler {
	s := loadSite()
	pg, refused := s.pages[portalFile], s.pages[refusedFile]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		appID, ok := "", r.URL.Path == "/portal" || r.URL.Path == "/portal/"
		if !ok {
			appID, ok = strings.CutPrefix(r.URL.Path, "/portal/")
			ok = ok && appID != "" && !strings.Contains(appID, "/")
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		var origins []string
		if appID != "" {
			var err error
			if origins, err = ancestors(r, appID); err != nil {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Type", contentTypes[".html"])
		h.Set("Cache-Control", cacheNoCache)
		h.Add("Vary", "Sec-Fetch-Dest")
		body := pg
		switch dest := r.Header.Get("Sec-Fetch-Dest"); {
		case len(origins) == 0 && (dest == "iframe" || dest == "frame"):
			body = refused
			h.Set("Content-Security-Policy", contentSecurityPolicyFramed(r.Host, "", []string{"*"}))
		case len(origins) == 0:
			h.Set("X-Frame-Options", "DENY")
			h.Set("Content-Security-Policy", contentSecurityPolicyFramed(r.Host, "", nil))
		default:
			h.Set("Content-Security-Policy", contentSecurityPolicyFramed(r.Host, "", origins))
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body.render("")))
	})
}
