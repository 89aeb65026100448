package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
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

// closeDialog closes the open dialog with Escape, as a person would, once
// it is open (a dialog's contents are in the page a moment before it is
// shown modally, and Escape before then closes nothing), and waits until
// it is gone.
func (p *browserPage) closeDialog(what string) {
	p.t.Helper()
	p.waitFor(what+" to be open", `document.querySelector("dialog[open]")`)
	p.do("close "+what, chromedp.KeyEvent("\x1b"))
	p.waitFor(what+" to close", `!document.querySelector("dialog[open]")`)
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

// grantClipboard lets the page read and write the clipboard, as a user
// who allowed it would.
func (p *browserPage) grantClipboard(origin string) {
	p.t.Helper()
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(p.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm, AllowWithoutSanitization: true}, Setting: "granted", Origin: origin,
		}); err != nil {
			p.t.Fatalf("grant %s: %v", perm, err)
		}
	}
}

// clipboard returns the text on the clipboard.
func (p *browserPage) clipboard() string {
	p.t.Helper()
	var text string
	if err := chromedp.Do(p.ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		text = v
		return err
	})); err != nil {
		p.t.Fatalf("read the clipboard: %v", err)
	}
	return text
}

// setSelect chooses value in the select sel as a user would.
func (p *browserPage) setSelect(sel, value string) {
	p.t.Helper()
	p.eval(`(() => { const s = document.querySelector(`+js(sel)+`); s.value = `+js(value)+`;
		s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, nil)
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
	p.eval(`getComputedStyle(document.querySelector("[data-testid=add-endpoint]")).backgroundColor`, &accent)
	if accent != "rgb(31, 95, 191)" {
		t.Errorf("the primary button's colour is %s, want the app's accent #1f5fbf", accent)
	}
	p.waitFor("the empty list", `document.querySelector("[data-testid=no-endpoints]")`)
	p.checkScreen("portal-endpoints-empty", true)

	// Create an endpoint against the local receiver.
	p.click("Add endpoint", `[data-testid=add-endpoint]`)
	p.typeInto(`[data-testid=endpoint-form] [data-testid=url]`, rc.Hook("/webhooks"))
	p.typeInto(`[data-testid=endpoint-form] [data-testid=name]`, "Orders")
	p.click("check an event type", `[data-testid="type-order.created"]`)
	p.checkScreen("portal-endpoint-form", true)
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the secret", `document.querySelector("[data-testid=secret-dialog] [data-testid=secret]")`)
	var secret string
	p.eval(`document.querySelector("[data-testid=secret]").value`, &secret)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret shown: %q", secret)
	}
	p.grantClipboard(s.URL)
	p.click("copy", `[data-testid=copy-secret]`)
	p.waitFor("the copy confirmation", `document.querySelector("[data-testid=copy-status]").textContent.includes("Copied")`)
	if copied := p.clipboard(); copied != secret {
		t.Errorf("clipboard holds %q, want the secret %q", copied, secret)
	}
	p.checkScreen("portal-secret", true)
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
	p.checkScreen("portal-test-event", true)
	p.closeDialog("the dialog")

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
	p.checkScreen("portal-deliveries", true)
	p.do("open the failed delivery", chromedp.Click(chromedp.CSS(`tr[data-delivery-id="`+deliveryID(t, s, appKey, bad)+`"] [data-testid=details]`)))
	p.waitFor("the attempt", `document.querySelector("[data-testid=attempt-detail]")`)
	var detail string
	p.eval(`document.querySelector("[data-testid=delivery-detail]").innerText`, &detail)
	for _, want := range []string{"http 400", "webhook-signature\tv1,", `"orderid": "ord_2"`, `"status": 400`, "post " + rc.Hook("/webhooks")} {
		if !strings.Contains(strings.ToLower(detail), want) {
			t.Errorf("attempt detail lacks %q:\n%s", want, detail)
		}
	}
	p.checkScreen("portal-attempt", true)
	status.Store(http.StatusOK)
	p.click("Retry now", `[data-testid=retry-detail]`)
	p.closeDialog("the detail")
	p.waitFor("the retried delivery to succeed live", badRow+`.dataset.status === "SUCCEEDED" && `+badRow+`.querySelector("[data-col=attempts]").textContent === "2"`)

	// Replay since a time.
	p.click("Replay", `[data-testid=replay]`)
	p.setSelect(`[data-testid=replay-status]`, "SUCCEEDED")
	p.checkScreen("portal-replay", true)
	p.click("confirm the replay", `[data-testid=replay-dialog] [data-testid=confirm]`)
	// The test event, the first and the retried delivery.
	p.waitFor("the replay's count", `((document.querySelector("[data-testid=deliveries-info]") || {}).textContent || "").includes("3 deliveries queued again.")`)
	rc.WaitRequests(t, 1+1+2+3, 10*time.Second)

	// The catalog, grouped and searchable.
	p.click("Event catalog", `[data-testid=tab-catalog]`)
	p.waitFor("the catalog", `document.querySelector("[data-testid=event-type][data-name='order.created']")`)
	p.checkScreen("portal-catalog", true)
	p.typeInto(`[data-testid=catalog-search]`, "contact")
	p.waitFor("only contact types", `document.querySelectorAll("[data-testid=catalog-group]").length === 1 && document.querySelector("[data-testid=catalog-group][data-prefix=contact]")`)
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

func TestPortal_ReloadKeepsTheSessionAndAPastedLinkReplacesIt(t *testing.T) {
	s := heraldtest.Start(t)
	sess := portalSession(t, s, s.Token, map[string]any{"name": "Customer 1"})
	p := openPortal(t, sess.URL)
	p.waitFor("the portal", `document.querySelector("[data-testid=app-name]")`)
	p.do("reload", chromedp.Reload())
	p.waitFor("the portal after a reload", `document.querySelector("[data-testid=app-name]")`)
	var url string
	var local int
	p.eval(`location.href`, &url)
	p.eval(`localStorage.length`, &local)
	if strings.Contains(url, "token") || strings.Contains(url, "hrld_") || local != 0 {
		t.Errorf("after a reload: URL %q, %d items in localStorage: the token must stay out of both", url, local)
	}
	if p.count(`[data-testid=read-only]`) != 0 {
		t.Fatal("the first session is not read only")
	}

	// A new link pasted into the open portal takes its place.
	ro := portalSession(t, s, s.Token, map[string]any{"readOnly": true})
	_, frag, _ := strings.Cut(ro.URL, "#")
	p.eval(`(location.hash = `+js("#"+frag)+`, true)`, nil)
	p.waitFor("the read-only session", `document.querySelector("[data-testid=read-only]")`)
	p.eval(`location.href`, &url)
	if strings.Contains(url, "token") {
		t.Errorf("the pasted link's token stayed in the address bar: %s", url)
	}
	p.do("reload", chromedp.Reload())
	p.waitFor("the read-only session after a reload", `document.querySelector("[data-testid=read-only]")`)

	// A cut link says so, even with a session open in the tab.
	p.eval(`(location.hash = "#token=hrld_abc", true)`, nil)
	p.waitFor("the incomplete link's page", `document.querySelector("[data-testid=session-ended][data-reason=INCOMPLETE]")`)
	p.checkScreen("portal-link-incomplete", true)
	p.checkConsole()
}

func TestPortal_PagesThroughAllHistoryAndSearchesByEventID(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"name": "Orders", "url": rc.URL})
	var events []string
	for batch := range 3 {
		in := make([]map[string]any, 100)
		for i := range in {
			in[i] = map[string]any{"eventType": "order.created", "payload": map[string]any{"n": batch*100 + i}}
		}
		var out struct{ PublishEvents []struct{ ID string } }
		s.Do(s.Token, `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, &out)
		for _, e := range out.PublishEvents {
			events = append(events, e.ID)
		}
	}
	rc.WaitRequests(t, 300, 30*time.Second)
	sess := portalSession(t, s, s.Token, map[string]any{})

	p := openPortal(t, sess.URL)
	p.click("Deliveries", `[data-testid=tab-deliveries]`)
	rows := `document.querySelectorAll("[data-testid=deliveries] tbody tr")`
	first := func() string {
		var id string
		p.eval(rows+`[0].dataset.eventId`, &id)
		return id
	}
	last := func() string {
		var id string
		p.eval(`(r => r[r.length - 1].dataset.eventId)(`+rows+`)`, &id)
		return id
	}
	p.waitFor("the newest page", rows+`.length === 50 && `+rows+`[0].dataset.eventId === `+js(events[299]))
	var total string
	p.eval(`document.querySelector("[data-testid=page-total]").textContent`, &total)
	if total != "300 deliveries" {
		t.Errorf("total %q", total)
	}
	p.click("Older", `[data-testid=page-older]`)
	p.waitFor("the second page", rows+`.length === 50 && `+rows+`[0].dataset.eventId === `+js(events[249]))
	p.click("Oldest", `[data-testid=page-oldest]`)
	p.waitFor("the oldest page", rows+`.length === 50 && `+rows+`[0].dataset.eventId === `+js(events[49]))
	if got := last(); got != events[0] {
		t.Errorf("the oldest page ends with %s, want the first event %s", got, events[0])
	}
	var olderOff bool
	p.eval(`document.querySelector("[data-testid=page-older]").disabled && document.querySelector("[data-testid=page-oldest]").disabled`, &olderOff)
	if !olderOff {
		t.Error("Older is offered on the oldest page")
	}
	p.checkScreen("portal-deliveries-oldest", true)
	p.click("Newer", `[data-testid=page-newer]`)
	p.waitFor("the page after the oldest", rows+`.length === 50 && `+rows+`[0].dataset.eventId === `+js(events[99]))
	if got := last(); got != events[50] {
		t.Errorf("the page after the oldest ends with %s, want %s", got, events[50])
	}
	p.click("Newest", `[data-testid=page-newest]`)
	p.waitFor("the newest page again", rows+`[0].dataset.eventId === `+js(events[299]))

	// Search by event ID finds one of the oldest.
	p.typeInto(`[data-testid=search]`, events[7]+"\n")
	p.waitFor("the event's delivery", rows+`.length === 1`)
	if got := first(); got != events[7] {
		t.Errorf("search found %s, want %s", got, events[7])
	}
	// A time range with nothing in it.
	p.typeInto(`[data-testid=search]`, "\n")
	p.waitFor("all of them again", rows+`.length === 50`)
	p.eval(`(() => { const i = document.querySelector("[data-testid=filter-to]");
		const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
		set.call(i, "2001-01-01T00:00"); i.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, nil)
	p.waitFor("nothing before 2001", `document.querySelector("[data-testid=no-deliveries]")`)
	p.checkConsole()
}

func TestPortal_BulkRetryOfSelectedFailedDeliveries(t *testing.T) {
	s := heraldtest.Start(t)
	var status atomic.Int32
	status.Store(http.StatusBadRequest)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) })
	s.CreateEndpoint(s.Token, map[string]any{"name": "Orders", "url": rc.URL})
	var evs []string
	for i := range 3 {
		ev := s.Publish(s.Token, "order.created", map[string]any{"n": i})
		s.WaitDelivery(s.Token, ev, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
		evs = append(evs, ev)
	}
	status.Store(http.StatusOK)
	sess := portalSession(t, s, s.Token, map[string]any{})
	p := openPortal(t, sess.URL)
	p.click("Deliveries", `[data-testid=tab-deliveries]`)
	p.waitFor("three failed deliveries", `document.querySelectorAll("[data-testid=select]").length === 3`)
	for _, ev := range evs[:2] {
		p.click("select", `tr[data-event-id="`+ev+`"] [data-testid=select]`)
	}
	p.checkScreen("portal-bulk-retry", true)
	p.click("Retry selected", `[data-testid=retry-selected]`)
	p.waitFor("the count", `((document.querySelector("[data-testid=deliveries-info]") || {}).textContent || "").includes("2 deliveries queued again.")`)
	for _, ev := range evs[:2] {
		p.waitFor("the retried delivery to succeed", `document.querySelector('tr[data-event-id="`+ev+`"]').dataset.status === "SUCCEEDED"`)
	}
	if d := s.Deliveries(s.Token, evs[2]); d[0].Status != "FAILED" || d[0].AttemptCount != 1 {
		t.Errorf("the delivery not selected: %+v", d[0])
	}
	p.checkConsole()
}

// The endpoint's statistics charts show the numbers the API has.
func TestPortal_StatsChartsAgreeWithTheAPI(t *testing.T) {
	s := heraldtest.Start(t)
	var n atomic.Int32
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%4 == 0 {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "Orders", "url": rc.URL})
	for i := range 12 {
		s.Publish(s.Token, "order.created", map[string]any{"n": i})
	}
	rc.WaitRequests(t, 12, 10*time.Second)
	var api struct {
		Node struct {
			Stats struct {
				Total struct {
					SuccessRate, DeliverySuccessRate *float64
					Attempts                         struct{ Total int }
					Deliveries                       struct{ Total int }
				}
			}
		}
	}
	if !heraldtest.Eventually(10*time.Second, func() bool {
		s.As(t, s.Token).Must(&api, `query($id: ID!) { node(id: $id) { ... on Endpoint { stats(window: "24h", bucket: "1h") {
			total { successRate deliverySuccessRate attempts { total } deliveries { total } } } } } }`, map[string]any{"id": epID})
		return api.Node.Stats.Total.Deliveries.Total == 12
	}) {
		t.Fatalf("the API counts %+v", api.Node.Stats.Total)
	}
	want := api.Node.Stats.Total
	if want.DeliverySuccessRate == nil || *want.DeliverySuccessRate != 0.75 {
		t.Fatalf("the API's delivery success rate %v, want 9 of 12", want.DeliverySuccessRate)
	}
	sess := portalSession(t, s, s.Token, map[string]any{})
	p := openPortal(t, sess.URL)
	p.waitFor("the endpoint's rate", `(document.querySelector("[data-testid=success-rate]") || {dataset: {}}).dataset.total === "12"`)
	var row map[string]string
	p.eval(`(e => ({value: e.dataset.value, text: e.textContent}))(document.querySelector("[data-testid=success-rate]"))`, &row)
	if row["value"] != "0.75" || row["text"] != "75.0% of 12 webhooks" {
		t.Errorf("the list shows %v, want the API's 0.75 of 12", row)
	}
	p.click("Statistics", `[data-testid=show-stats]`)
	p.waitFor("the charts", `document.querySelectorAll("[data-testid=endpoint-stats] canvas").length === 3`)
	var tiles map[string]string
	p.eval(`(s => ({attempts: s.dataset.attempts, delivered: s.querySelector("[data-testid=tile-delivered]").dataset.value,
		success: s.querySelector("[data-testid=tile-success]").dataset.value}))(document.querySelector("[data-testid=endpoint-stats]"))`, &tiles)
	if tiles["attempts"] != fmt.Sprint(want.Attempts.Total) || tiles["delivered"] != fmt.Sprint(*want.DeliverySuccessRate) ||
		tiles["success"] != fmt.Sprint(*want.SuccessRate) {
		t.Errorf("the charts show %v, the API %+v", tiles, want)
	}
	p.checkScreen("portal-statistics", true)
	p.checkConsole()
}

// A form with three mistakes shows all three at their fields after one
// submit, focused on the first; a duplicate is explained with the control
// it names; a wildcard subscription is created and shown.
func TestPortal_FormShowsEveryErrorAtOnceAndWildcardsWork(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	sess := portalSession(t, s, s.Token, map[string]any{})
	p := openPortal(t, sess.URL)
	p.click("Add endpoint", `[data-testid=add-endpoint]`)
	form := `[data-testid=endpoint-form] `
	p.typeInto(form+`[data-testid=url]`, "ftp://example.com/hook")
	p.typeInto(form+`[data-testid=name]`, "x")
	p.click("all order events", `[data-testid="type-order.*"]`)
	p.click("open the advanced section", form+`details.advanced summary`)
	p.typeInto(form+`[data-testid=timeout]`, "31s")
	p.click("save", `[data-testid=save-endpoint]`)
	invalid := form + `[aria-invalid=true]`
	p.waitFor("three errors", `document.querySelectorAll(`+js(invalid)+`).length === 3`)
	var errs map[string]string
	p.eval(`Object.fromEntries(Array.from(document.querySelectorAll(`+js(invalid)+`), e =>
		[e.dataset.testid, e.closest(".field").querySelector("[data-testid=field-error]").textContent]))`, &errs)
	if len(errs) != 3 || errs["url"] == "" || errs["name"] == "" || errs["timeout"] == "" {
		t.Errorf("errors at the fields: %v", errs)
	}
	p.waitFor("the focus on the first invalid field (url)", `document.activeElement === document.querySelector(`+js(form+`[data-testid=url]`)+`)`)
	p.checkScreen("portal-form-errors", true)
	p.typeInto(form+`[data-testid=url]`, rc.Hook("/orders"))
	p.typeInto(form+`[data-testid=name]`, "Orders")
	p.typeInto(form+`[data-testid=timeout]`, "10s")
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the secret", `document.querySelector("[data-testid=secret]")`)
	p.click("done", `[data-testid=secret-done]`)
	p.waitFor("the wildcard subscription shown", `(c => c && c.textContent === "All order events")(document.querySelector("[data-testid=endpoint] [data-pattern='order.*']"))`)
	var eps struct {
		Endpoints struct {
			Edges []struct{ Node struct{ EventTypes []string } }
		}
	}
	s.As(t, s.Token).Must(&eps, `{ endpoints { edges { node { eventTypes } } } }`, nil)
	if len(eps.Endpoints.Edges) != 1 || !slices.Equal(eps.Endpoints.Edges[0].Node.EventTypes, []string{"order.*"}) {
		t.Errorf("endpoints %+v, want one subscribed to order.*", eps.Endpoints.Edges)
	}

	// The same URL and events again: the duplicate is explained, and the
	// control it names is there.
	p.click("Add endpoint", `[data-testid=add-endpoint]`)
	p.typeInto(form+`[data-testid=url]`, rc.Hook("/orders"))
	p.typeInto(form+`[data-testid=name]`, "Orders again")
	p.click("order.created", `[data-testid="type-order.created"]`)
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the duplicate explained", `document.querySelector("[data-testid=duplicate]")`)
	var dup string
	p.eval(`document.querySelector("[data-testid=duplicate]").textContent`, &dup)
	if !strings.Contains(dup, "Orders") || !strings.Contains(dup, "twice") {
		t.Errorf("duplicate explained as %q", dup)
	}
	p.checkScreen("portal-duplicate", true)
	p.click("allow the duplicate", `[data-testid=allow-duplicate]`)
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the second endpoint", `document.querySelectorAll("[data-testid=endpoint]").length === 2`)
	p.checkConsole()
}

// The Node.js verification code the portal shows, copied as a customer
// would, verifies a real delivery in Node with the Standard Webhooks
// library.
func TestPortal_CopiedNodeSnippetVerifiesARealDelivery(t *testing.T) {
	node := requireNode(t)
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "standardwebhooks", "package.json")); err != nil {
		t.Fatalf("standardwebhooks is not installed in %s: run make testdeps", nodeDir)
	}
	s := heraldtest.Start(t)
	addr := heraldtest.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	sess := portalSession(t, s, s.Token, map[string]any{})
	p := openPortal(t, sess.URL)
	p.click("Add endpoint", `[data-testid=add-endpoint]`)
	p.typeInto(`[data-testid=url]`, "http://"+addr+"/webhooks")
	p.typeInto(`[data-testid=name]`, "Node receiver")
	p.click("all events", `[data-testid="type-*"]`)
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the secret", `document.querySelector("[data-testid=secret]")`)
	p.closeDialog("the dialog")

	// Later, from the endpoint's "Verify signatures", with the secret
	// revealed again.
	p.click("Verify signatures", `[data-testid=verify-signatures]`)
	p.waitFor("the Node code", `document.querySelector("[data-testid=snippet][data-lang=node]")`)
	var placeholder string
	p.eval(`document.querySelector("[data-testid=snippet]").textContent`, &placeholder)
	if strings.Contains(placeholder, "whsec_") && !strings.Contains(placeholder, "whsec_…") {
		t.Error("the code holds a secret before it was revealed")
	}
	p.click("reveal", `[data-testid=reveal-secret]`)
	p.waitFor("the secret in the code", `document.querySelector("[data-testid=secret-shown]")`)
	p.checkScreen("portal-verify", true)
	for _, lang := range []string{"python", "go", "ruby", "php", "java"} {
		p.click(lang, `[data-testid=tab-`+lang+`]`)
		p.waitFor(lang+" code with the secret", `(s => s.dataset.lang === `+js(lang)+` && /whsec_[A-Za-z0-9+\/=]{20,}/.test(s.textContent))(document.querySelector("[data-testid=snippet]"))`)
	}
	p.click("Node.js", `[data-testid=tab-node]`)
	p.grantClipboard(s.URL)
	p.click("copy the code", `[data-testid=copy-snippet]`)
	p.waitFor("copied", `document.querySelector("[data-testid=copy-snippet-status]").textContent === "Copied."`)
	code := p.clipboard()
	if !strings.Contains(code, `from "standardwebhooks"`) {
		t.Fatalf("copied code:\n%s", code)
	}

	file, err := os.CreateTemp(nodeDir, "snippet-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file.Name()) })
	if _, err := file.WriteString(code); err != nil {
		t.Fatal(err)
	}
	file.Close()
	var out heraldtest.SyncBuffer
	cmd := exec.Command(node, filepath.Base(file.Name()))
	cmd.Dir, cmd.Stdout, cmd.Stderr = nodeDir, &out, &out
	cmd.Env = append(os.Environ(), "PORT="+port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if !heraldtest.Eventually(10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("the snippet does not listen on %s:\n%s", addr, out.String())
	}
	ev := s.Publish(s.Token, "order.created", map[string]any{"orderId": "ord_9"})
	d := s.WaitDelivery(s.Token, ev, 15*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" || d.Status == "FAILED" })
	if d.Status != "SUCCEEDED" || !heraldtest.Eventually(5*time.Second, func() bool { return strings.Contains(out.String(), "verified order.created") }) {
		t.Errorf("delivery %s with the snippet as receiver; it printed:\n%s", d.Status, out.String())
	}
	// A request it cannot verify is refused.
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks", strings.NewReader(`{"type":"order.created"}`))
	req.Header.Set("webhook-id", "msg_forged")
	req.Header.Set("webhook-timestamp", fmt.Sprint(time.Now().Unix()))
	req.Header.Set("webhook-signature", "v1,"+strings.Repeat("A", 44))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusBadRequest {
		t.Errorf("a forged request: %v %v, want 400", res, err)
	}
	p.checkConsole()
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
	// 410 Gone turned the endpoint off: said in words, with when.
	var off string
	p.eval(`document.querySelector("[data-testid=disabled]").textContent`, &off)
	if !strings.HasPrefix(off, "Turned off automatically on ") || !strings.Contains(off, "no longer accepts webhooks") {
		t.Errorf("the endpoint's state reads %q", off)
	}
	mutating := `[data-testid=add-endpoint], [data-testid=edit], [data-testid=delete], [data-testid=toggle], [data-testid=rotate], [data-testid=send-test], [data-testid=retry], [data-testid=retry-detail], [data-testid=replay], [data-testid=select], [data-testid=retry-selected], [data-testid=reveal-secret]`
	if n := p.count(mutating); n != 0 {
		t.Errorf("a read-only session sees %d mutating controls on Endpoints", n)
	}
	var theme string
	p.eval(`document.documentElement.dataset.theme + " " + getComputedStyle(document.documentElement).backgroundColor`, &theme)
	if theme != "dark rgb(18, 20, 24)" {
		t.Errorf("theme %q, want the app's dark theme", theme)
	}
	p.checkScreen("portal-read-only", true)
	p.click("Verify signatures", `[data-testid=verify-signatures]`)
	p.waitFor("the code", `document.querySelector("[data-testid=snippet]")`)
	if n := p.count(mutating); n != 0 {
		t.Errorf("a read-only session may reveal the secret")
	}
	p.closeDialog("the dialog")
	p.click("Deliveries", `[data-testid=tab-deliveries]`)
	p.waitFor("the failed delivery", `document.querySelector('tr[data-status="FAILED"]')`)
	p.click("Details", `[data-testid=details]`)
	p.waitFor("the attempt", `document.querySelector("[data-testid=attempt-detail]")`)
	if n := p.count(mutating); n != 0 {
		t.Errorf("a read-only session sees %d mutating controls on Deliveries", n)
	}
	// The API refuses what the page does not offer.
	for name, doc := range map[string]string{
		"updateEndpoint":       `mutation { updateEndpoint(id: "` + epID + `", input: {isActive: false}) { id } }`,
		"testEndpoint":         `mutation { testEndpoint(id: "` + epID + `") { delivered } }`,
		"retryDelivery":        `mutation { retryDelivery(id: "` + deliveryID(t, s, s.Token, ev) + `") { id } }`,
		"retryDeliveries":      `mutation { retryDeliveries(ids: ["` + deliveryID(t, s, s.Token, ev) + `"]) { count } }`,
		"revealEndpointSecret": `mutation { revealEndpointSecret(id: "` + epID + `") { secret } }`,
	} {
		r := s.Do(sess.Token, doc, nil)
		if !refusedByScope(r.Errors) {
			t.Errorf("%s with a read-only portal token: %s", name, r.Body)
		}
	}
	p.checkConsole()
}

func TestPortal_ExpiredRevokedOrIncompleteLinkGetsItsOwnPage(t *testing.T) {
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
		p.checkScreen("portal-link-expired", true)
	})

	t.Run("revoked while open", func(t *testing.T) {
		sess := portalSession(t, s, s.Token, map[string]any{})
		p := openPortal(t, sess.URL)
		p.click("Deliveries", `[data-testid=tab-deliveries]`)
		p.waitFor("the live feed", `document.querySelector("[data-testid=live-state]").dataset.state === "live"`)
		s.Do(s.Token, `mutation($id: ID!) { revokePortalSession(id: $id) { id } }`, map[string]any{"id": sess.APIKey.ID}).Decode(t, nil)
		p.waitFor("the ended page", `document.querySelector("[data-testid=session-ended][data-reason=REVOKED]")`)
		p.checkScreen("portal-link-revoked", true)
		// A reload does not bring the revoked session back.
		p.do("reload", chromedp.Reload())
		p.waitFor("the incomplete page", `document.querySelector("[data-testid=session-ended][data-reason=INCOMPLETE]")`)
	})

	t.Run("cut short", func(t *testing.T) {
		sess := portalSession(t, s, s.Token, map[string]any{})
		p := openPortal(t, sess.URL[:len(sess.URL)-6])
		p.waitFor("the incomplete page", `document.querySelector("[data-testid=session-ended][data-reason=INCOMPLETE]")`)
	})

	t.Run("without a token", func(t *testing.T) {
		p := openPortal(t, s.URL+"/portal/"+s.AppID)
		p.waitFor("the incomplete page", `document.querySelector("[data-testid=session-ended][data-reason=INCOMPLETE]")`)
	})

	t.Run("without an app", func(t *testing.T) {
		p := openPortal(t, s.URL+"/portal")
		p.waitFor("what the portal is", `document.querySelector("[data-testid=portal-about]")`)
		p.checkScreen("portal-about", true)
	})
}

func TestPortal_FramingOnlyFromAllowedOriginsAndARefusalExplained(t *testing.T) {
	s := heraldtest.Start(t)
	sess := portalSession(t, s, s.Token, map[string]any{})
	// The platform's site, on another origin, embeds the portal.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Acme settings</title><h1>Acme: webhook settings</h1>
			<iframe title="Webhooks" src=%q style="width:1200px;height:700px;border:1px solid #ccc"></iframe>`, sess.URL)
	}))
	t.Cleanup(site.Close)

	// Not allowed: the frame shows Herald's page saying what to configure,
	// and the portal does not start (no live connection).
	p := openBrowser(t)
	p.do("open the platform's site", chromedp.Navigate(site.URL))
	p.waitFor("the frame", `document.querySelector("iframe")`)
	frames, err := chromedp.Run(p.ctx, chromedp.Nodes(chromedp.CSS("iframe")))
	if err != nil || len(frames) != 1 {
		t.Fatalf("iframes: %v %v", frames, err)
	}
	text, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS("[data-testid=frame-refused]"), chromedp.FromNode(frames[0])))
	if err != nil || !strings.Contains(text, "Sites that may embed the portal") {
		t.Errorf("the refused frame shows %q (%v)", text, err)
	}
	p.screenshot("portal-frame-refused")
	if _, subs := s.LiveStats(); subs != 0 {
		t.Error("the refused frame started the portal")
	}

	// Allowed: the portal runs in the frame.
	s.Do(s.Token, `mutation($o: [String!]) { updatePortalSettings(input: {allowedOrigins: $o}) { id } }`,
		map[string]any{"o": []string{site.URL}}).Decode(t, nil)
	p2 := openBrowser(t)
	p2.do("open the platform's site", chromedp.Navigate(site.URL))
	if !heraldtest.Eventually(10*time.Second, func() bool { _, subs := s.LiveStats(); return subs >= 1 }) {
		t.Error("the framed portal did not start")
	}
	p2.screenshot("portal-embedded")
}

// A customer sees an endpoint that asked us to wait, tries a payload
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
	p.checkScreen("portal-endpoints", true)

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
	p.setSelect(`[data-testid=ordering]`, "KEY")
	p.checkScreen("portal-flow-controls", true)
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the dialog to close", `!document.querySelector("dialog[open]")`)
	p.waitFor("the endpoint's controls", `document.querySelector("[data-testid=filtered]") && document.querySelector("[data-testid=ordered]")`)

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
