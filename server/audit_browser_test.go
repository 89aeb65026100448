package server_test

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestPortal_ShowsTheCustomersOwnChanges: the portal's "Your changes" view
// lists the session's own changes, and not the platform's.
func TestPortal_ShowsTheCustomersOwnChanges(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL}) // the platform's change
	sess := portalSession(t, s, s.Token, map[string]any{"name": "Customer 7"})
	s.As(t, sess.Token).Must(nil, `mutation($id: ID!) { updateEndpoint(id: $id, input: {description: "by the customer"}) { id } }`,
		map[string]any{"id": epID})

	p := openPortal(t, sess.URL)
	p.click("the changes tab", "[data-testid=tab-audit]")
	p.waitFor("the customer's change", `document.querySelectorAll("[data-testid=audit-row]").length === 1`)
	var action string
	p.eval(`document.querySelector("[data-testid=audit-row]").dataset.action`, &action)
	if action != "updateEndpoint" {
		t.Errorf("the portal shows %q, want the customer's updateEndpoint only", action)
	}
	if n := p.count(`[data-testid=audit-row][data-action=createEndpoint]`); n != 0 {
		t.Errorf("the portal shows %d of the platform's changes", n)
	}
	p.checkAccessibility("the portal's changes")
}

// TestPortal_ShowsAnEd25519EndpointsPublicKey: receivers verify Ed25519
// signatures with the endpoint's public key, which the portal shows.
func TestPortal_ShowsAnEd25519EndpointsPublicKey(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	_, pub := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "signatureScheme": "ED25519"})
	sess := portalSession(t, s, s.Token, map[string]any{"name": "Customer 8"})
	p := openPortal(t, sess.URL)
	p.waitFor("the public key", `document.querySelector("[data-testid=public-key]")`)
	var text string
	p.eval(`document.querySelector("[data-testid=public-key]").textContent`, &text)
	if !strings.Contains(text, pub) {
		t.Errorf("the portal shows %q, want the public key %s", text, pub)
	}
	p.checkAccessibility("an Ed25519 endpoint")
}
