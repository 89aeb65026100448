package graph

import (
	"encoding/json"
	"time"

	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph/model"
)

// Mutations name what they act on the same way (docs/api.md, "Shapes of
// mutations"): the object changed is the argument id, the app or catalog
// a mutation works in is a top-level appId or catalogId, and everything
// else is in input. The functions here accept the shapes a release
// deprecated as well, so that older clients keep working, and refuse a
// request that gives both shapes different values.

// appArgument returns the app a mutation names, from its appId argument or
// the deprecated input.appId, and the name of the argument it came from
// (for errors). "" means the caller's app.
func appArgument(appID, inputAppID *string) (id, field string, err error) {
	switch {
	case appID != nil && inputAppID != nil && *appID != *inputAppID:
		return "", "", fault.Invalid("input.appId", "is deprecated and differs from appId: give the app once, as appId")
	case appID != nil:
		return *appID, "appId", nil
	case inputAppID != nil:
		return *inputAppID, "input.appId", nil
	}
	return "", "appId", nil
}

// testArguments returns what testEndpoint sends, from input or the
// deprecated top-level eventType and payload, and the prefix of the
// arguments' names (for errors).
func testArguments(input *model.TestEndpointInput, eventType *string, payload json.RawMessage) (typ string, body json.RawMessage, prefix string, err error) {
	if input == nil {
		return deref(eventType), nullToEmpty(payload), "", nil
	}
	if eventType != nil || len(nullToEmpty(payload)) > 0 {
		return "", nil, "", fault.Invalid("eventType", "is deprecated: give the event type and payload in input only")
	}
	return deref(input.EventType), nullToEmpty(input.Payload), "input", nil
}

// replayArguments returns which deliveries replayDeliveries queues again,
// from input or the deprecated top-level since and status.
func replayArguments(input *model.ReplayDeliveriesInput, since *time.Time, status *delivery.Status) (time.Time, delivery.Status, error) {
	st := delivery.StatusFailed
	if input != nil {
		if since != nil || status != nil {
			return time.Time{}, "", fault.Invalid("since", "is deprecated: give since and status in input only")
		}
		if input.Status != nil {
			st = *input.Status
		}
		return input.Since, st, nil
	}
	if since == nil {
		return time.Time{}, "", fault.Invalid("input.since", "is required: replay the deliveries created since when? Such as input: {since: \"2026-01-02T15:04:05Z\"}")
	}
	if status != nil {
		st = *status
	}
	return *since, st, nil
}
