// Package transform runs endpoints' JavaScript transformations (goja): a
// script defines function handler(webhook) { ... return webhook }, where
// webhook holds eventType, payload (the JSON envelope the endpoint would
// receive, parsed), headers (an object of extra headers to send) and, for
// HTTP endpoints, method and url. What it returns is what the endpoint
// gets; null skips the event for that endpoint.
//
// A script is compiled once per configuration (Compile) and runs in a pool
// of runtimes of its own, so that nothing one endpoint's script leaves in
// its globals reaches another's. Each run has a time budget, after which
// it is interrupted; a bounded input and output; a call stack depth limit;
// and a memory budget: the allocations a run can make in one step (a
// string's repeat, an array's length, a buffer's size) are checked before
// they happen, and a watchdog interrupts a run while the process's heap
// has grown by more than the budget since it started. Garbage a run makes
// and drops costs time, which its time budget bounds; the garbage other
// goroutines make meanwhile (a busy server allocates hundreds of
// megabytes a second) is not charged to it, since the collector keeps the
// heap near its target whatever they churn. Runtimes have no I/O,
// timers or module loading: goja provides none unless given them.
package transform

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// Limits of a transformation. Zero fields take the defaults.
type Limits struct {
	// Timeout is a run's time budget (default 50ms).
	Timeout time.Duration
	// MaxScript is the longest script, in bytes (default 64 KiB).
	MaxScript int
	// MaxInput is the largest envelope a run is given (default 1 MiB).
	MaxInput int
	// MaxOutput is the largest payload a run may return (default 1 MiB).
	MaxOutput int
	// MaxMemory bounds what a run may allocate (default 64 MiB).
	MaxMemory int
}

// DefaultTimeout is a run's default time budget.
const DefaultTimeout = 50 * time.Millisecond

func (l *Limits) setDefaults() {
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxScript <= 0 {
		l.MaxScript = 64 << 10
	}
	if l.MaxInput <= 0 {
		l.MaxInput = 1 << 20
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = 1 << 20
	}
	if l.MaxMemory <= 0 {
		l.MaxMemory = 64 << 20
	}
}

// Engine compiles and runs transformations within its limits. Its
// watchdog starts with the first run.
type Engine struct {
	limits Limits

	// slots bounds the scripts running at once to the processors, so a
	// run's time budget is time it had a processor: runaway scripts queue
	// for a slot instead of starving every other run (and every other
	// delivery) of CPU.
	slots chan struct{}

	mu     sync.Mutex
	runs   map[*run]struct{}
	active bool
}

// New returns an engine with the given limits.
func New(l Limits) *Engine {
	l.setDefaults()
	return &Engine{limits: l, runs: make(map[*run]struct{}), slots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))}
}

// Limits returns the engine's limits, defaults applied.
func (e *Engine) Limits() Limits { return e.limits }

// Error is a transformation's failure: a syntax error, an exception, the
// time or memory budget exceeded, or a result that is not a webhook.
type Error struct {
	// Message says what went wrong: "TypeError: Cannot read property 'x'
	// of undefined".
	Message string
	// Line and Column locate it in the script (0: unknown).
	Line, Column int
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("transformation: %s (line %d, column %d)", e.Message, e.Line, e.Column)
	}
	return "transformation: " + e.Message
}

// Program is a compiled script with its pool of runtimes.
type Program struct {
	e    *Engine
	prg  *goja.Program
	pool sync.Pool // *vm
}

// vm is a runtime that has run its program: handler is defined.
type vm struct {
	rt      *goja.Runtime
	handler goja.Callable
	parse   goja.Callable
	stringf goja.Callable
}

// Compile compiles a script once; its errors are *Error values with the
// line and column.
func (e *Engine) Compile(script string) (*Program, error) {
	if len(script) > e.limits.MaxScript {
		return nil, &Error{Message: fmt.Sprintf("the script is %d bytes; the limit is %d", len(script), e.limits.MaxScript)}
	}
	if !strings.Contains(script, "handler") {
		return nil, &Error{Message: "define function handler(webhook) { ... return webhook }"}
	}
	prg, err := goja.Compile("transformation.js", script, true)
	if err != nil {
		var list parser.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			return nil, &Error{Message: "SyntaxError: " + list[0].Message, Line: list[0].Position.Line, Column: list[0].Position.Column}
		}
		var se *goja.CompilerSyntaxError
		if errors.As(err, &se) {
			if se.File != nil {
				pos := se.File.Position(se.Offset)
				return nil, &Error{Message: "SyntaxError: " + se.Message, Line: pos.Line, Column: pos.Column}
			}
			// "transformation.js: Line 2:12 Unexpected token ; (and 1 more errors)"
			if m := syntaxRE.FindStringSubmatch(se.Message); m != nil {
				line, _ := strconv.Atoi(m[1])
				col, _ := strconv.Atoi(m[2])
				return nil, &Error{Message: "SyntaxError: " + m[3], Line: line, Column: col}
			}
			return nil, &Error{Message: "SyntaxError: " + se.Message}
		}
		return nil, &Error{Message: err.Error()}
	}
	p := &Program{e: e, prg: prg}
	// Define the handler once, to report a script without one at save.
	v, err := p.newVM()
	if err != nil {
		return nil, err
	}
	p.pool.Put(v)
	return p, nil
}

var syntaxRE = regexp.MustCompile(`Line (\d+):(\d+) (.*)$`)

// maxArray bounds the length of arrays built in one step.
const maxArray = 1 << 20

// newVM returns a runtime that has run the program, its allocating
// built-ins guarded.
func (p *Program) newVM() (*vm, error) {
	rt := goja.New()
	rt.SetMaxCallStackSize(512)
	rt.SetFieldNameMapper(goja.TagFieldNameMapper("json", true))
	lim := p.e.limits
	guard(rt, lim)
	r := p.e.start(rt, nil)
	_, err := rt.RunProgram(p.prg)
	p.e.finish(r)
	if err != nil {
		return nil, p.e.errorOf(err, r)
	}
	h, ok := goja.AssertFunction(rt.Get("handler"))
	if !ok {
		return nil, &Error{Message: "the script does not define function handler(webhook)"}
	}
	json := rt.Get("JSON").ToObject(rt)
	parse, _ := goja.AssertFunction(json.Get("parse"))
	stringf, _ := goja.AssertFunction(json.Get("stringify"))
	return &vm{rt: rt, handler: h, parse: parse, stringf: stringf}, nil
}

// guard replaces the built-ins that allocate in proportion to an argument
// with versions that refuse more than the limits.
func guard(rt *goja.Runtime, lim Limits) {
	maxStr := int64(lim.MaxMemory / 4)
	str := rt.Get("String").ToObject(rt).Get("prototype").ToObject(rt)
	for _, name := range []string{"repeat", "padStart", "padEnd"} {
		orig, _ := goja.AssertFunction(str.Get(name))
		isRepeat := name == "repeat"
		_ = str.Set(name, func(call goja.FunctionCall) goja.Value {
			n := call.Argument(0).ToInteger()
			size := n
			if isRepeat {
				size = n * int64(len(call.This.String()))
			}
			if size > maxStr {
				panic(rt.NewTypeError("memory limit: %s would make a string of %d characters (the limit is %d)", name, size, maxStr))
			}
			v, err := orig(call.This, call.Arguments...)
			if err != nil {
				panic(err)
			}
			return v
		})
	}
	arrayProto := rt.Get("Array").ToObject(rt).Get("prototype").ToObject(rt)
	fill, _ := goja.AssertFunction(arrayProto.Get("fill"))
	_ = arrayProto.Set("fill", func(call goja.FunctionCall) goja.Value {
		if l := call.This.ToObject(rt).Get("length").ToInteger(); l > maxArray {
			panic(rt.NewTypeError("memory limit: fill of an array of %d elements (the limit is %d)", l, maxArray))
		}
		v, err := fill(call.This, call.Arguments...)
		if err != nil {
			panic(err)
		}
		return v
	})
	_, err := rt.RunString(fmt.Sprintf(`(function(){
  "use strict";
  const max = %d, maxBytes = %d;
  const A = Array;
  const checkLen = (n) => { if (typeof n === "number" && n > max) throw new RangeError("memory limit: an array of " + n + " elements (the limit is " + max + ")"); };
  const G = function Array(...args) { if (args.length === 1) checkLen(args[0]); return new A(...args); };
  Object.setPrototypeOf(G, A); G.prototype = A.prototype;
  Object.defineProperty(A.prototype, "constructor", {value: G, writable: true, configurable: true});
  const from = A.from;
  G.from = function(src, ...rest) { if (src && typeof src === "object") checkLen(src.length); return from.call(A, src, ...rest); };
  globalThis.Array = G;
  for (const name of ["ArrayBuffer", "SharedArrayBuffer", "Uint8Array", "Int8Array", "Uint8ClampedArray", "Uint16Array", "Int16Array", "Uint32Array", "Int32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"]) {
    const T = globalThis[name];
    if (!T) continue;
    const W = new Proxy(T, {construct(target, args) { if (typeof args[0] === "number" && args[0] * (target.BYTES_PER_ELEMENT || 1) > maxBytes) throw new RangeError("memory limit: a " + name + " of " + args[0] + " elements"); return Reflect.construct(target, args); }});
    globalThis[name] = W;
  }
})()`, maxArray, lim.MaxMemory/4))
	if err != nil {
		panic(fmt.Sprintf("transform: guard built-ins: %v", err))
	}
}

// run is one run the watchdog watches.
type run struct {
	rt      *goja.Runtime
	start   uint64 // the heap's objects when it started, in bytes
	limit   uint64
	reason  string
	timer   *time.Timer
	stopped bool
}

// heapMetric is the bytes of the heap's objects, live or not yet swept.
var heapMetric = "/memory/classes/heap/objects:bytes"

// heapObjects returns heapMetric's value now.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// start waits for a slot, registers a run with the watchdog and arms its
// time budget.
func (e *Engine) start(rt *goja.Runtime, _ any) *run {
	e.slots <- struct{}{}
	r := &run{rt: rt, start: heapObjects(), limit: uint64(e.limits.MaxMemory)}
	r.timer = time.AfterFunc(e.limits.Timeout, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if !r.stopped {
			r.reason = fmt.Sprintf("time budget exceeded: the script ran for more than %s and was stopped", e.limits.Timeout)
			rt.Interrupt(r.reason)
		}
	})
	e.mu.Lock()
	e.runs[r] = struct{}{}
	if !e.active {
		e.active = true
		go e.watch()
	}
	e.mu.Unlock()
	return r
}

// finish ends a run.
func (e *Engine) finish(r *run) {
	defer func() { <-e.slots }()
	r.timer.Stop()
	e.mu.Lock()
	r.stopped = true
	delete(e.runs, r)
	e.mu.Unlock()
	r.rt.ClearInterrupt()
}

// watch interrupts the runs during which the heap has grown by more than
// their memory budget, every millisecond while any run is going.
func (e *Engine) watch() {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for range t.C {
		now := heapObjects()
		e.mu.Lock()
		if len(e.runs) == 0 {
			e.active = false
			e.mu.Unlock()
			return
		}
		for r := range e.runs {
			if now > r.start && now-r.start > r.limit && r.reason == "" {
				r.reason = fmt.Sprintf("memory limit exceeded: the script held more than %d MiB and was stopped", r.limit>>20)
				r.rt.Interrupt(r.reason)
			}
		}
		e.mu.Unlock()
	}
}

// errorOf turns a run's error into an *Error with the script's line and
// column.
func (e *Engine) errorOf(err error, r *run) error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		out := &Error{Message: fmt.Sprint(ie.Value())}
		locate(out, ie.Stack())
		return out
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		msg := ex.Value().String()
		if o, ok := ex.Value().(*goja.Object); ok {
			if s := o.Get("message"); s != nil && !goja.IsUndefined(s) {
				name := "Error"
				if n := o.Get("name"); n != nil && !goja.IsUndefined(n) {
					name = n.String()
				}
				msg = name + ": " + s.String()
			}
		}
		out := &Error{Message: msg}
		locate(out, ex.Stack())
		return out
	}
	var se *goja.StackOverflowError
	if errors.As(err, &se) {
		return &Error{Message: "call stack too deep (infinite recursion?)"}
	}
	return &Error{Message: err.Error()}
}

// locate sets the position of the innermost frame in the script.
func locate(e *Error, stack []goja.StackFrame) {
	for _, f := range stack {
		if f.SrcName() == "transformation.js" {
			p := f.Position()
			e.Line, e.Column = p.Line, p.Column
			return
		}
	}
}
