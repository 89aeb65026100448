package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// The browser tests drive GraphiQL and the live console in headless
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

// openConsole opens the live console and connects with key.
func (p *browserPage) openConsole(baseURL, key string) {
	p.t.Helper()
	p.do("open the console",
		chromedp.Navigate(baseURL+"/console"),
		chromedp.WaitVisible(chromedp.ID("api-key")),
		chromedp.SendKeys(chromedp.ID("api-key"), key),
		chromedp.Click(chromedp.ID("connect")),
	)
}

// consoleState is the connection state the console shows.
const consoleState = `document.getElementById("conn-state").dataset.state`

// rowSelector selects the console's row of an event's delivery.
func rowSelector(eventID string) string {
	return fmt.Sprintf(`#deliveries tr[data-event-id=%q]`, eventID)
}

// waitRow waits until the row of an event's delivery shows status and HTTP
// code ("" for none), and returns its cells by column.
func (p *browserPage) waitRow(eventID, status, code string) map[string]string {
	p.t.Helper()
	row := `document.querySelector(` + js(rowSelector(eventID)) + `)`
	cond := row + ` && ` + row + `.dataset.status === ` + js(status)
	if code != "" {
		cond += ` && ` + row + `.querySelector("[data-col=code]").textContent === ` + js(code)
	}
	p.waitFor(fmt.Sprintf("the row of %s to show %s %s", eventID, status, code), cond)
	var cells map[string]string
	p.eval(`Object.fromEntries(Array.from(`+row+`.cells, c => [c.dataset.col, c.textContent]))`, &cells)
	return cells
}

func TestConsole_ShowsDeliveryAsItHappens(t *testing.T) {
	s := heraldtest.Start(t)
	orders := heraldtest.NewReceiver(t, nil)
	ordersID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "Orders API", "url": orders.URL, "eventTypes": []string{"order.*"},
		"rateLimit": map[string]any{"requests": 50, "per": "1s"}, "ordering": "KEY"})
	var crmStatus atomic.Int32
	crmStatus.Store(http.StatusNotFound) // permanent: FAILED at once
	crm := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(crmStatus.Load())) })
	s.CreateEndpoint(s.Token, map[string]any{"name": "CRM sync", "url": crm.URL, "eventTypes": []string{"contact.*"}})

	p := openBrowser(t)
	p.axe = axeSource(t)
	p.openConsole(s.URL, s.Token)
	p.waitFor("the console to be live", consoleState+` === "live"`)
	waitSubscribed(t, s, 1)
	p.waitFor("the endpoints in the filter", `document.querySelectorAll("#endpoint option").length === 3`)
	p.checkAccessibility("console")
	var stored bool
	p.eval(`localStorage.length > 0 || sessionStorage.length > 0`, &stored)
	if stored {
		t.Error("the console stored something (the key?) in web storage without being asked to")
	}

	// A delivery appears and is updated in place until it succeeds.
	okEvent := s.Publish(s.Token, "order.created", map[string]any{"orderId": "ord_1042"})
	cells := p.waitRow(okEvent, "SUCCEEDED", "200")
	if cells["event"] != "order.created" || cells["endpoint"] != "Orders API" || cells["attempt"] != "1" ||
		!regexp.MustCompile(`^\d+ ms$`).MatchString(cells["latency"]) || cells["error"] != "—" {
		t.Errorf("row of the successful delivery = %v", cells)
	}

	// A failed delivery offers Retry, which succeeds once the receiver does.
	failEvent := s.Publish(s.Token, "contact.created", map[string]any{"contactId": "c_7"})
	cells = p.waitRow(failEvent, "FAILED", "404")
	if cells["endpoint"] != "CRM sync" || cells["attempt"] != "1" || cells["error"] == "—" {
		t.Errorf("row of the failed delivery = %v", cells)
	}
	crmStatus.Store(http.StatusOK)
	p.do("click Retry", chromedp.Click(chromedp.CSS(rowSelector(failEvent)+` button[data-testid="retry"]`)))
	cells = p.waitRow(failEvent, "SUCCEEDED", "200")
	if cells["attempt"] != "2" || cells["error"] != "—" || cells["actions"] != "" {
		t.Errorf("row of the retried delivery = %v", cells)
	}
	var order []string
	p.eval(`Array.from(document.querySelectorAll("#deliveries tr"), r => r.dataset.eventId)`, &order)
	if len(order) != 2 || order[0] != failEvent || order[1] != okEvent {
		t.Errorf("rows = %v, want the newest (%s) first, then %s", order, failEvent, okEvent)
	}

	// Narrowing to one endpoint resubscribes and reloads its deliveries.
	p.eval(`(() => { const s = document.getElementById("endpoint"); s.value = `+js(ordersID)+`;
		s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, nil)
	p.waitFor("only Orders API rows", `(() => {
		const rows = Array.from(document.querySelectorAll("#deliveries tr"));
		return rows.length === 1 && rows[0].dataset.eventId === `+js(okEvent)+` && rows[0].dataset.endpointId === `+js(ordersID)+`;
	})()`)
	p.waitFor("the console to be live again", consoleState+` === "live"`)
	var meta string
	p.eval(`document.getElementById("endpoint-meta").textContent`, &meta)
	if !strings.Contains(meta, "at most 50 per 1s") || !strings.Contains(meta, "ordered by key") {
		t.Errorf("endpoint line %q, want its rate limit and ordering", meta)
	}

	// Send test event reports the endpoint's answer.
	p.do("click Send test event", chromedp.Click(chromedp.ID("send-test")))
	p.waitFor("the test result", `document.getElementById("test-result").dataset.delivered === "true"`)
	var result string
	p.eval(`document.getElementById("test-result").textContent`, &result)
	if !strings.Contains(result, "Delivered") || !strings.Contains(result, "HTTP 200") {
		t.Errorf("test result %q", result)
	}
	if got := len(orders.Requests()); got != 2 {
		t.Errorf("Orders API receiver got %d requests, want the event and the test", got)
	}
	p.checkConsole()
}

func TestConsole_RejectedKeyStopsWithoutReconnecting(t *testing.T) {
	s := heraldtest.Start(t)
	p := openBrowser(t)
	p.openConsole(s.URL, "hrld_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	p.waitFor("the key to be rejected", consoleState+` === "rejected"`)
	var state, notice string
	p.eval(`document.getElementById("conn-state").textContent.trim()`, &state)
	p.eval(`document.getElementById("console-error").hidden ? "" : document.getElementById("console-error-text").textContent`, &notice)
	if state != "Key rejected" || !strings.Contains(notice, "Key rejected") {
		t.Errorf("state %q, notice %q", state, notice)
	}
	// The server closed the socket with 4401, which the console does not
	// retry. A retry would come after a second or more (graphql-ws waits
	// before reconnecting), so watch for one a little longer than that.
	if !heraldtest.Eventually(5*time.Second, func() bool { return p.webSockets() >= 1 }) {
		t.Fatal("the console opened no WebSocket")
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if conns, _ := s.LiveStats(); conns != 0 || p.webSockets() != 1 {
			t.Fatalf("the console reconnected: %d open connections, %d WebSockets opened", conns, p.webSockets())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var keyEnabled bool
	p.eval(`!document.getElementById("api-key").disabled && document.getElementById("connect").textContent === "Connect"`, &keyEnabled)
	if !keyEnabled {
		t.Error("after a rejected key the key field and Connect are not ready for another key")
	}
	p.checkConsole()
}

func TestConsole_ResubscribesOnceAfterLagging(t *testing.T) {
	// A tiny subscriber buffer, and a receiver that holds the one request
	// the engine sends at a time, so that only publishing moves the feed.
	s := heraldtest.Start(t, func(c *server.Config) {
		c.SubscriberBuffer = 4
		c.PerEndpoint = 1
	})
	release := make(chan struct{})
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "timeout": "30s"})
	burst := func() {
		in := make([]map[string]any, 100)
		for i := range in {
			in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"i": i}}
		}
		s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, nil)
	}

	p := openBrowser(t)
	p.openConsole(s.URL, s.Token)
	p.waitFor("the console to be live", consoleState+` === "live"`)
	// Two subscriptions: the deliveries feed and the statistics, which
	// only coalesce changes and so never lag.
	waitSubscribed(t, s, 2)

	// The first lag: the console says so and subscribes again by itself.
	burst()
	p.waitFor("the lag notice", `(() => { const n = document.getElementById("console-info");
		return !n.hidden && n.textContent.includes("fell behind") })()`)
	waitSubscribed(t, s, 2)
	p.waitFor("the console to be live after resubscribing", consoleState+` === "live"`)

	// The second: the feed stays stopped until the user resubscribes.
	burst()
	p.waitFor("the feed to stop", consoleState+` === "stopped" && !document.getElementById("resubscribe").hidden`)
	if !heraldtest.Eventually(5*time.Second, func() bool { _, subs := s.LiveStats(); return subs == 1 }) {
		t.Fatal("the console subscribed again after lagging twice (or its statistics stopped)")
	}
	p.do("click Resubscribe", chromedp.Click(chromedp.ID("resubscribe")))
	waitSubscribed(t, s, 2)
	p.waitFor("the console to be live after Resubscribe", consoleState+` === "live" && document.getElementById("console-error").hidden`)
	p.checkConsole()
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

// The console charts the last hour of deliveries, live, with the backlog
// and the endpoints that need attention; choosing one narrows it all.
func TestConsole_ChartsStatisticsBacklogAndEndpointsNeedingAttention(t *testing.T) {
	s := heraldtest.Start(t)
	ok := heraldtest.NewReceiver(t, nil)
	down := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	s.CreateEndpoint(s.Token, map[string]any{"name": "Orders API", "url": ok.URL, "eventTypes": []string{"order.*"}})
	downID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "CRM sync", "url": down.URL, "eventTypes": []string{"contact.*"},
		"retryPolicy": map[string]any{"maxAttempts": 8, "initialDelay": "1h", "backoffMultiplier": 1, "maxDelay": "1h"}})

	p := openBrowser(t)
	p.axe = axeSource(t)
	p.openConsole(s.URL, s.Token)
	p.waitFor("the console to be live", consoleState+` === "live"`)
	p.waitFor("the statistics", `!document.getElementById("stats").hidden`)

	for i := range 12 {
		s.Publish(s.Token, "order.created", map[string]any{"n": i})
	}
	for i := range 3 {
		s.Publish(s.Token, "contact.created", map[string]any{"n": i})
	}
	ok.WaitRequests(t, 12, 10*time.Second)
	down.WaitRequests(t, 3, 10*time.Second)
	// The numbers move without a reload: 15 attempts, 12 of them good.
	p.waitFor("the chart to count every attempt", `document.getElementById("chart-volume").dataset.attempts === "15"`)
	p.waitFor("the success rate", `document.getElementById("tile-success").dataset.value === "0.8"`)
	var tiles map[string]string
	p.eval(`({success: document.getElementById("tile-success").textContent, deliveries: document.getElementById("tile-deliveries").textContent,
		latency: document.getElementById("tile-latency").textContent})`, &tiles)
	if tiles["success"] != "80.0%" || tiles["deliveries"] != "12 succeeded · 0 failed" || !strings.HasSuffix(tiles["latency"], " ms") {
		t.Errorf("tiles = %v", tiles)
	}
	if n := p.count(`#chart-volume canvas, #chart-success canvas, #chart-latency canvas`); n != 3 {
		t.Errorf("%d charts drawn, want 3", n)
	}
	// The failing endpoint's deliveries wait for their retries.
	p.waitFor("the backlog", `document.getElementById("tile-backlog").dataset.unfinished === "3"`)
	item := `#attention-list li[data-endpoint-id="` + downID + `"]`
	p.waitFor("the failing endpoint among those needing attention", `document.querySelector(`+js(item)+`)`)
	p.checkAccessibility("console, statistics")
	p.screenshot("console-statistics")

	p.click("the failing endpoint", item+` button`)
	p.waitFor("the statistics of that endpoint", `document.getElementById("stats-title").textContent === "CRM sync, last hour"`)
	p.waitFor("its own numbers", `document.getElementById("chart-volume").dataset.attempts === "3" && document.getElementById("tile-success").textContent === "0.0%"`)
	p.waitFor("its own backlog", `document.getElementById("tile-backlog").dataset.unfinished === "3"`)
	p.checkConsole()
}
