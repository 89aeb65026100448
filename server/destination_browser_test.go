package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/internal/brokers"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// setValue replaces the value of the control sel and says so as typing
// would (for a long script, which typing key by key makes slow).
func (p *browserPage) setValue(sel, value string) {
	p.t.Helper()
	p.eval(`(() => { const e = document.querySelector(`+js(sel)+`); e.focus(); e.value = `+js(value)+`;
		e.dispatchEvent(new Event("input", {bubbles: true})); return true })()`, nil)
}

// A customer sends an app's events to their NATS JetStream stream with a
// transformation, from the portal: the destination's fields come from the
// server, a bad setting is named at its field, the editor's test shows a
// script's error with its line and column and then its result on the
// catalog's example, and the stream gets what the script made.
func TestPortal_CustomerSendsEventsToABrokerThroughATransformation(t *testing.T) {
	b := brokers.StartNATS(t, brokers.NATSOptions{})
	nc, err := natsgo.Connect(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WEBHOOKS", Subjects: []string{"webhooks.>"}})
	if err != nil {
		t.Fatal(err)
	}

	s := heraldtest.Start(t)
	appKey, _ := newKey(t, s, "platform backend")
	sess := portalSession(t, s, appKey, map[string]any{"name": "Customer 7"})
	p := openPortal(t, sess.URL)
	p.waitFor("the portal", `document.querySelector("[data-testid=add-endpoint]")`)
	p.click("Add endpoint", `[data-testid=add-endpoint]`)
	p.waitFor("the destination types", `document.querySelector("[data-testid=destination-type] option[value=NATS]")`)
	p.setSelect(`[data-testid=destination-type]`, "NATS")
	p.waitFor("the NATS settings", `document.querySelector("[data-testid=settings] [data-testid=setting-subject]")`)
	if p.count(`[data-testid=endpoint-form] [data-testid=url]`) != 0 {
		t.Error("the form still asks for a webhook URL for a NATS endpoint")
	}
	var legend string
	p.eval(`document.querySelector("[data-testid=settings] legend").textContent`, &legend)
	if legend != "NATS JetStream settings" {
		t.Errorf("settings legend = %q", legend)
	}
	p.typeInto(`[data-testid=setting-url]`, b.URL)
	p.typeInto(`[data-testid=endpoint-form] [data-testid=name]`, "Orders to NATS")
	p.click("check an event type", `[data-testid="type-order.created"]`)
	p.checkScreen("portal-endpoint-form-broker", true)

	// Without a subject, the server's error shows at the subject field,
	// which takes the focus.
	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the subject's error", `document.activeElement && document.activeElement.dataset.testid === "setting-subject" &&
		document.activeElement.closest(".field").querySelector("[data-testid=field-error]")`)
	p.typeInto(`[data-testid=setting-subject]`, "webhooks.{eventType}")

	// The transformation: a script that fails shows where; a fixed one
	// shows what the endpoint would get from the catalog's example.
	p.click("open the transformation", `[data-testid=transformation-section] summary`)
	p.click("start from the example", `[data-testid=transformation-start]`)
	p.setValue(`[data-testid=transformation]`, "function handler(webhook) {\n  webhook.payload = {order: webhook.payload.data.nope.id};\n  return webhook;\n}\n")
	p.click("test the script", `[data-testid=transformation-test]`)
	p.waitFor("the script's error", `document.querySelector("[data-testid=transformation-error]")`)
	var failed string
	p.eval(`document.querySelector("[data-testid=transformation-error]").textContent`, &failed)
	if !strings.Contains(failed, "line 2, column") || !strings.Contains(failed, "TypeError") {
		t.Errorf("the test says %q, want the TypeError with its line and column", failed)
	}
	if p.count(`.editor-error-line`) != 1 {
		t.Error("the editor does not mark the failing line")
	}
	p.checkScreen("portal-transformation-error", true)
	script := "function handler(webhook) {\n  if (webhook.payload.data.total === 0) return null;\n  webhook.payload = {order: webhook.payload.data.orderId, total: webhook.payload.data.total};\n  webhook.headers[\"X-Source\"] = \"portal\";\n  return webhook;\n}\n"
	p.setValue(`[data-testid=transformation]`, script)
	p.setSelect(`[data-testid=transformation-sample]`, "order.created")
	p.click("test the script", `[data-testid=transformation-test]`)
	p.waitFor("the script's result", `document.querySelector("[data-testid=transformation-result] pre")`)
	var shown string
	p.eval(`document.querySelector("[data-testid=transformation-result]").innerText`, &shown)
	if !strings.Contains(shown, `"order"`) || !strings.Contains(shown, "X-Source: portal") {
		t.Errorf("the test shows %q, want the reshaped example and the added header", shown)
	}
	p.checkScreen("portal-transformation-result", true)

	p.click("save", `[data-testid=save-endpoint]`)
	p.waitFor("the secret", `document.querySelector("[data-testid=secret-dialog] [data-testid=secret]")`)
	p.click("close the secret", `[data-testid=secret-done]`)
	p.waitFor("the endpoint in the list", `document.querySelectorAll("[data-testid=endpoint]").length === 1`)

	// Events reach the stream as the script made them.
	ev := s.Publish(appKey, "order.created", map[string]any{"orderId": "ord_9", "total": 12})
	s.WaitDelivery(appKey, ev, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	m, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.Unmarshal(m.Data, &body)
	if body["order"] != "ord_9" || m.Header.Get("x-source") != "portal" || m.Subject != "webhooks.order.created" {
		t.Errorf("the stream got %s on %s with headers %v", m.Data, m.Subject, m.Header)
	}

	// Editing shows the stored settings and script.
	p.click("Edit", `[data-testid=endpoint] [data-testid=edit]`)
	p.waitFor("the stored settings", `(document.querySelector("[data-testid=setting-subject]") || {}).value === "webhooks.{eventType}"`)
	var stored string
	p.eval(`document.querySelector("[data-testid=transformation]").value`, &stored)
	if stored != script {
		t.Errorf("the editor holds %q, want the saved script", stored)
	}
	p.checkScreen("portal-endpoint-edit-broker", true)
	p.checkConsole()
}
