package catalog

import (
	"encoding/json"

	"github.com/heraldhq/herald/webhook"
)

// Builtin is an event type seeded into every app's catalog.
type Builtin struct {
	Name        string
	Description string
	Example     json.RawMessage
	// System types are published by Herald itself and cannot be changed or
	// archived.
	System bool
}

// System event types.
const (
	TypeTestPing        = "test.ping"
	TypeWebhookFailed   = "webhook.failed"
	TypeWebhookDisabled = "webhook.disabled"
	// TypeCertificateExpiring reports an endpoint's mutual TLS client
	// certificate that expires within 14 days.
	TypeCertificateExpiring = "webhook.certificate_expiring"
)

// ReservedPrefix is the namespace of event types only Herald publishes.
const ReservedPrefix = webhook.ReservedPrefix

// Builtins returns the event types every app starts with.
func Builtins() []Builtin {
	ex := func(s string) json.RawMessage { return json.RawMessage(s) }
	return []Builtin{
		{Name: "order.created", Description: "An order was placed.", Example: ex(`{"orderId":"ord_1042","customerId":"cus_77","currency":"EUR","total":4990,"items":[{"sku":"TSHIRT-M","quantity":2,"price":2495}]}`)},
		{Name: "order.updated", Description: "An order's details changed.", Example: ex(`{"orderId":"ord_1042","changes":["shippingAddress"]}`)},
		{Name: "order.paid", Description: "An order was paid in full.", Example: ex(`{"orderId":"ord_1042","paymentId":"pay_551","amount":4990,"currency":"EUR"}`)},
		{Name: "order.fulfilled", Description: "An order was shipped or handed over.", Example: ex(`{"orderId":"ord_1042","carrier":"DHL","trackingNumber":"00340434161234567890"}`)},
		{Name: "order.canceled", Description: "An order was canceled.", Example: ex(`{"orderId":"ord_1042","reason":"customer_request"}`)},
		{Name: "order.refunded", Description: "An order was refunded, fully or partly.", Example: ex(`{"orderId":"ord_1042","refundId":"ref_12","amount":2495,"currency":"EUR"}`)},
		{Name: "contact.created", Description: "A contact was added.", Example: ex(`{"contactId":"con_311","email":"ada@example.com","name":"Ada Lovelace"}`)},
		{Name: "contact.updated", Description: "A contact's details changed.", Example: ex(`{"contactId":"con_311","changes":["name"]}`)},
		{Name: "contact.deleted", Description: "A contact was removed.", Example: ex(`{"contactId":"con_311"}`)},
		{Name: "contact.subscribed", Description: "A contact opted in to a list.", Example: ex(`{"contactId":"con_311","listId":"lst_9"}`)},
		{Name: "contact.unsubscribed", Description: "A contact opted out of a list.", Example: ex(`{"contactId":"con_311","listId":"lst_9"}`)},
		{Name: "subscription.created", Description: "A subscription started.", Example: ex(`{"subscriptionId":"sub_88","customerId":"cus_77","plan":"pro-monthly","status":"active"}`)},
		{Name: "subscription.updated", Description: "A subscription's plan or status changed.", Example: ex(`{"subscriptionId":"sub_88","plan":"pro-yearly","status":"active"}`)},
		{Name: "subscription.renewed", Description: "A subscription renewed for another period.", Example: ex(`{"subscriptionId":"sub_88","periodEnd":"2027-01-01T00:00:00Z"}`)},
		{Name: "subscription.canceled", Description: "A subscription was canceled.", Example: ex(`{"subscriptionId":"sub_88","cancelAt":"2026-12-31T23:59:59Z"}`)},
		{Name: "subscription.expired", Description: "A subscription ended.", Example: ex(`{"subscriptionId":"sub_88"}`)},
		{Name: "course.enrolled", Description: "A learner enrolled in a course.", Example: ex(`{"courseId":"crs_5","learnerId":"lrn_40"}`)},
		{Name: "course.started", Description: "A learner started a course.", Example: ex(`{"courseId":"crs_5","learnerId":"lrn_40"}`)},
		{Name: "course.completed", Description: "A learner completed a course.", Example: ex(`{"courseId":"crs_5","learnerId":"lrn_40","score":92}`)},
		{Name: "lesson.completed", Description: "A learner completed a lesson.", Example: ex(`{"courseId":"crs_5","lessonId":"les_3","learnerId":"lrn_40"}`)},
		{Name: "email.sent", Description: "An email was handed to the mail provider.", Example: ex(`{"messageId":"eml_901","to":"ada@example.com","subject":"Your order"}`)},
		{Name: "email.delivered", Description: "An email reached the recipient's server.", Example: ex(`{"messageId":"eml_901"}`)},
		{Name: "email.opened", Description: "A recipient opened an email.", Example: ex(`{"messageId":"eml_901"}`)},
		{Name: "email.clicked", Description: "A recipient clicked a link in an email.", Example: ex(`{"messageId":"eml_901","url":"https://example.com/orders/1042"}`)},
		{Name: "email.bounced", Description: "An email bounced.", Example: ex(`{"messageId":"eml_901","bounceType":"hard"}`)},
		{Name: "email.complained", Description: "A recipient marked an email as spam.", Example: ex(`{"messageId":"eml_901"}`)},
		{Name: TypeTestPing, Description: "A test event, sent on request to check that an endpoint receives webhooks.", Example: ex(`{"message":"Hello from Herald"}`), System: true},
		{Name: TypeWebhookFailed, Description: "A delivery to one of your endpoints failed for good (all attempts used, or a permanent error).", Example: ex(`{"endpointId":"ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8","deliveryId":"dlv_01JDZ6Q4W8X3M5N7P9R2T4V6X9","eventId":"evt_01JDZ6Q4W8X3M5N7P9R2T4V6XA","eventType":"order.created","attempts":8,"lastResponseStatus":503,"lastError":"HTTP 503"}`), System: true},
		{Name: TypeWebhookDisabled, Description: "One of your endpoints was disabled after repeated failures.", Example: ex(`{"endpointId":"ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8","url":"https://example.com/webhooks","reason":"20 consecutive failed deliveries","consecutiveFailures":20}`), System: true},
		{Name: TypeCertificateExpiring, Description: "The client certificate one of your endpoints presents (mutual TLS) expires within 14 days: renew it, or deliveries will fail once it has.", Example: ex(`{"endpointId":"ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8","url":"https://example.com/webhooks","expiresAt":"2027-01-10T12:00:00Z","daysLeft":9}`), System: true},
	}
}

// IsSystem reports whether name is one of Herald's system event types.
func IsSystem(name string) bool {
	switch name {
	case TypeTestPing, TypeWebhookFailed, TypeWebhookDisabled, TypeCertificateExpiring:
		return true
	}
	return false
}
