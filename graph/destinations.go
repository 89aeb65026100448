package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph/model"
	"github.com/heraldhq/herald/transform"
	"github.com/heraldhq/herald/webhook"
)

// destinationConfig returns the configuration of a broker endpoint whose
// spec's field is field, secrets masked, as the GraphQL type T; nil for
// endpoints of other types.
func destinationConfig[T any](r *Resolver, ep *ent.Endpoint, field string) (*T, error) {
	spec, ok := r.endpoints.Destinations.ByField(field)
	if !ok || ep.Type != spec.Type || len(ep.Destination) == 0 {
		return nil, nil
	}
	plain, err := r.endpoints.Open(ep)
	if err != nil {
		return nil, err
	}
	var out T
	if err := json.Unmarshal(spec.Mask(plain.Destination), &out); err != nil {
		return nil, fmt.Errorf("read the %s configuration of endpoint %s: %w", spec.Name, ep.ID, err)
	}
	return &out, nil
}

// destinationInput copies into in the endpoint type and the broker
// configuration set in a create or update input: the input's fields named
// after the destination types' specs (rabbitmq, kafka, ...), found by
// their JSON names so that a new type needs no code here.
func (r *Resolver) destinationInput(in *endpoints.Input, typ *destination.Type, input any) error {
	in.Type = typ
	v := reflect.ValueOf(input).Elem()
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		spec, ok := r.endpoints.Destinations.ByField(name)
		if !ok {
			continue
		}
		f := v.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		if in.Destination != nil {
			return fault.Invalid("input."+name, "cannot be set with input.%s: set the configuration of the endpoint's one type", in.DestinationField)
		}
		b, err := json.Marshal(f.Interface())
		if err != nil {
			return fmt.Errorf("encode input.%s: %w", name, err)
		}
		in.Destination, in.DestinationField = b, spec.Field
		if in.Type == nil {
			t := spec.Type
			in.Type = &t
		}
	}
	return nil
}

// testTransformation runs a script on one event's envelope, as the
// engine would before sending it.
func (r *Resolver) testTransformation(ctx context.Context, script string, payload json.RawMessage, eventType, eventID, url *string) (*model.TransformationTest, error) {
	tr := r.engine.Transforms()
	var body []byte
	typ := deref(eventType)
	switch {
	case eventID != nil:
		ev, err := r.client.Event.Get(ctx, *eventID)
		if ent.IsNotFound(err) {
			return nil, fault.NotFoundf("event %q not found", *eventID)
		}
		if err != nil {
			return nil, fmt.Errorf("read event %s: %w", *eventID, err)
		}
		typ = ev.EventType
		body = dispatch.RenderEnvelope(ev.ID, ev.EventType, ev.CreatedAt, ev.Payload, ev.Test)
	case payload != nil:
		if typ == "" {
			typ = "test.ping"
		}
		if len(payload) > tr.Limits().MaxInput {
			return nil, fault.Invalid("payload", "is %d bytes; the limit is %d", len(payload), tr.Limits().MaxInput)
		}
		body = dispatch.RenderEnvelope("evt_test", typ, r.now(), payload, false)
	default:
		return nil, fault.Invalid("payload", "give a payload (with its eventType) or the eventId of one of the app's events")
	}
	out := &model.TransformationTest{Headers: []*webhook.Header{}}
	fail := func(err error) (*model.TransformationTest, error) {
		var te *transform.Error
		if errors.As(err, &te) {
			msg := te.Message
			out.Error = &msg
			if te.Line > 0 {
				out.Line, out.Column = &te.Line, &te.Column
			}
			return out, nil
		}
		return nil, err
	}
	p, err := tr.Compile(script)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	res, err := p.Run(transform.Input{EventType: typ, Body: body, HTTP: url != nil, Method: "POST", URL: deref(url)})
	out.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		return fail(err)
	}
	out.Skipped = res.Skip
	if !res.Skip {
		b := string(res.Body)
		out.Body = &b
	}
	for i := range res.Headers {
		out.Headers = append(out.Headers, &res.Headers[i])
	}
	if res.Method != "" {
		out.Method = &res.Method
	}
	if res.URL != "" {
		out.URL = &res.URL
	}
	return out, nil
}
