package destination

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Registry holds the destination types an installation offers, in the
// order they were given. It is read-only once made.
type Registry struct {
	specs []*Spec
	byT   map[Type]*Spec
}

// NewRegistry returns a registry of the given types. It panics on a
// programming error: a type given twice, or without a Type or Open.
func NewRegistry(specs ...*Spec) *Registry {
	r := &Registry{byT: make(map[Type]*Spec, len(specs))}
	for _, s := range specs {
		switch {
		case s.Type == "" || s.Open == nil:
			panic(fmt.Sprintf("destination: spec %q needs a Type and Open", s.Name))
		case r.byT[s.Type] != nil:
			panic(fmt.Sprintf("destination: type %s registered twice", s.Type))
		case s.Type != HTTP && !s.Managed && (s.Field == "" || s.Check == nil):
			panic(fmt.Sprintf("destination: type %s needs a Field and Check", s.Type))
		}
		r.specs = append(r.specs, s)
		r.byT[s.Type] = s
	}
	return r
}

// Specs returns the registered types' specs, in registration order.
func (r *Registry) Specs() []*Spec { return r.specs }

// Lookup returns the spec of a type.
func (r *Registry) Lookup(t Type) (*Spec, bool) {
	s, ok := r.byT[t]
	return s, ok
}

// ByField returns the spec whose configuration is the endpoint field
// called name ("rabbitmq").
func (r *Registry) ByField(name string) (*Spec, bool) {
	for _, s := range r.specs {
		if s.Field != "" && s.Field == name {
			return s, true
		}
	}
	return nil, false
}

// Check validates a configuration of type t given at save: first the
// declared fields' own rules (see Field), then the type's Check. stored is
// the endpoint's current configuration, whose secrets a masked value sent
// back keeps (nil on create). Errors are *FieldError values naming the
// field, or errors about the type itself.
func (r *Registry) Check(t Type, cfg, stored json.RawMessage, p Policy) (Checked, error) {
	s, ok := r.byT[t]
	if !ok {
		return Checked{}, fmt.Errorf("destination type %s is not available", t)
	}
	if s.Check == nil {
		return Checked{}, errNoCheck
	}
	norm, err := s.normalize(cfg, stored)
	if err != nil {
		return Checked{}, err
	}
	return s.Check(norm, p)
}

// Open returns the drivers of the registry's types for an engine, each
// opened on first use.
func (r *Registry) Open(env Env) *Drivers {
	env.setDefaults()
	return &Drivers{reg: r, env: env, open: make(map[Type]Driver)}
}

// Drivers are the open drivers of one engine, one per type in use.
type Drivers struct {
	reg *Registry
	env Env

	mu     sync.Mutex
	open   map[Type]Driver
	closed bool
}

// ErrClosed is returned by Drivers.Prepare once the drivers are closed.
var ErrClosed = errors.New("destination: drivers closed")

// Driver returns the driver of type t, opening it on first use.
func (d *Drivers) Driver(t Type) (Driver, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if drv := d.open[t]; drv != nil {
		return drv, nil
	}
	s, ok := d.reg.byT[t]
	if !ok {
		return nil, fmt.Errorf("destination type %s is not available in this build of Herald", t)
	}
	drv, err := s.Open(d.env)
	if err != nil {
		return nil, fmt.Errorf("open %s destinations: %w", s.Name, err)
	}
	d.open[t] = drv
	return drv, nil
}

// Prepare returns the target of an endpoint, from its type's driver.
func (d *Drivers) Prepare(ep *Endpoint) (Target, error) {
	t := ep.Type
	if t == "" {
		t = HTTP
	}
	drv, err := d.Driver(t)
	if err != nil {
		return nil, err
	}
	return drv.Prepare(ep)
}

// Close closes every open driver.
func (d *Drivers) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	var errs []error
	for t, drv := range d.open {
		if err := drv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s destinations: %w", t, err))
		}
	}
	clear(d.open)
	return errors.Join(errs...)
}
