package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// The browser tests drive GraphiQL, the console and the portal in headless
// Chromium. Without Chromium they are skipped, unless
// HERALD_REQUIRE_BROWSER=1 (CI) makes that a failure. HERALD_CHROMIUM
// names another browser binary; HERALD_BROWSER_SCREENSHOTS=dir saves a
// screenshot of every browser test's last page into dir (failed tests always
// save one and log where).

// browserTimeout bounds each browser test.
const browserTimeout = 30 * time.Second

// chromiumPath returns the browser to drive, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("HERALD_CHROMIUM")}
	if p, err := exec.LookPath("chromium"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/chromium")
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	msg := "browser tests need Chromium (apt-get install chromium, or set HERALD_CHROMIUM)"
	if os.Getenv("HERALD_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + " (HERALD_REQUIRE_BROWSER=1)")
	}
	t.Skip(msg)
	return ""
}

// browserPage is one headless Chromium tab.
type browserPage struct {
	t   *testing.T
	ctx context.Context // the tab, with the test's deadline
	tab context.Context // the tab without a deadline, for reports after a timeout
	axe string          // axe-core's source, for checkAccessibility

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
	sockets  []string // URLs of the WebSockets the page opened
}

// openBrowser starts Chromium with one tab for the test; it is closed when
// the test ends, after a screenshot if the test failed.
func openBrowser(t *testing.T) *browserPage {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.WindowSize(1280, 800),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	// Start the browser with no deadline: the first Do binds its life to
	// the context it gets.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	t.Cleanup(cancel)
	p := &browserPage{t: t, ctx: ctx, tab: tab}

	messages := chromedp.Console(tab)
	sockets := chromedp.Events(tab, network.WebSocketCreated)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.messages = append(p.messages, m)
			p.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range sockets {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.sockets = append(p.sockets, ev.URL)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.report)
	return p
}

// report saves a screenshot and logs the page's console when the test
// failed (or HERALD_BROWSER_SCREENSHOTS asks for screenshots).
func (p *browserPage) report() {
	t := p.t
	dir := os.Getenv("HERALD_BROWSER_SCREENSHOTS")
	if !t.Failed() && dir == "" {
		return
	}
	if dir == "" {
		// Not t.TempDir: it is removed when the test ends.
		var err error
		if dir, err = os.MkdirTemp("", "herald-browser-"); err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(p.tab, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot: %v", err)
	} else {
		name := filepath.Join(dir, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")+".png")
		if err := os.WriteFile(name, png, 0o644); err != nil {
			t.Logf("screenshot: %v", err)
		} else {
			t.Logf("screenshot of the page: %s", name)
		}
	}
	if t.Failed() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, m := range p.messages {
			t.Logf("browser console: %s %s", m.Type, m.Text)
		}
	}
}

// do runs actions in the tab and fails the test on an error.
func (p *browserPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage text:\n%s", what, err, p.text())
	}
}

// eval evaluates a JavaScript expression and decodes its value into v.
func (p *browserPage) eval(expr string, v any) {
	p.t.Helper()
	raw, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			p.t.Fatalf("evaluate %s: decode %s: %v", expr, raw, err)
		}
	}
}

// waitFor polls a JavaScript expression until it is truthy.
func (p *browserPage) waitFor(what, expr string) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[bool]("!!("+expr+")",
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, p.text())
	}
}

// text returns the visible text of the page, for failure messages.
func (p *browserPage) text() string {
	ctx, cancel := context.WithTimeout(p.tab, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return s
}

// checkConsole fails the test on uncaught exceptions and Content Security
// Policy violations in the page.
func (p *browserPage) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.messages {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			p.t.Errorf("browser console: %s %s", m.Type, m.Text)
		}
	}
}

// webSockets returns how many WebSockets the page has opened.
func (p *browserPage) webSockets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sockets)
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// replaceEditorText replaces the text of the CodeMirror editor that sel
// finds as a user would: click into it, select all, and insert the text the
// way a paste or an IME does (so no bracket is auto-closed twice).
func (p *browserPage) replaceEditorText(sel, text string) {
	p.t.Helper()
	p.do("select the editor "+sel,
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
			return err
		}),
	)
	p.waitFor("the editor "+sel+" to hold the text",
		`document.querySelector(`+js(sel)+`).CodeMirror.getValue() === `+js(text))
}

func TestGraphiQL_RunsSubscription(t *testing.T) {
	s := heraldtest.Start(t)
	p := openBrowser(t)
	const headers = `.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror`
	const query = `.graphiql-query-editor .CodeMirror`
	p.do("open GraphiQL", chromedp.Navigate(s.URL+"/"))
	p.waitFor("GraphiQL's editors", `document.querySelector(`+js(headers)+`) && document.querySelector(`+js(query)+`)`)

	p.replaceEditorText(headers, `{"Authorization": "Bearer `+s.Token+`"}`)
	p.replaceEditorText(query, `subscription { eventPublished { eventId eventType } }`)
	p.do("run the subscription", chromedp.Click(chromedp.CSS(".graphiql-execute-button")))
	waitSubscribed(t, s, 1)

	evID := s.Publish(s.Token, "order.paid", map[string]any{"orderId": "ord_7"})
	p.waitFor("the event in the result pane", `(() => {
		const cm = document.querySelector(".graphiql-response .CodeMirror");
		return cm && cm.CodeMirror.getValue().includes(`+js(evID)+`);
	})()`)
	var result struct {
		Data struct {
			EventPublished struct{ EventID, EventType string }
		}
	}
	var raw string
	p.eval(`document.querySelector(".graphiql-response .CodeMirror").CodeMirror.getValue()`, &raw)
	if err := json.Unmarshal([]byte(raw), &result); err != nil || result.Data.EventPublished.EventType != "order.paid" {
		t.Errorf("result pane holds %s (%v)", raw, err)
	}
	p.checkConsole()
}
