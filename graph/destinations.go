package graph

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fault"
)

// destinationConfig returns the configuration of a broker endpoint whose
// spec's field is field, secrets masked, as the GraphQL type T; nil for
// endpoints of other types.
func destinationConfig[T any](r *Resolver, ep *ent.Endpoint, field string) (*T, error) {
	spec, ok := r.endpoints.Destinations.ByField(field)
	if !ok || ep.Type != spec.Type || len(ep.Destination) == 0 {
		return nil, nil
	}
	var out T
	if err := json.Unmarshal(spec.Mask(ep.Destination), &out); err != nil {
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
