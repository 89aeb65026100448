package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// The console and the portal show a listener as such: whether herald
// listen holds it, where it forwards, and when it goes; they follow its
// session as it comes and goes, and drop it once its TTL has run out.
func TestWebApp_ShowsListenersUntilTheyExpire(t *testing.T) {
	var c clock
	s := heraldtest.Start(t, withClock(&c))
	id, _ := createListener(t, s, s.Token, map[string]any{"eventTypes": []string{"order.*"}, "ttl": "2h", "forwardTo": "http://localhost:3000/webhooks"})
	s.CreateEndpoint(s.Token, map[string]any{"name": "Orders API", "url": "https://example.com/hooks", "eventTypes": []string{"order.*"}})
	var viewer struct {
		Viewer struct{ App struct{ ID string } }
	}
	s.As(t, s.Token).Must(&viewer, `{ viewer { app { id } } }`, nil)
	sess := portalSession(t, s, s.Token, map[string]any{"name": "Customer 42"})

	listener := `document.querySelector("[data-testid=endpoint][data-endpoint-id=\"` + id + `\"] [data-testid=listener]")`
	connected := func(p *browserPage, want string) {
		p.t.Helper()
		p.waitFor("the listener shown with connected="+want, listener+` && `+listener+`.dataset.connected === "`+want+`"`)
	}

	console := openBrowser(t)
	console.axe = axeSource(t)
	console.signIn(s.URL, s.Token)
	console.do("open the endpoints", chromedp.Navigate(s.URL+"/console#/apps/"+viewer.Viewer.App.ID+"/endpoints"))
	connected(console, "false")
	portal := openPortal(t, sess.URL)
	connected(portal, "false")
	waitSubscribed(t, s, 2)

	// herald listen connects: both pages say so without a reload.
	ws := dial(t, s, heraldtest.TransportWS, s.Token)
	if err := ws.Subscribe("1", listenOp, map[string]any{"id": id}); err != nil {
		t.Fatal(err)
	}
	if m := nextListen(t, ws, "1"); m.Kind != "CONNECTED" {
		t.Fatalf("first message %+v", m)
	}
	connected(console, "true")
	connected(portal, "true")
	var text string
	portal.eval(listener+`.textContent`, &text)
	if want := "http://localhost:3000/webhooks"; !strings.Contains(text, want) {
		t.Errorf("the portal says %q of the listener, want where it forwards (%s)", text, want)
	}
	if n := portal.count(`[data-endpoint-id="` + id + `"] [data-testid=edit]`); n != 0 {
		t.Error("the listener has an Edit button: herald listen sets it up")
	}
	console.checkScreen("console-listener-connected", false)
	portal.checkScreen("portal-listener-connected", true)

	// It disconnects: the pages say when it goes.
	ws.Close()
	connected(console, "false")
	connected(portal, "false")
	portal.eval(listener+`.textContent`, &text)
	if !strings.Contains(text, "removed") {
		t.Errorf("the portal says %q of a disconnected listener, want when it is removed", text)
	}
	portal.checkScreen("portal-listener-waiting", true)

	// Its TTL runs out: it leaves both lists; the HTTP endpoint stays.
	c.Advance(3 * time.Hour)
	for _, p := range []*browserPage{console, portal} {
		p.waitFor("the listener gone", `!document.querySelector("[data-endpoint-id=\"`+id+`\"]") && document.querySelectorAll("[data-testid=endpoint]").length === 1`)
	}
	console.checkConsole()
	portal.checkConsole()
}
