package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// The console's browser tests sign in as an operator would and check each
// screen (checkScreen). HERALD_BROWSER_SCREENSHOTS=dir saves them
// (console-*.png).

// signIn opens the console and signs in with key.
func (p *browserPage) signIn(baseURL, key string) {
	p.t.Helper()
	p.do("open the console", chromedp.Navigate(baseURL+"/console"))
	p.waitFor("the sign-in form", `document.querySelector("[data-testid=api-key]")`)
	p.typeInto(`[data-testid=api-key]`, key)
	p.click("sign in", `[data-testid=sign-in-button]`)
	p.waitFor("the console", `document.querySelector("[data-testid=signed-in-as]")`)
}

func TestConsole_SignInHoldsTheKeyForTheTabAndSigningOutClearsIt(t *testing.T) {
	s := heraldtest.Start(t)
	p := openBrowser(t)
	p.axe = axeSource(t)
	p.do("open the console", chromedp.Navigate(s.URL+"/console"))
	p.waitFor("the sign-in form", `document.querySelector("[data-testid=api-key]")`)
	p.checkScreen("console-sign-in", false)

	// A wrong key is refused with a message, and nothing is kept.
	p.typeInto(`[data-testid=api-key]`, "hrld_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	p.click("sign in", `[data-testid=sign-in-button]`)
	p.waitFor("the refusal", `(document.querySelector("[data-testid=sign-in-error]") || {}).textContent`)
	var kept int
	p.eval(`sessionStorage.length + localStorage.length`, &kept)
	if kept != 0 {
		t.Errorf("a refused key was kept in web storage")
	}

	p.typeInto(`[data-testid=api-key]`, s.Token)
	p.click("sign in", `[data-testid=sign-in-button]`)
	p.waitFor("the apps", `document.querySelector("[data-testid=app-row]")`)
	var local int
	p.eval(`localStorage.length`, &local)
	if local != 0 {
		t.Error("the console wrote to localStorage, which outlives the tab")
	}
	// A reload keeps the operator signed in (the tab's session storage).
	p.do("reload", chromedp.Reload())
	p.waitFor("the apps after a reload", `document.querySelector("[data-testid=app-row]")`)
	var url string
	p.eval(`location.href`, &url)
	if strings.Contains(url, "hrld_") {
		t.Errorf("the key is in the URL: %s", url)
	}
	p.click("sign out", `[data-testid=sign-out]`)
	p.waitFor("the sign-in form again", `document.querySelector("[data-testid=api-key]")`)
	p.eval(`sessionStorage.length + localStorage.length`, &kept)
	if kept != 0 {
		t.Error("signing out left the key in web storage")
	}
	p.do("reload", chromedp.Reload())
	p.waitFor("still signed out", `document.querySelector("[data-testid=api-key]")`)
	p.checkConsole()
}

// An operator finds the delivery of an event of another app by its ID,
// opens it and retries it once the customer's receiver works again.
func TestConsole_OperatorFindsAnotherAppsDeliveryByEventIDAndRetriesIt(t *testing.T) {
	s := heraldtest.Start(t)
	var status atomic.Int32
	status.Store(http.StatusBadRequest) // permanent: FAILED at once
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) })
	betaID, beta := s.NewApp("Beta Shop")
	s.CreateEndpoint(beta, map[string]any{"name": "Beta orders", "url": rc.Hook("/beta")})
	for i := range 3 {
		s.Publish(beta, "order.created", map[string]any{"n": i})
	}
	ev := s.Publish(beta, "order.paid", map[string]any{"orderId": "ord_77"})
	failed := s.WaitDelivery(beta, ev, 10*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	s.NewApp("Gamma Books")

	p := openBrowser(t)
	p.axe = axeSource(t)
	p.signIn(s.URL, s.Token)
	row := `[data-testid=app-row][data-app-id="` + betaID + `"]`
	p.waitFor("Beta's health", `(() => { const r = document.querySelector(`+js(row)+`);
		return r && r.querySelector("[data-testid=app-deliveries]").textContent === "4" })()`)
	var health map[string]string
	p.eval(`(() => { const r = document.querySelector(`+js(row)+`); return {
		failed: r.querySelector("[data-testid=app-failure-rate]").textContent,
		endpoints: r.querySelector("[data-testid=app-endpoints]").textContent } })()`, &health)
	if health["failed"] != "100%" || !strings.Contains(health["endpoints"], "1 endpoint") || !strings.Contains(health["endpoints"], "1 need attention") {
		t.Errorf("Beta at a glance: %v", health)
	}
	// Search narrows the list.
	p.typeInto(`[data-testid=app-search]`, "gamma\n")
	p.waitFor("only Gamma", `document.querySelectorAll("[data-testid=app-row]").length === 1 && !document.querySelector(`+js(row)+`)`)
	p.checkScreen("console-apps", false)

	// The event's ID finds its app and its delivery.
	p.typeInto(`[data-testid=locate]`, ev+"\n")
	drow := `tr[data-event-id="` + ev + `"]`
	p.waitFor("the delivery in Beta's deliveries", `document.querySelector(`+js(drow)+`) && document.querySelectorAll("[data-testid=deliveries] tbody tr").length === 1`)
	p.waitFor("Beta's name in the menu", `document.querySelector("[data-testid=app-title]").textContent === "Beta Shop"`)
	p.checkScreen("console-deliveries", false)
	p.click("details", drow+` [data-testid=details]`)
	p.waitFor("the attempt", `document.querySelector("[data-testid=attempt-detail]")`)
	var detail string
	p.eval(`document.querySelector("[data-testid=delivery-detail]").innerText`, &detail)
	for _, want := range []string{"HTTP 400", failed.ID, ev, `"orderId": "ord_77"`} {
		if !strings.Contains(detail, want) {
			t.Errorf("delivery detail lacks %q:\n%s", want, detail)
		}
	}
	p.checkScreen("console-delivery", false)
	status.Store(http.StatusOK)
	p.click("Retry now", `[data-testid=retry-detail]`)
	p.waitFor("the retry to succeed", `(document.querySelector("[data-testid=detail-status] [data-status]") || {dataset: {}}).dataset.status === "SUCCEEDED"`)
	p.closeDialog("the detail")
	p.waitFor("the row to succeed live", `document.querySelector(`+js(drow)+`).dataset.status === "SUCCEEDED"`)
	if d := s.Deliveries(beta, ev); len(d) != 1 || d[0].Status != "SUCCEEDED" || d[0].AttemptCount != 2 {
		t.Errorf("Beta's delivery after the retry: %+v", d)
	}
	p.checkConsole()
}

func TestConsole_OperatorCreatesAndRevokesAKey(t *testing.T) {
	s := heraldtest.Start(t)
	appID, _ := s.NewApp("Beta Shop")
	p := openBrowser(t)
	p.axe = axeSource(t)
	p.signIn(s.URL, s.Token)
	p.do("open Beta's keys", chromedp.Navigate(s.URL+"/console#/apps/"+appID+"/keys"))
	p.waitFor("the keys", `document.querySelectorAll("[data-testid=key-row]").length === 1`)
	p.checkScreen("console-keys", false)

	p.click("Create key", `[data-testid=create-key]`)
	p.click("create without a name", `[data-testid=save-key]`)
	p.waitFor("the name's error", `document.querySelector("[data-testid=key-name]").getAttribute("aria-invalid") === "true" && document.activeElement === document.querySelector("[data-testid=key-name]")`)
	p.typeInto(`[data-testid=key-name]`, "Checkout service")
	p.click("publish only (already chosen), and read events", `[data-testid=scope-EVENTS_READ]`)
	p.eval(`(() => { const s = document.querySelector("[data-testid=key-expires]"); s.value = "720h"; s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, nil)
	p.checkScreen("console-key-form", false)
	p.click("create", `[data-testid=save-key]`)
	p.waitFor("the token", `document.querySelector("[data-testid=token]")`)
	var token string
	p.eval(`document.querySelector("[data-testid=token]").textContent`, &token)
	p.checkScreen("console-key-token", false)
	p.click("done", `[data-testid=token-done]`)
	p.waitFor("two keys", `document.querySelectorAll("[data-testid=key-row]").length === 2`)
	if p.count(`[data-testid=token]`) != 0 || strings.Contains(p.text(), token) {
		t.Error("the token is still shown after the dialog closed")
	}

	// The token works in Beta, with the scopes chosen, until revoked.
	var key struct {
		Viewer struct {
			App    struct{ ID string }
			APIKey struct {
				Scopes    []string
				ExpiresAt *time.Time
			}
		}
	}
	s.As(t, token).Must(&key, `{ viewer { app { id } apiKey { scopes expiresAt } } }`, nil)
	if key.Viewer.App.ID != appID || !sameSet(key.Viewer.APIKey.Scopes, "EVENTS_PUBLISH", "EVENTS_READ") || key.Viewer.APIKey.ExpiresAt == nil ||
		key.Viewer.APIKey.ExpiresAt.Sub(time.Now()) < 719*time.Hour {
		t.Errorf("the new key: %+v", key.Viewer)
	}
	p.click("revoke", `[data-testid=key-row][data-revoked=false] [data-testid=revoke-key]`)
	p.click("confirm", `[data-testid=confirm-revoke] [data-testid=confirm]`)
	p.waitFor("the key revoked", `document.querySelectorAll("[data-testid=key-row][data-revoked=true]").length === 1`)
	if r := s.Do(token, `{ viewer { isAdmin } }`, nil); r.Code() != "UNAUTHENTICATED" || r.Reason() != "REVOKED" {
		t.Errorf("the revoked key: %s", r.Body)
	}
	p.checkConsole()
}

// An operator opens a customer's portal from the apps list, and sets the
// portal's branding, which the portal then shows.
func TestConsole_OperatorOpensACustomersPortalAndBrandsIt(t *testing.T) {
	s := heraldtest.Start(t)
	appID, _ := s.NewApp("Beta Shop")
	p := openBrowser(t)
	p.axe = axeSource(t)
	p.signIn(s.URL, s.Token)

	p.do("open Beta's portal settings", chromedp.Navigate(s.URL+"/console#/apps/"+appID+"/portal"))
	p.waitFor("the settings", `document.querySelector("[data-testid=portal-settings]")`)
	p.typeInto(`[data-testid=accent-color]`, "red")
	p.click("save", `[data-testid=save-portal]`)
	p.waitFor("the colour's error", `document.querySelector("[data-testid=accent-color]").getAttribute("aria-invalid") === "true"`)
	p.typeInto(`[data-testid=accent-color]`, "#1f5fbf")
	p.typeInto(`[data-testid=display-name]`, "Beta Webhooks")
	p.click("save", `[data-testid=save-portal]`)
	p.waitFor("saved", `(document.querySelector("[data-testid=portal-info]") || {}).textContent`)
	p.checkScreen("console-portal-settings", false)

	p.do("back to the apps", chromedp.Navigate(s.URL+"/console#/"))
	p.click("Open portal", `[data-testid=app-row][data-app-id="`+appID+`"] [data-testid=open-portal]`)
	p.click("create the link", `[data-testid=create-portal-link]`)
	p.waitFor("the link", `document.querySelector("[data-testid=portal-url]")`)
	p.checkScreen("console-portal-link", false)
	var link string
	p.eval(`document.querySelector("[data-testid=portal-url]").href`, &link)
	if !strings.HasPrefix(link, s.URL+"/portal/"+appID+"#token=hrld_") {
		t.Fatalf("portal link %q", link)
	}
	p.do("open the portal", chromedp.Navigate(link))
	p.waitFor("the portal", `document.querySelector("[data-testid=app-name]")`)
	var name, accent string
	p.eval(`document.querySelector("[data-testid=app-name]").textContent`, &name)
	p.eval(`getComputedStyle(document.querySelector(".brand-mark")).backgroundColor`, &accent)
	if name != "Beta Webhooks" || accent != "rgb(31, 95, 191)" {
		t.Errorf("the portal shows %q in %s, want the branding set in the console", name, accent)
	}
	p.checkConsole()
}

// The overview charts the last hour live, with the backlog and the
// endpoints needing attention; choosing one narrows it all. Every other
// view of an app passes the screen checks.
func TestConsole_OverviewChartsAndEveryViewOfAnApp(t *testing.T) {
	s := heraldtest.Start(t)
	ok := heraldtest.NewReceiver(t, nil)
	down := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	s.CreateEndpoint(s.Token, map[string]any{"name": "Orders API", "url": ok.URL, "eventTypes": []string{"order.*"}})
	downID, _ := s.CreateEndpoint(s.Token, map[string]any{"name": "CRM sync", "url": down.URL, "eventTypes": []string{"contact.*"},
		"retryPolicy": map[string]any{"maxAttempts": 8, "initialDelay": "1h", "backoffMultiplier": 1, "maxDelay": "1h"}})
	var viewer struct {
		Viewer struct{ App struct{ ID string } }
	}
	s.As(t, s.Token).Must(&viewer, `{ viewer { app { id } } }`, nil)
	appID := viewer.Viewer.App.ID

	p := openBrowser(t)
	p.axe = axeSource(t)
	p.signIn(s.URL, s.Token)
	p.do("open the overview", chromedp.Navigate(s.URL+"/console#/apps/"+appID+"/overview"))
	p.waitFor("the charts", `document.querySelectorAll("[data-testid=stats] canvas").length === 3`)
	waitSubscribed(t, s, 1)
	for i := range 12 {
		s.Publish(s.Token, "order.created", map[string]any{"n": i})
	}
	for i := range 3 {
		s.Publish(s.Token, "contact.created", map[string]any{"n": i})
	}
	ok.WaitRequests(t, 12, 10*time.Second)
	down.WaitRequests(t, 3, 10*time.Second)
	// The numbers move without a reload: 15 attempts, 12 of them good.
	p.waitFor("the charts to count every attempt", `document.querySelector("[data-testid=stats]").dataset.attempts === "15"`)
	p.waitFor("the success rate", `document.querySelector("[data-testid=tile-success]").dataset.value === "0.8"`)
	p.waitFor("the backlog", `document.querySelector("[data-testid=backlog]").dataset.unfinished === "3"`)
	item := `[data-testid=attention-list] li[data-endpoint-id="` + downID + `"]`
	p.waitFor("the failing endpoint among those needing attention", `document.querySelector(`+js(item)+`)`)
	p.checkScreen("console-overview", false)
	p.click("the failing endpoint", item+` button`)
	p.waitFor("its statistics", `document.querySelector("[data-testid=stats-title]").textContent === "CRM sync, last hour"`)
	p.waitFor("its own numbers", `(document.querySelector("[data-testid=stats]") || {dataset: {}}).dataset.attempts === "3"`)

	for _, v := range []struct{ view, ready string }{
		{"endpoints", `document.querySelectorAll("[data-testid=endpoint]").length === 2`},
		{"events", `document.querySelectorAll("[data-testid=events] tbody tr").length === 15`},
		{"catalog", `document.querySelector("[data-testid=catalog-group]")`},
		{"deliveries", `document.querySelectorAll("[data-testid=deliveries] tbody tr").length === 15`},
	} {
		p.do("open "+v.view, chromedp.Navigate(s.URL+"/console#/apps/"+appID+"/"+v.view))
		p.waitFor(v.view, v.ready)
		p.checkScreen("console-"+v.view, false)
	}
	p.do("open the events", chromedp.Navigate(s.URL+"/console#/apps/"+appID+"/events"))
	p.click("an event's details", `[data-testid=events] tbody tr [data-testid=event-details]`)
	p.waitFor("the event", `document.querySelector("[data-testid=event-detail] pre")`)
	p.checkScreen("console-event", false)
	p.checkConsole()
}

// sameSet reports whether got holds exactly want, in any order.
func sameSet(got []string, want ...string) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A deliveries list that falls behind its live feed reloads and follows
// again by itself once; the second time it stops and says how to go on.
func TestConsole_DeliveriesFollowAgainOnceAfterFallingBehind(t *testing.T) {
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
	var viewer struct {
		Viewer struct{ App struct{ ID string } }
	}
	s.As(t, s.Token).Must(&viewer, `{ viewer { app { id } } }`, nil)

	p := openBrowser(t)
	p.signIn(s.URL, s.Token)
	p.do("open the deliveries", chromedp.Navigate(s.URL+"/console#/apps/"+viewer.Viewer.App.ID+"/deliveries"))
	live := `document.querySelector("[data-testid=live-state]").dataset.state`
	p.waitFor("the list to be live", live+` === "live"`)
	waitSubscribed(t, s, 1)

	burst()
	p.waitFor("the reload notice", `((document.querySelector("[data-testid=deliveries-info]") || {}).textContent || "").includes("reloaded")`)
	waitSubscribed(t, s, 1)
	p.waitFor("live again", live+` === "live"`)

	burst()
	p.waitFor("the list to stop following", live+` === "stopped" && document.querySelector("[data-testid=deliveries-error]")`)
	if !heraldtest.Eventually(5*time.Second, func() bool { _, subs := s.LiveStats(); return subs == 0 }) {
		t.Fatal("the list subscribed again after falling behind twice")
	}
	p.click("stop following", `[data-testid=live-toggle]`)
	p.click("follow again", `[data-testid=live-toggle]`)
	waitSubscribed(t, s, 1)
	p.waitFor("live after following again", live+` === "live"`)
	p.checkConsole()
}

// The console's catalog shows an app's view of the shared catalog: it
// names the catalog, marks the shared types and the app's own, filters by
// them, and the customer's portal shows the same types without the marks.
func TestConsole_CatalogShowsTheSharedCatalogAndTheAppsOwnTypes(t *testing.T) {
	s := heraldtest.Start(t)
	admin := s.As(t, s.Token)
	var created struct{ CreateCatalog struct{ ID string } }
	admin.Must(&created, `mutation { createCatalog(input: {name: "retail"}) { id } }`, nil)
	admin.Must(nil, `mutation($c: ID) { importEventTypes(catalogId: $c, input: {eventTypes: [
		{name: "invoice.paid", description: "An invoice was paid."}, {name: "invoice.sent", description: "An invoice was sent."}]}) { created } }`,
		map[string]any{"c": created.CreateCatalog.ID})
	var app struct{ CreateApp struct{ ID string } }
	admin.Must(&app, `mutation($c: ID) { createApp(input: {name: "Shop", catalogId: $c}) { id } }`, map[string]any{"c": created.CreateCatalog.ID})
	appID := app.CreateApp.ID
	admin.WithHeader("X-Herald-App", appID).Must(nil, `mutation { createEventType(input: {name: "shop.opened", description: "Only this shop's."}) { id } }`, nil)

	p := openBrowser(t)
	p.axe = axeSource(t)
	p.signIn(s.URL, s.Token)
	p.do("open the catalog", chromedp.Navigate(s.URL+"/console#/apps/"+appID+"/catalog"))
	p.waitFor("the catalog's name", `(document.querySelector("[data-testid=catalog-name]") || {}).textContent === "retail"`)
	// Two shared types, one of the app's own, and Herald's system types.
	p.waitFor("the types", fmt.Sprintf(`document.querySelectorAll("[data-testid=event-type]").length === %d`, 3+len(catalog.SystemTypes())))
	origin := func(name string) string {
		var got string
		p.eval(`document.querySelector("[data-testid=event-type][data-name='`+name+`'] [data-testid=event-type-origin]").textContent`, &got)
		return got
	}
	for name, want := range map[string]string{"invoice.paid": "Shared", "shop.opened": "This app only", "test.ping": "Herald's own"} {
		if got := origin(name); got != want {
			t.Errorf("%s is marked %q, want %q", name, got, want)
		}
	}
	// The default catalog's types are not this app's.
	if n := p.count(`[data-testid=event-type][data-name='order.created']`); n != 0 {
		t.Errorf("the retail app's catalog shows the default catalog's order.created")
	}
	p.checkScreen("console-catalog-shared", false)

	// The apps list names the catalog of an app outside the default one.
	p.do("open the apps", chromedp.Navigate(s.URL+"/console#/"))
	p.waitFor("the app's catalog in the list", `(document.querySelector("[data-testid=app-row][data-app-id='`+appID+`'] [data-testid=app-catalog]") || {}).textContent === "Catalog: retail"`)
	if n := p.count(`[data-testid=app-catalog]`); n != 1 {
		t.Errorf("%d apps show their catalog, want only Shop's (the default app is in the default catalog)", n)
	}
	p.do("open the catalog again", chromedp.Navigate(s.URL+"/console#/apps/"+appID+"/catalog"))
	p.waitFor("the types again", fmt.Sprintf(`document.querySelectorAll("[data-testid=event-type]").length === %d`, 3+len(catalog.SystemTypes())))
	p.setSelect(`[data-testid=catalog-scope]`, "own")
	p.waitFor("only the app's own types", `document.querySelectorAll("[data-testid=event-type]").length === 1 && document.querySelector("[data-testid=event-type][data-name='shop.opened']")`)
	p.setSelect(`[data-testid=catalog-scope]`, "shared")
	p.waitFor("only the shared types", fmt.Sprintf(`document.querySelectorAll("[data-testid=event-type]").length === %d && !document.querySelector("[data-testid=event-type][data-name='shop.opened']")`, 2+len(catalog.SystemTypes())))

	// The customer's portal lists the same six types, without the marks.
	var session struct{ CreatePortalSession struct{ URL string } }
	admin.Must(&session, `mutation($a: ID!) { createPortalSession(input: {appId: $a}) { url } }`, map[string]any{"a": appID})
	p.do("open the portal", chromedp.Navigate(session.CreatePortalSession.URL))
	p.click("Event catalog", `[data-testid=tab-catalog]`)
	p.waitFor("the portal's catalog", fmt.Sprintf(`document.querySelectorAll("[data-testid=event-type]").length === %d && document.querySelector("[data-testid=event-type][data-name='shop.opened']")`, 3+len(catalog.SystemTypes())))
	if n := p.count(`[data-testid=event-type-origin]`); n != 0 {
		t.Errorf("the portal marks %d types shared or own", n)
	}
	p.checkConsole()
}
