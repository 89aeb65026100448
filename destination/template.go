package destination

import "strings"

// A Template is a routing key, subject or similar name computed for each
// event: text in which {eventType} stands for the event's type, such as
// "webhooks.{eventType}".
type Template string

// TemplateEventType is the placeholder a Template replaces.
const TemplateEventType = "{eventType}"

// CheckTemplate reports what is wrong with a template: a brace that is not
// part of {eventType}.
func CheckTemplate(s string) string {
	rest := strings.ReplaceAll(s, TemplateEventType, "")
	if strings.ContainsAny(rest, "{}") {
		return "may contain {eventType} and no other braces"
	}
	return ""
}

// Expand returns the template with the event's type in place of
// {eventType}.
func (t Template) Expand(eventType string) string {
	if !strings.Contains(string(t), TemplateEventType) {
		return string(t)
	}
	return strings.ReplaceAll(string(t), TemplateEventType, eventType)
}
