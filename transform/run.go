package transform

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/dop251/goja"

	"github.com/heraldhq/herald/webhook"
)

// Input is what a transformation is given.
type Input struct {
	EventType string
	// Body is the JSON envelope the endpoint would receive.
	Body []byte
	// HTTP reports an HTTP endpoint: the webhook then has method and url.
	HTTP   bool
	Method string
	URL    string
}

// Output is what a transformation returned.
type Output struct {
	// Skip: the script returned null; the event is not sent to the
	// endpoint.
	Skip bool
	// Body is the payload as sent: JSON, or the string the script
	// returned as payload.
	Body []byte
	// Headers are the headers the script set.
	Headers []webhook.Header
	// Method and URL are what the script set (HTTP only; "" unchanged).
	Method, URL string
}

// Run runs the program on one input, within the engine's limits. Its
// errors are *Error values.
func (p *Program) Run(in Input) (Output, error) {
	lim := p.e.limits
	if len(in.Body) > lim.MaxInput {
		return Output{}, &Error{Message: fmt.Sprintf("the event is %d bytes; transformations take at most %d", len(in.Body), lim.MaxInput)}
	}
	v, _ := p.pool.Get().(*vm)
	if v == nil {
		var err error
		if v, err = p.newVM(); err != nil {
			return Output{}, err
		}
	}
	out, err, reusable := p.runOn(v, in)
	if reusable {
		p.pool.Put(v)
	}
	return out, err
}

func (p *Program) runOn(v *vm, in Input) (out Output, err error, reusable bool) {
	rt := v.rt
	r := p.e.start(rt, nil)
	defer func() {
		p.e.finish(r)
		if x := recover(); x != nil {
			out, err, reusable = Output{}, &Error{Message: fmt.Sprint(x)}, false
		}
	}()
	payload, err := v.parse(goja.Undefined(), rt.ToValue(string(in.Body)))
	if err != nil {
		return Output{}, p.e.errorOf(err, r), r.reason == ""
	}
	wh := rt.NewObject()
	_ = wh.Set("eventType", in.EventType)
	_ = wh.Set("payload", payload)
	_ = wh.Set("headers", rt.NewObject())
	if in.HTTP {
		_ = wh.Set("method", in.Method)
		_ = wh.Set("url", in.URL)
	}
	res, err := v.handler(goja.Undefined(), wh)
	if err != nil {
		return Output{}, p.e.errorOf(err, r), r.reason == ""
	}
	if goja.IsNull(res) {
		return Output{Skip: true}, nil, true
	}
	if goja.IsUndefined(res) {
		return Output{}, &Error{Message: "handler returned undefined: return the webhook (or null to skip the event)"}, true
	}
	obj, ok := res.(*goja.Object)
	if !ok || obj.ClassName() != "Object" {
		return Output{}, &Error{Message: "handler must return an object like its webhook argument (or null), got " + res.String()}, true
	}
	// The payload: JSON, or a string sent as it is.
	pv := obj.Get("payload")
	switch {
	case pv == nil || goja.IsUndefined(pv):
		return Output{}, &Error{Message: "the returned webhook has no payload"}, true
	case pv.ExportType() != nil && pv.ExportType().Kind().String() == "string":
		out.Body = []byte(pv.String())
	default:
		s, err := v.stringf(goja.Undefined(), pv)
		if err != nil {
			return Output{}, p.e.errorOf(err, r), r.reason == ""
		}
		out.Body = []byte(s.String())
	}
	if len(out.Body) > p.e.limits.MaxOutput {
		return Output{}, &Error{Message: fmt.Sprintf("the returned payload is %d bytes; the limit is %d", len(out.Body), p.e.limits.MaxOutput)}, true
	}
	if hv := obj.Get("headers"); hv != nil && !goja.IsUndefined(hv) && !goja.IsNull(hv) {
		ho, ok := hv.(*goja.Object)
		if !ok {
			return Output{}, &Error{Message: "headers must be an object of header names and string values"}, true
		}
		keys := ho.Keys()
		sort.Strings(keys)
		if len(keys) > 32 {
			return Output{}, &Error{Message: fmt.Sprintf("the returned webhook has %d headers; the limit is 32", len(keys))}, true
		}
		for _, k := range keys {
			val := ho.Get(k).String()
			if len(k)+len(val) > 8<<10 {
				return Output{}, &Error{Message: fmt.Sprintf("header %q is too long", k)}, true
			}
			out.Headers = append(out.Headers, webhook.Header{Name: k, Value: val})
		}
		if _, err := webhook.CheckHeaders("headers", out.Headers, webhook.Auth{Type: webhook.AuthNone}); err != nil {
			return Output{}, &Error{Message: "returned headers: " + strings.TrimPrefix(err.Error(), "headers: ")}, true
		}
	}
	if in.HTTP {
		if m := obj.Get("method"); m != nil && !goja.IsUndefined(m) && m.String() != in.Method {
			switch method := strings.ToUpper(m.String()); method {
			case http.MethodPost, http.MethodPut, http.MethodPatch:
				out.Method = method
			default:
				return Output{}, &Error{Message: fmt.Sprintf("method must be POST, PUT or PATCH, got %q", m.String())}, true
			}
		}
		if u := obj.Get("url"); u != nil && !goja.IsUndefined(u) && u.String() != in.URL {
			out.URL = u.String()
		}
	}
	return out, nil, true
}
