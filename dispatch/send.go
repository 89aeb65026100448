package dispatch

import (
	"context"
	"time"

	"github.com/heraldhq/herald/destination"
)

// message is an event rendered for sending; consecutive deliveries of one
// event share it.
type message struct {
	ID   string
	Type string
	// OrderingKey is the event's ("" if none).
	OrderingKey string
	// Body is the JSON envelope {"id","type","timestamp","data"}.
	Body []byte
}

// renderEnvelope returns the request body of an event.
func renderEnvelope(id, typ string, created time.Time, payload []byte) []byte {
	b := make([]byte, 0, len(payload)+len(id)+len(typ)+80)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `","timestamp":"`...)
	b = created.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b = append(b, payload...)
	b = append(b, '}')
	return b
}

// attempt is one attempt to send.
type attempt struct {
	DeliveryID string
	Number     int
	Endpoint   *endpointConfig
	Msg        *message
	// TraceParent is the W3C traceparent of the attempt's span, sent so
	// that receivers can join the trace ("" when tracing is off).
	TraceParent string
	// out is the message as the destination gets it.
	out destination.Message
}

// send makes the attempt through the endpoint's target. It never fails:
// every failure is an outcome recorded on the attempt.
func (a *attempt) send(ctx context.Context, now time.Time) *destination.Result {
	a.out = destination.Message{
		ID: a.Msg.ID, EventType: a.Msg.Type, DeliveryID: a.DeliveryID, Attempt: a.Number,
		OrderingKey: a.Msg.OrderingKey, Body: a.Msg.Body, Signer: a.Endpoint.signerAt(now), TraceParent: a.TraceParent,
	}
	return a.Endpoint.target.Send(ctx, &a.out)
}
