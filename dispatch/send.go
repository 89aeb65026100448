package dispatch

import (
	"context"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/transform"
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
	// Test marks a test event (its envelope has "test": true).
	Test bool
}

// RenderEnvelope returns the body an endpoint receives for an event (before
// any transformation): {"id","type","timestamp","data"}, with "test": true
// before "data" for a test event.
func RenderEnvelope(id, typ string, created time.Time, payload []byte, test bool) []byte {
	return renderEnvelope(id, typ, created, payload, test)
}

// renderEnvelope returns the request body of an event. A test event's
// says "test": true, under the signature, so that no receiver can mistake
// it for a business event.
func renderEnvelope(id, typ string, created time.Time, payload []byte, test bool) []byte {
	b := make([]byte, 0, len(payload)+len(id)+len(typ)+96)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `","timestamp":"`...)
	b = created.UTC().AppendFormat(b, time.RFC3339Nano)
	if test {
		b = append(b, `","test":true,"data":`...)
	} else {
		b = append(b, `","data":`...)
	}
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

// send makes the attempt through the endpoint's target, after its
// transformation if it has one. It never fails: every failure is an
// outcome recorded on the attempt.
func (a *attempt) send(ctx context.Context, now time.Time, policy destination.Policy) *destination.Result {
	ep := a.Endpoint
	a.out = destination.Message{
		ID: a.Msg.ID, EventType: a.Msg.Type, DeliveryID: a.DeliveryID, Attempt: a.Number,
		OrderingKey: a.Msg.OrderingKey, Body: a.Msg.Body, Signer: ep.signerAt(now), TraceParent: a.TraceParent,
		Test: a.Msg.Test,
	}
	if ep.transform != nil {
		if r := a.transform(now, policy); r != nil {
			return r
		}
	}
	return ep.target.Send(ctx, &a.out)
}

// transform runs the endpoint's transformation on the message. It returns
// the attempt's result if the message is not to be sent: the script
// skipped it (the delivery succeeds without a request: Skipped), failed (a
// permanent failure, with the script's line and column), or changed the
// URL to one the destination policy refuses.
func (a *attempt) transform(started time.Time, policy destination.Policy) *destination.Result {
	ep := a.Endpoint
	http := ep.Type == destination.HTTP
	out, err := ep.transform.Run(transform.Input{EventType: a.Msg.Type, Body: a.Msg.Body, HTTP: http, Method: "POST", URL: ep.URL})
	r := &destination.Result{Started: started, RequestURL: ep.URL}
	done := func(o destination.Outcome, msg string) *destination.Result {
		r.Completed = time.Now()
		if r.Completed.Before(started) {
			r.Completed = started
		}
		r.Outcome, r.Error = o, msg
		return r
	}
	switch {
	case err != nil:
		return done(destination.Permanent, err.Error())
	case out.Skip:
		r.ResponseBody = "skipped: the endpoint's transformation returned null for this event, so it was not sent"
		return done(destination.Skipped, "")
	}
	a.out.Body, a.out.Extra, a.out.Method = out.Body, out.Headers, out.Method
	if out.URL != "" && http {
		if _, err := policy.CheckURL(out.URL); err != nil {
			return done(destination.Permanent, "transformation: the url it returned is refused: "+err.Error())
		}
		a.out.URL = out.URL
	}
	return nil
}
