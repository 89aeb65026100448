package server_test

import (
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
