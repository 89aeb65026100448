package catalog

import (
	"encoding/json"

	"github.com/heraldhq/herald/webhook"
)

// System event types: Herald publishes them itself, and every catalog has
// them.
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

// SystemTypes returns Herald's system event types, which every catalog
// has from the start and which cannot be changed or archived. Nothing else
// is in a catalog until someone adds it (createEventType,
// importEventTypes, herald catalog import).
func SystemTypes() []Definition {
	ex := func(s string) json.RawMessage { return json.RawMessage(s) }
	return []Definition{
		{Name: TypeTestPing, Description: "A test event, sent on request to check that an endpoint receives webhooks.", Example: ex(`{"message":"Hello from Herald"}`)},
		{Name: TypeWebhookFailed, Description: "A delivery to one of your endpoints failed for good (all attempts used, or a permanent error).", Example: ex(`{"endpointId":"ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8","deliveryId":"dlv_01JDZ6Q4W8X3M5N7P9R2T4V6X9","eventId":"evt_01JDZ6Q4W8X3M5N7P9R2T4V6XA","eventType":"order.created","attempts":8,"lastResponseStatus":503,"lastError":"HTTP 503"}`)},
		{Name: TypeWebhookDisabled, Description: "One of your endpoints was disabled after repeated failures.", Example: ex(`{"endpointId":"ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8","url":"https://example.com/webhooks","reason":"20 consecutive failed deliveries","consecutiveFailures":20}`)},
		{Name: TypeCertificateExpiring, Description: "The client certificate one of your endpoints presents (mutual TLS) expires within 14 days: renew it, or deliveries will fail once it has.", Example: ex(`{"endpointId":"ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8","url":"https://example.com/webhooks","expiresAt":"2027-01-10T12:00:00Z","daysLeft":9}`)},
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

// systemNames lists the names of the system types.
func systemNames() []string {
	return []string{TypeTestPing, TypeWebhookFailed, TypeWebhookDisabled, TypeCertificateExpiring}
}
