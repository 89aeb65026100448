package graph

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/dispatch"
)

// LiveCodec encodes the live feeds' messages (dispatch.DeliveryChange,
// EndpointChange and EventPublished payloads) as compact JSON text, for a
// relay that carries them between replicas (relay.Codec). A message's
// routing fields are rebuilt from its payload, as the observer builds
// them.
type LiveCodec struct{}

// maxRelayedError is the most of an attempt's error message that travels
// to other replicas, so that a message always fits in one notification.
const maxRelayedError = 1024

// liveWire is the encoding of every topic; short names keep many messages
// in one notification.
type liveWire struct {
	Topic      bus.Topic  `json:"t"`
	App        string     `json:"a"`
	Kind       string     `json:"k,omitempty"`
	Delivery   string     `json:"d,omitempty"`
	Event      string     `json:"e,omitempty"`
	Endpoint   string     `json:"p,omitempty"`
	EventType  string     `json:"y,omitempty"`
	Status     string     `json:"s,omitempty"`
	Attempt    int        `json:"n,omitempty"`
	AttemptID  string     `json:"i,omitempty"`
	Response   int        `json:"r,omitempty"`
	Duration   int64      `json:"u,omitempty"`
	Error      string     `json:"x,omitempty"`
	Next       *time.Time `json:"w,omitempty"`
	Reason     string     `json:"o,omitempty"`
	Deliveries int        `json:"c,omitempty"`
	At         time.Time  `json:"at"`
}

// Encode returns m as text.
func (LiveCodec) Encode(m bus.Message) (string, error) {
	var w liveWire
	switch p := m.Payload.(type) {
	case dispatch.DeliveryChange:
		w = liveWire{Topic: bus.Deliveries, App: p.AppID, Kind: string(p.Kind), Delivery: p.DeliveryID, Event: p.EventID,
			Endpoint: p.EndpointID, EventType: p.EventType, Status: p.Status, Attempt: p.Attempt, AttemptID: p.AttemptID,
			Response: p.ResponseStatus, Duration: int64(p.Duration), Error: truncate(p.Error, maxRelayedError),
			Next: p.NextAttemptAt, At: p.At}
	case dispatch.EndpointChange:
		w = liveWire{Topic: bus.Endpoints, App: p.AppID, Endpoint: p.EndpointID, Reason: p.Reason, At: p.At}
	case dispatch.EventPublished:
		w = liveWire{Topic: bus.Events, App: p.AppID, Event: p.EventID, EventType: p.EventType, Deliveries: p.Deliveries, At: p.At}
	default:
		return "", fmt.Errorf("live codec: unknown payload %T", m.Payload)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("live codec: %w", err)
	}
	return string(b), nil
}

// Decode returns the message s encodes.
func (LiveCodec) Decode(s string) (bus.Message, error) {
	var w liveWire
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return bus.Message{}, fmt.Errorf("live codec: %w", err)
	}
	switch w.Topic {
	case bus.Deliveries:
		return deliveryMessage(dispatch.DeliveryChange{Kind: dispatch.ChangeKind(w.Kind), AppID: w.App, DeliveryID: w.Delivery,
			EventID: w.Event, EndpointID: w.Endpoint, EventType: w.EventType, Status: w.Status, Attempt: w.Attempt,
			AttemptID: w.AttemptID, ResponseStatus: w.Response, Duration: time.Duration(w.Duration), Error: w.Error,
			NextAttemptAt: w.Next, At: w.At}), nil
	case bus.Endpoints:
		return endpointMessage(dispatch.EndpointChange{AppID: w.App, EndpointID: w.Endpoint, Reason: w.Reason, At: w.At}), nil
	case bus.Events:
		return eventMessage(dispatch.EventPublished{AppID: w.App, EventID: w.Event, EventType: w.EventType, Deliveries: w.Deliveries, At: w.At}), nil
	default:
		return bus.Message{}, fmt.Errorf("live codec: unknown topic %d", w.Topic)
	}
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
