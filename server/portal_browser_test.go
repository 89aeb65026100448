package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/signing"
)

// The portal's browser tests open portal links as a platform's customer
// would, and check every screen with axe-core. HERALD_BROWSER_SCREENSHOTS=dir
// also saves a screenshot of each main screen there (portal-*.png).

// screenshot saves the page (or the element sel, when not "") as
// <name>.png in HERALD_BROWSER_SCREENSHOTS, if set.
func (p *browserPage) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("HERALD_BROWSER_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	p.t.Logf("screenshot: %s", file)
}

// axeSource is axe-core's browser bundle, installed by make testdeps.
func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "axe", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		msg := "accessibility checks need axe-core: run make testdeps (npm ci in server/testdata/axe)"
		if os.Getenv("HERALD_REQUIRE_BROWSER") == "1" || os.Getenv("HERALD_REQUIRE_NODE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return string(b)
}

// checkAccessibility runs axe-core on the page as it is and fails the test
// on serious or critical violations (WCAG 2.x A and AA rules, and axe's
// best practices).
func (p *browserPage) checkAccessibility(screen string) {
	p.t.Helper()
	var loaded bool
	p.eval(`typeof window.axe === "object"`, &loaded)
	if !loaded {
		// DevTools evaluation is not subject to the page's CSP.
		if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](p.axe+"\n;true")); err != nil {
			p.t.Fatalf("load axe-core: %v", err)
		}
	}
	raw, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]byte](`axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
		resultTypes: ["violations"],
	}).then(r => ({passed: r.passes.length, violations: r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary)}))}))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("axe-core on %s: %v", screen, err)
	}
	var res struct {
		Passed     int
		Violations []struct {
			ID, Impact, Help string
			Nodes            []string
		}
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		p.t.Fatalf("axe-core result %s: %v", raw, err)
	}
	if res.Passed < 5 {
		p.t.Errorf("axe-core checked only %d rules on %s: is it running?", res.Passed, screen)
	}
	for _, v := range res.Violations {
		p.t.Errorf("accessibility (%s): %s %s: %s\n\t%s", screen, v.Impact, v.ID, v.Help, strings.Join(v.Nodes, "\n\t"))
	}
}

// click clicks the element sel and fails the test if it is not there.
func (p *browserPage) click(what, sel string) {
	p.t.Helper()
	p.waitFor(what+" to be shown", `document.querySelector(`+js(sel)+`)`)
	p.do(what, chromedp.Click(chromedp.CSS(sel)))
}

// typeInto replaces the value of the input sel as a user would.
func (p *browserPage) typeInto(sel, text string) {
	p.t.Helper()
	p.eval(`(() => { const e = document.querySelector(`+js(sel)+`); e.focus(); e.select && e.select(); return true })()`, nil)
	p.do("type into "+sel, chromedp.KeyEvent("\b"), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// count returns how many elements sel matches.
func (p *browserPage) count(sel string) int {
	p.t.Helper()
	var n int
	p.eval(`document.querySelectorAll(`+js(sel)+`).length`, &n)
	return n
}

// openPortal opens a portal link in a new browser.
func openPortal(t *testing.T, url string) *browserPage {
	t.Helper()
	p := openBrowser(t)
	p.axe = axeSource(t)
	p.do("open the portal", chromedp.Navigate(url))
	return p
}

func TestPortal_CustomerManagesEndpointsAndWatchesDeliveries(t *testing.T) {
	s := heraldtest.Start(t)
	var status atomic.Int32
	status.Store(http.StatusOK)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(status.Load()))
		fmt.Fprintf(w, `{"received":true,"status":%d}`, status.Load())
	})
	appKey, _ := newKey(t, s, "platform backend")
	s.As(t, appKey).Must(nil, `mutation { updatePortalSettings(input: {displayName: "Acme Webhooks", accentColor: "#1f5fbf"}) { id } }`, nil)
	sess := portalSession(t, s, appKey, map[string]any{"name": "Customer 42"})

	p := openPortal(t, sess.URL)
	p.waitFor("the portal", `document.querySelector("[data-testid=app-name]")`)
	var name, hash string
	p.eval(`document.querySelector("[data-testid=app-name]").textContent`, &name)
	p.eval(`location.hash`, &hash)
	if name != "Acme Webhooks" || hash != "" {
		t.Errorf("app name %q, location.hash %q: want the display name and no token left in the address bar", name, hash)
	}
	var accent string
	p.eval(`getComputedStyle(document.querySelector("[data-testid=add-endpoint]") || document.body).backgroundColor`, &accent)
	if accent != "rgb(31, 95, 191)" {
		t.Errorf("the primary button's colour is %s, want the app's accent #1f5fbf", accent)
	}
	p.waitFor("the empty list", `document.querySelector("[data-testid=no-endpoints]")`)
	p.checkAccessibility("endpoints, empty")

	// A field-level error appears under its field.
	p.click("Add endpoint", `[data-testid=add-endpoint]`)
	p.waitFor("the form", `document.querySelector("[data-testid=endpoint-form] [data-testid=url]")`)
	p.typeInto(`[data-testid=endpoint-form] [data-testid=url]`, "ftp://example.com/hook")
	p.typeInto(`[data-testid=endpoint-form] [data-testid=name]`, "Orders")
	p.click("check an event type", `[data-testid="type-order.created"]`)
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the URL's error", `(() => { const f = document.querySelector("[data-testid=endpoint-form] [data-testid=url]");
		return f.getAttribute("aria-invalid") === "true" && f.closest(".field").querySelector("[data-testid=field-error]") })()`)
	var urlErr string
	p.eval(`document.querySelector("[data-testid=endpoint-form] [data-testid=url]").closest(".field").querySelector("[data-testid=field-error]").textContent`, &urlErr)
	if !strings.Contains(urlErr, "http") || strings.HasPrefix(urlErr, "input.") {
		t.Errorf("the URL field's error is %q: want a message a person can act on", urlErr)
	}
	p.checkAccessibility("endpoint form with an error")
	p.eval(`document.querySelector("dialog[open]").scrollTop = 0`, nil)
	p.screenshot("portal-endpoint-form")

	// Create the endpoint against the local receiver.
	p.typeInto(`[data-testid=endpoint-form] [data-testid=url]`, rc.Hook("/webhooks"))
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the secret", `document.querySelector("[data-testid=secret-dialog] [data-testid=secret]")`)
	var secret string
	p.eval(`document.querySelector("[data-testid=secret]").value`, &secret)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret shown: %q", secret)
	}
	// Copy it, as a user with clipboard access would.
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(p.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm, AllowWithoutSanitization: true}, Setting: "granted", Origin: s.URL,
		}); err != nil {
			t.Fatalf("grant %s: %v", perm, err)
		}
	}
	p.click("copy", `[data-testid=copy-secret]`)
	p.waitFor("the copy confirmation", `document.querySelector("[data-testid=copy-status]").textContent.includes("Copied")`)
	var copied string
	if err := chromedp.Do(p.ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		copied = v
		return err
	})); err != nil {
		t.Fatalf("read the clipboard: %v", err)
	}
	if copied != secret {
		t.Errorf("clipboard holds %q, want the secret %q", copied, secret)
	}
	p.checkAccessibility("secret dialog")
	p.screenshot("portal-secret")
	p.click("close the secret", `[data-testid=secret-done]`)
	p.waitFor("the endpoint in the list", `document.querySelectorAll("[data-testid=endpoint]").length === 1`)

	// Send a test event; the receiver gets it signed with the copied secret.
	p.click("Send test", `[data-testid=endpoint] [data-testid=send-test]`)
	p.click("send the test", `[data-testid=send-test-now]`)
	p.waitFor("the test result", `document.querySelector("[data-testid=test-result]")`)
	var delivered, result string
	p.eval(`document.querySelector("[data-testid=test-result]").dataset.delivered`, &delivered)
	p.eval(`document.querySelector("[data-testid=test-result]").textContent`, &result)
	if delivered != "true" || !strings.Contains(result, "HTTP 200") || !strings.Contains(result, `"received": true`) {
		t.Errorf("test result: delivered %s, %q", delivered, result)
	}
	reqs := rc.WaitRequests(t, 1, 5*time.Second)
	if err := signing.Verify(secret, reqs[0].Header, reqs[0].Body, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("the test event does not verify with the copied secret: %v", err)
	}
	p.checkAccessibility("test dialog")
	p.screenshot("portal-test-event")
	p.do("close the dialog", chromedp.KeyEvent("\x1b"))
	p.waitFor("the dialog to close", `!document.querySelector("dialog[open]")`)
	p.screenshot("portal-endpoints")

	// Deliveries: a published event's delivery appears live.
	p.click("Deliveries", `[data-testid=tab-deliveries]`)
	p.waitFor("the live feed", `document.querySelector("[data-testid=live-state]").dataset.state === "live"`)
	waitSubscribed(t, s, 1)
	ok := s.Publish(appKey, "order.created", map[string]any{"orderId": "ord_1"})
	okRow := p.deliveryRow(s, appKey, ok)
	p.waitFor("the delivery to succeed live", okRow+`.dataset.status === "SUCCEEDED"`)

	// A failed delivery: open its attempt, then retry it. (400 is a
	// permanent failure; 410 would also disable the endpoint.)
	status.Store(http.StatusBadRequest)
	bad := s.Publish(appKey, "order.created", map[string]any{"orderId": "ord_2"})
	badRow := p.deliveryRow(s, appKey, bad)
	p.waitFor("the delivery to fail live", badRow+`.dataset.status === "FAILED" && `+badRow+`.querySelector("[data-col=code]").textContent === "400"`)
	p.checkAccessibility("deliveries")
	p.screenshot("portal-deliveries")
	p.do("open the failed delivery", chromedp.Click(chromedp.CSS(`tr[data-delivery-id="`+deliveryID(t, s, appKey, bad)+`"] [data-testid=details]`)))
	p.waitFor("the attempt", `document.querySelector("[data-testid=attempt-detail]")`)
	var detail string
	p.eval(`document.querySelector("[data-testid=delivery-detail]").innerText`, &detail)
	for _, want := range []string{"http 400", "webhook-signature\tv1,", `"orderid": "ord_2"`, `"status": 400`, "post " + rc.Hook("/webhooks")} {
		if !strings.Contains(strings.ToLower(detail), want) {
			t.Errorf("attempt detail lacks %q:\n%s", want, detail)
		}
	}
	p.checkAccessibility("attempt detail")
	p.screenshot("portal-attempt")
	status.Store(http.StatusOK)
	p.click("Retry now", `[data-testid=retry-detail]`)
	p.do("close the detail", chromedp.KeyEvent("\x1b"))
	p.waitFor("the retried delivery to succeed live", badRow+`.dataset.status === "SUCCEEDED" && `+badRow+`.querySelector("[data-col=attempts]").textContent === "2"`)

	// Replay since a time.
	p.click("Replay", `[data-testid=replay]`)
	p.eval(`(() => { const s = document.querySelector("[data-testid=replay-dialog] select:not([data-testid])"); s.value = "SUCCEEDED";
		s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, nil)
	p.click("confirm the replay", `[data-testid=replay-dialog] [data-testid=confirm]`)
	// The test event, the first and the retried delivery.
	p.waitFor("the replay's count", `((document.querySelector("[data-testid=deliveries-info]") || {}).textContent || "").includes("3 deliveries were queued again.")`)
	rc.WaitRequests(t, 1+1+2+3, 10*time.Second)

	// The catalog.
	p.click("Event catalog", `[data-testid=tab-catalog]`)
	p.waitFor("the catalog", `document.querySelector("[data-testid=event-type][data-name='order.created']")`)
	p.checkAccessibility("catalog")
	p.screenshot("portal-catalog")
	p.checkConsole()
}

// deliveryID returns the ID of the only delivery of an event.
func deliveryID(t *testing.T, s *heraldtest.Server, token, eventID string) string {
	t.Helper()
	var ds []heraldtest.Delivery
	if !heraldtest.Eventually(5*time.Second, func() bool { ds = s.Deliveries(token, eventID); return len(ds) == 1 }) {
		t.Fatalf("event %s has %d deliveries", eventID, len(ds))
	}
	return ds[0].ID
}

// deliveryRow waits for the row of an event's delivery and returns a
// JavaScript expression for it.
func (p *browserPage) deliveryRow(s *heraldtest.Server, token, eventID string) string {
	p.t.Helper()
	row := `document.querySelector('tr[data-delivery-id="` + deliveryID(p.t, s, token, eventID) + `"]')`
	p.waitFor("the delivery's row", row)
	return row
}

func TestPortal_ReadOnlySessionShowsNoMutatingControls(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "Orders", "url": rc.URL})
	ev := s.Publish(s.Token, "order.created", map[string]any{})
	s.WaitDelivery(s.Token, ev, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	sess := portalSession(t, s, s.Token, map[string]any{"readOnly": true})
	s.Do(s.Token, `mutation { updatePortalSettings(input: {theme: DARK}) { id } }`, nil).Decode(t, nil)

	p := openPortal(t, sess.URL)
	p.waitFor("the endpoint", `document.querySelector("[data-testid=endpoint]")`)
	if p.count(`[data-testid=read-only]`) != 1 {
		t.Error("the portal does not say it is read only")
	}
	mutating := `[data-testid=add-endpoint], [data-testid=edit], [data-testid=delete], [data-testid=toggle], [data-testid=rotate], [data-testid=send-test], [data-testid=retry], [data-testid=retry-detail], [data-testid=replay]`
	if n := p.count(mutating); n != 0 {
		t.Errorf("a read-only session sees %d mutating controls on Endpoints", n)
	}
	var theme string
	p.eval(`document.documentElement.dataset.theme + " " + getComputedStyle(document.documentElement).backgroundColor`, &theme)
	if theme != "dark rgb(18, 20, 24)" {
		t.Errorf("theme %q, want the app's dark theme", theme)
	}
	p.checkAccessibility("endpoints, read only, dark")
	p.screenshot("portal-read-only")
	p.click("Deliveries", `[data-testid=tab-deliveries]`)
	p.waitFor("the failed delivery", `document.querySelector('tr[data-status="FAILED"]')`)
	p.click("Details", `[data-testid=details]`)
	p.waitFor("the attempt", `document.querySelector("[data-testid=attempt-detail]")`)
	if n := p.count(mutating); n != 0 {
		t.Errorf("a read-only session sees %d mutating controls on Deliveries", n)
	}
	// The API refuses what the page does not offer.
	for name, doc := range map[string]string{
		"updateEndpoint": `mutation { updateEndpoint(id: "` + epID + `", input: {isActive: false}) { id } }`,
		"testEndpoint":   `mutation { testEndpoint(id: "` + epID + `") { delivered } }`,
		"retryDelivery":  `mutation { retryDelivery(id: "` + deliveryID(t, s, s.Token, ev) + `") { id } }`,
	} {
		r := s.Do(sess.Token, doc, nil)
		if !refusedByScope(r.Errors) {
			t.Errorf("%s with a read-only portal token: %s", name, r.Body)
		}
	}
	p.checkConsole()
}

func TestPortal_ExpiredOrRevokedLinkGetsAClearPage(t *testing.T) {
	s := heraldtest.Start(t)

	t.Run("expired", func(t *testing.T) {
		sess := portalSession(t, s, s.Token, map[string]any{"expiresIn": "1s"})
		if !heraldtest.Eventually(10*time.Second, func() bool { return s.Do(sess.Token, `{ viewer { isAdmin } }`, nil).Reason() == "EXPIRED" }) {
			t.Fatal("the session did not expire")
		}
		p := openPortal(t, sess.URL)
		p.waitFor("the ended page", `document.querySelector("[data-testid=session-ended]")`)
		var reason, text string
		p.eval(`document.querySelector("[data-testid=session-ended]").dataset.reason`, &reason)
		p.eval(`document.body.innerText`, &text)
		if reason != "EXPIRED" || !strings.Contains(text, "This link has expired") || !strings.Contains(text, "open it again") {
			t.Errorf("expired link: reason %q, page %q", reason, text)
		}
		p.checkAccessibility("expired link")
		p.screenshot("portal-expired")
	})

	t.Run("revoked while open", func(t *testing.T) {
		sess := portalSession(t, s, s.Token, map[string]any{})
		p := openPortal(t, sess.URL)
		p.click("Deliveries", `[data-testid=tab-deliveries]`)
		p.waitFor("the live feed", `document.querySelector("[data-testid=live-state]").dataset.state === "live"`)
		s.Do(s.Token, `mutation($id: ID!) { revokePortalSession(id: $id) { id } }`, map[string]any{"id": sess.APIKey.ID}).Decode(t, nil)
		p.waitFor("the ended page", `document.querySelector("[data-testid=session-ended]")`)
		var reason string
		p.eval(`document.querySelector("[data-testid=session-ended]").dataset.reason`, &reason)
		if reason != "REVOKED" {
			t.Errorf("revoked link: reason %q", reason)
		}
	})

	t.Run("without a token", func(t *testing.T) {
		p := openPortal(t, s.URL+"/portal/"+s.AppID)
		p.waitFor("the ended page", `document.querySelector("[data-testid=session-ended][data-reason=MISSING]")`)
	})
}

func TestPortal_FramingOnlyFromAllowedOrigins(t *testing.T) {
	s := heraldtest.Start(t)
	sess := portalSession(t, s, s.Token, map[string]any{})
	// The platform's site, on another origin, embeds the portal.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Acme settings</title><h1>Acme: webhook settings</h1>
			<iframe title="Webhooks" src=%q style="width:1200px;height:700px;border:1px solid #ccc"></iframe>`, sess.URL)
	}))
	t.Cleanup(site.Close)

	frameURL := func(p *browserPage) string {
		var u string
		if err := chromedp.Do(p.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			res, err := cdp.Call(ctx, tg, page.GetFrameTree, cdp.Empty{})
			if err != nil {
				return err
			}
			if len(res.FrameTree.ChildFrames) == 1 {
				u = res.FrameTree.ChildFrames[0].Frame.URL
			}
			return nil
		})); err != nil {
			t.Fatalf("frame tree: %v", err)
		}
		return u
	}
	portalPath := regexp.MustCompile(`/portal/` + regexp.QuoteMeta(s.AppID) + `$`)

	// Not allowed: the browser refuses to show the portal in the frame.
	p := openBrowser(t)
	p.do("open the platform's site", chromedp.Navigate(site.URL))
	p.waitFor("the frame", `document.querySelector("iframe")`)
	var u string
	if !heraldtest.Eventually(5*time.Second, func() bool { u = frameURL(p); return u != "" && u != "about:blank" }) || portalPath.MatchString(u) {
		t.Errorf("the portal loaded in a frame of %s, which is not allowed (frame at %q)", site.URL, u)
	}
	t.Logf("frame of a site that is not allowed: %s", u)

	// Allowed: it shows.
	s.Do(s.Token, `mutation($o: [String!]) { updatePortalSettings(input: {allowedOrigins: $o}) { id } }`,
		map[string]any{"o": []string{site.URL}}).Decode(t, nil)
	p2 := openBrowser(t)
	p2.do("open the platform's site", chromedp.Navigate(site.URL))
	if !heraldtest.Eventually(10*time.Second, func() bool { u = frameURL(p2); return portalPath.MatchString(u) }) {
		t.Fatalf("the portal did not load in a frame of an allowed origin (frame at %q)", u)
	}
	// The portal runs in the frame: it opens its live feed.
	if !heraldtest.Eventually(10*time.Second, func() bool { _, subs := s.LiveStats(); return subs >= 1 }) {
		t.Error("the framed portal did not start")
	}
	p2.screenshot("portal-embedded")
}

// A customer sees an endpoint that asked Herald to wait, tries a payload
// filter on recent events (a wrong one is explained), and sets the filter,
// a rate limit and ordering.
func TestPortal_CustomerSetsFlowControlsAndSeesThePace(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "Orders", "url": rc.URL,
		"retryPolicy": map[string]any{"maxAttempts": 5, "initialDelay": "5s", "backoffMultiplier": 2, "maxDelay": "1h"}})
	for _, total := range []int{50, 150, 250} {
		s.Publish(s.Token, "order.created", map[string]any{"total": total})
	}
	rc.WaitRequests(t, 1, 10*time.Second)
	sess := portalSession(t, s, s.Token, map[string]any{"name": "Customer 7"})

	p := openPortal(t, sess.URL)
	p.waitFor("the endpoint to show its pause", `(document.querySelector("[data-testid=pace]") || {dataset: {}}).dataset.state === "paused"`)
	var paceText string
	p.eval(`document.querySelector("[data-testid=pace]").textContent`, &paceText)
	if !strings.HasPrefix(paceText, "Paused until") {
		t.Errorf("pace %q, want the pause the endpoint asked for", paceText)
	}

	p.click("Edit", `[data-testid=endpoint] [data-testid=edit]`)
	p.click("the controls", `[data-testid=endpoint-form] [data-testid=controls] summary`)
	p.typeInto(`[data-testid=filter]`, `{"data.total": {"$gtx": 100}}`)
	p.click("Try it", `[data-testid=try-filter]`)
	p.waitFor("the filter's error", `document.querySelector("[data-testid=filter-result]").textContent.includes("$gtx")`)
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the error under the filter", `(() => { const f = document.querySelector("[data-testid=filter]").closest(".field");
		const e = f && f.querySelector("[data-testid=field-error]"); return e && e.textContent.includes("unknown") })()`)

	p.typeInto(`[data-testid=filter]`, `{"data.total": {"$gte": 100}}`)
	p.click("Try it", `[data-testid=try-filter]`)
	p.waitFor("the filter's matches", `document.querySelector("[data-testid=filter-result]").textContent === "Matches 2 of the latest 3 events."`)
	p.typeInto(`[data-testid=limit-requests]`, "5")
	p.eval(`(() => { const s = document.querySelector("[data-testid=ordering]"); s.value = "KEY"; s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, nil)
	p.checkAccessibility("endpoint form, flow controls")
	p.screenshot("portal-flow-controls")
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the dialog to close", `!document.querySelector("dialog[open]")`)
	p.waitFor("the endpoint's controls", `document.querySelector("[data-testid=filtered]") && document.querySelector("[data-testid=ordering]")`)

	var ep struct {
		Node struct {
			Filter    json.RawMessage
			Ordering  string
			RateLimit *struct {
				Requests int
				Per      string
			}
		}
	}
	s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Endpoint { filter ordering rateLimit { requests per } } } }`, map[string]any{"id": epID}).Decode(t, &ep)
	if string(ep.Node.Filter) != `{"data.total":{"$gte":100}}` || ep.Node.Ordering != "KEY" || ep.Node.RateLimit == nil || ep.Node.RateLimit.Requests != 5 || ep.Node.RateLimit.Per != "1s" {
		t.Errorf("endpoint after saving = filter %s, ordering %s, rate limit %+v", ep.Node.Filter, ep.Node.Ordering, ep.Node.RateLimit)
	}
	p.checkConsole()
}
