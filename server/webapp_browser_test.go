package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// Checks every screen of the web app (console and portal) gets: axe-core at
// desktop width and at 390 px (a phone), no sideways scrolling at 390 px,
// and, for the screens customers see, no API identifier in their text.

// phoneWidth is the width of the phone the screens must fit.
const phoneWidth = 390

// setWidth resizes the tab's viewport.
func (p *browserPage) setWidth(width int) {
	p.t.Helper()
	height := int64(800)
	if width == phoneWidth {
		height = 844
	}
	p.do(fmt.Sprintf("resize to %d px", width), chromedp.EmulateViewport(int64(width), height))
}

// checkScreen checks the page as it is at desktop width and at 390 px,
// and saves screenshots named name (and name-390) where
// HERALD_BROWSER_SCREENSHOTS says. customer screens are also scanned for
// API identifiers (checkWords).
func (p *browserPage) checkScreen(name string, customer bool) {
	p.t.Helper()
	p.checkAccessibility(name)
	if customer {
		p.checkWords(name)
	}
	p.screenshot(name)
	p.setWidth(phoneWidth)
	defer p.setWidth(1280)
	p.waitFor(name+" laid out at 390 px", `window.innerWidth === 390`)
	p.checkAccessibility(name + " at 390 px")
	var over []string
	p.eval(`(() => {
		const out = [];
		const doc = document.documentElement;
		if (doc.scrollWidth > window.innerWidth + 1) out.push("page: " + doc.scrollWidth + " px wide");
		for (const d of document.querySelectorAll("dialog[open], dialog[open] .dialog-body")) {
			if (d.scrollWidth > d.clientWidth + 1) out.push("dialog: " + d.scrollWidth + " px in " + d.clientWidth);
		}
		if (out.length) {
			for (const el of document.querySelectorAll("body *")) {
				const r = el.getBoundingClientRect();
				if (r.right > window.innerWidth + 1 && r.width > 0 && !el.closest(".sr-only")) {
					out.push((el.tagName + "." + el.className + " " + (el.dataset.testid || "")).trim() + " ends at " + Math.round(r.right));
					if (out.length > 8) break;
				}
			}
		}
		return out;
	})()`, &over)
	if len(over) > 0 {
		p.t.Errorf("%s scrolls sideways at %d px: %s", name, phoneWidth, strings.Join(over, "; "))
	}
	if customer {
		p.checkWords(name + " at 390 px")
	}
	p.screenshot(name + "-390")
}

// identifiers returns the names in Herald's GraphQL schema that read as
// code, not words: camelCase names (updateEndpoint, eventTypes,
// allowDuplicate), type names of several words (EndpointAuth), and enum
// values with an underscore (ENDPOINTS_WRITE, MANUAL_RETRY).
var identifiers = sync.OnceValues(func() (map[string]bool, error) {
	var sources []*ast.Source
	for _, f := range []string{"schema.graphqls", "graph/ent.graphqls", "graph/destinations.graphqls"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			return nil, err
		}
		sources = append(sources, &ast.Source{Name: f, Input: string(b)})
	}
	// gqlgen's directives are declared in ent.graphqls.
	schema, err := gqlparser.LoadSchema(sources...)
	if err != nil {
		return nil, err
	}
	camel := regexp.MustCompile(`[a-z][A-Z]`)
	out := map[string]bool{}
	add := func(name string) {
		if camel.MatchString(name) || strings.Contains(strings.Trim(name, "_"), "_") {
			out[name] = true
		}
	}
	for name, def := range schema.Types {
		if strings.HasPrefix(name, "__") {
			continue
		}
		add(name)
		for _, f := range def.Fields {
			add(f.Name)
			for _, a := range f.Arguments {
				add(a.Name)
			}
		}
		for _, v := range def.EnumValues {
			add(v.Name)
		}
	}
	return out, nil
})

// checkWords fails the test if the text a customer reads on the page
// (visible text, screen-reader text, labels, titles and placeholders, but
// not code samples or payloads, in pre and code elements) holds an API
// identifier, an error reason (SCREAMING_SNAKE) or an input path
// (input.url).
func (p *browserPage) checkWords(screen string) {
	p.t.Helper()
	ids, err := identifiers()
	if err != nil {
		p.t.Fatalf("read the schema: %v", err)
	}
	var tokens []string
	p.eval(`(() => {
		const out = [];
		const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			const el = n.parentElement;
			if (!el || el.closest("pre, code, script, style, [aria-hidden=true]")) continue;
			out.push(n.textContent);
		}
		for (const el of document.querySelectorAll("[aria-label], [title], [placeholder], [alt]")) {
			if (el.closest("pre, code")) continue;
			for (const a of ["aria-label", "title", "placeholder", "alt"]) if (el.hasAttribute(a)) out.push(el.getAttribute(a));
		}
		out.push(document.title);
		return out.join(" ").match(/[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/g) || [];
	})()`, &tokens)
	if len(tokens) < 10 {
		p.t.Errorf("words on %s: only %d words found: is the scan reading the page?", screen, len(tokens))
	}
	snake := regexp.MustCompile(`^[A-Z][A-Z0-9]*_[A-Z0-9_]+$`)
	bad := map[string]bool{}
	for _, tok := range tokens {
		for _, part := range strings.Split(tok, ".") {
			if ids[part] || snake.MatchString(part) {
				bad[part] = true
			}
		}
		if strings.HasPrefix(tok, "input.") {
			bad[tok] = true
		}
	}
	if len(bad) > 0 {
		var list []string
		for w := range bad {
			list = append(list, w)
		}
		sort.Strings(list)
		p.t.Errorf("words on %s: a customer reads API identifiers %q\npage text:\n%s", screen, list, p.text())
	}
}

// TestWords_ScanCatchesIdentifiers proves the scan's list: it must hold
// what it is for and leave words alone.
func TestWords_ScanCatchesIdentifiers(t *testing.T) {
	ids, err := identifiers()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"updateEndpoint", "allowDuplicate", "eventTypes", "disabledReason", "ENDPOINTS_WRITE", "MANUAL_RETRY", "deliveryUpdated", "EndpointAuth"} {
		if !ids[want] {
			t.Errorf("the scan does not know %s", want)
		}
	}
	for _, word := range []string{"name", "url", "Delivery", "FAILED", "status", "Endpoint"} {
		if ids[word] {
			t.Errorf("the scan flags the word %q", word)
		}
	}
}
