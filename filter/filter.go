// Package filter matches events against an endpoint's payload filter.
//
// A filter is a JSON object over an event's envelope: {"type", "id",
// "timestamp", "data"}. Each key is a path and each value a condition the
// value at that path must meet; all of them must hold:
//
//	{"type": "order.created", "data.total": {"$gte": 1000}, "data.items.*.sku": {"$startsWith": "TSHIRT"}}
//
// Paths are dotted: "data.customer.country". On an array a segment is an
// index ("data.items.0.sku") or "*", any element: the condition holds if
// it holds for at least one element.
//
// A condition is a value (equality) or an object of operators, all of
// which must hold: $eq, $ne, $gt, $gte, $lt, $lte (numbers with numbers,
// strings with strings), $in and $nin (a list of values), $exists (true or
// false), $startsWith and $endsWith (strings). Filters combine with $and
// and $or (lists of filters) and $not (a filter).
//
// A path that is missing satisfies only $exists: false, $ne and $nin. A
// comparison of values of different kinds is false. Numbers compare as
// numbers (1 equals 1.0).
//
// Compile validates a filter once, reporting the offending path; Match is
// then cheap and allocation-free apart from decoding the payload, which an
// Envelope does once for every filter it is matched against.
package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits of a filter.
const (
	// MaxSize is the largest filter, in bytes of JSON.
	MaxSize = 16 << 10
	// MaxDepth bounds the nesting of $and, $or and $not.
	MaxDepth = 8
)

// Error says what is wrong with a filter and where: Path is the key path
// of the offending part ("data.total.$gt", "$or.1.type").
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

func errorf(path, format string, args ...any) *Error {
	return &Error{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Filter is a compiled filter. Its zero value and nil match every event.
type Filter struct {
	root node
}

// node is a compiled condition over an envelope.
type node interface {
	match(env *Envelope) bool
}

// Compile parses and validates a filter. An empty or null filter matches
// everything and compiles to nil.
func Compile(raw []byte) (*Filter, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if len(raw) > MaxSize {
		return nil, errorf("", "is %d bytes; a filter has at most %d", len(raw), MaxSize)
	}
	v, err := decode(raw)
	if err != nil {
		return nil, errorf("", "is not valid JSON: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf("", "must be a JSON object such as {\"data.total\": {\"$gte\": 100}}")
	}
	n, err := compileObject(obj, "", 0)
	if err != nil {
		return nil, err
	}
	return &Filter{root: n}, nil
}

// Match reports whether an event matches the filter.
func (f *Filter) Match(env *Envelope) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.match(env)
}

// Envelope is an event as filters see it. Its payload is decoded once, the
// first time a filter looks into it.
type Envelope struct {
	ID, Type, Timestamp string
	Payload             []byte

	data    any
	decoded bool
	bad     bool
}

// dataValue returns the decoded payload (nil, false if it is not JSON).
func (e *Envelope) dataValue() (any, bool) {
	if !e.decoded {
		e.decoded = true
		v, err := decode(e.Payload)
		e.data, e.bad = v, err != nil
	}
	return e.data, !e.bad
}

func decode(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// compileObject compiles a filter object: the conjunction of its keys.
func compileObject(obj map[string]any, path string, depth int) (node, error) {
	if depth > MaxDepth {
		return nil, errorf(path, "nests $and, $or and $not more than %d deep", MaxDepth)
	}
	var all and
	for _, key := range sortedKeys(obj) {
		val := obj[key]
		at := join(path, key)
		switch key {
		case "$and", "$or":
			list, ok := val.([]any)
			if !ok || len(list) == 0 {
				return nil, errorf(at, "must be a non-empty list of filters")
			}
			var parts []node
			for i, item := range list {
				sub, ok := item.(map[string]any)
				if !ok {
					return nil, errorf(join(at, strconv.Itoa(i)), "must be a filter object")
				}
				n, err := compileObject(sub, join(at, strconv.Itoa(i)), depth+1)
				if err != nil {
					return nil, err
				}
				parts = append(parts, n)
			}
			if key == "$and" {
				all = append(all, and(parts))
			} else {
				all = append(all, or(parts))
			}
		case "$not":
			sub, ok := val.(map[string]any)
			if !ok {
				return nil, errorf(at, "must be a filter object")
			}
			n, err := compileObject(sub, at, depth+1)
			if err != nil {
				return nil, err
			}
			all = append(all, not{n})
		default:
			if strings.HasPrefix(key, "$") {
				return nil, errorf(at, "unknown operator: use $and, $or or $not here, or a path such as \"data.total\"")
			}
			segs, err := parsePath(key, at)
			if err != nil {
				return nil, err
			}
			cond, err := compileCondition(val, at)
			if err != nil {
				return nil, err
			}
			all = append(all, &pathCond{segs: segs, cond: cond})
		}
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return all, nil
}

// segment is one step of a path: a key, an index, or any element.
type segment struct {
	key   string
	index int // -1: not an index
	any   bool
}

func parsePath(p, at string) ([]segment, error) {
	parts := strings.Split(p, ".")
	switch parts[0] {
	case "type", "id", "timestamp":
		if len(parts) > 1 {
			return nil, errorf(at, "%s is a string: it has no fields", parts[0])
		}
	case "data":
	default:
		return nil, errorf(at, "paths start with type, id, timestamp or data (the event's payload), as in \"data.%s\"", p)
	}
	segs := make([]segment, 0, len(parts))
	for _, part := range parts {
		switch {
		case part == "":
			return nil, errorf(at, "has an empty segment")
		case part == "*":
			segs = append(segs, segment{any: true, index: -1})
		default:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 {
				i = -1
			}
			segs = append(segs, segment{key: part, index: i})
		}
	}
	return segs, nil
}

// compileCondition compiles what a path's value must meet.
func compileCondition(val any, at string) (cond, error) {
	obj, ok := val.(map[string]any)
	if !ok || !hasOperator(obj) {
		return opEq{val}, nil // a value: equality
	}
	var all condAnd
	for _, op := range sortedKeys(obj) {
		arg := obj[op]
		opAt := join(at, op)
		if !strings.HasPrefix(op, "$") {
			return nil, errorf(opAt, "mixes operators with a field: write {\"$eq\": {...}} to compare with an object")
		}
		switch op {
		case "$eq":
			all = append(all, opEq{arg})
		case "$ne":
			all = append(all, opNe{arg})
		case "$gt", "$gte", "$lt", "$lte":
			if !isNumber(arg) && !isString(arg) {
				return nil, errorf(opAt, "compares with a number or a string, got %s", kind(arg))
			}
			all = append(all, opCmp{op: op, arg: arg})
		case "$in", "$nin":
			list, ok := arg.([]any)
			if !ok {
				return nil, errorf(opAt, "takes a list of values, got %s", kind(arg))
			}
			if op == "$in" {
				all = append(all, opIn{list})
			} else {
				all = append(all, opNin{list})
			}
		case "$exists":
			b, ok := arg.(bool)
			if !ok {
				return nil, errorf(opAt, "takes true or false, got %s", kind(arg))
			}
			all = append(all, opExists{b})
		case "$startsWith", "$endsWith":
			str, ok := arg.(string)
			if !ok {
				return nil, errorf(opAt, "takes a string, got %s", kind(arg))
			}
			all = append(all, opAffix{suffix: op == "$endsWith", s: str})
		default:
			return nil, errorf(opAt, "unknown operator: use $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $startsWith or $endsWith")
		}
	}
	return all, nil
}

func hasOperator(obj map[string]any) bool {
	for k := range obj {
		if strings.HasPrefix(k, "$") {
			return true
		}
	}
	return false
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	default:
		return "an object"
	}
}

func isNumber(v any) bool { _, ok := v.(json.Number); return ok }
func isString(v any) bool { _, ok := v.(string); return ok }

// Nodes.

type and []node

func (a and) match(env *Envelope) bool {
	for _, n := range a {
		if !n.match(env) {
			return false
		}
	}
	return true
}

type or []node

func (o or) match(env *Envelope) bool {
	for _, n := range o {
		if n.match(env) {
			return true
		}
	}
	return false
}

type not struct{ n node }

func (n not) match(env *Envelope) bool { return !n.n.match(env) }

// pathCond is a condition on the value(s) at a path.
type pathCond struct {
	segs []segment
	cond cond
}

func (p *pathCond) match(env *Envelope) bool {
	var root any
	switch p.segs[0].key {
	case "type":
		return p.cond.test(env.Type, true)
	case "id":
		return p.cond.test(env.ID, true)
	case "timestamp":
		return p.cond.test(env.Timestamp, true)
	default:
		v, ok := env.dataValue()
		if !ok {
			return p.cond.test(nil, false)
		}
		root = v
	}
	return walk(root, p.segs[1:], p.cond)
}

// walk follows segs from v and tests cond on what it reaches; "*" tries
// every element.
func walk(v any, segs []segment, c cond) bool {
	for i, s := range segs {
		switch x := v.(type) {
		case map[string]any:
			if s.any {
				return c.test(nil, false)
			}
			next, ok := x[s.key]
			if !ok {
				return c.test(nil, false)
			}
			v = next
		case []any:
			if s.any {
				for _, el := range x {
					if walk(el, segs[i+1:], c) {
						return true
					}
				}
				return false
			}
			if s.index < 0 || s.index >= len(x) {
				return c.test(nil, false)
			}
			v = x[s.index]
		default:
			return c.test(nil, false)
		}
	}
	return c.test(v, true)
}

// cond tests a value; present is false when the path is missing.
type cond interface {
	test(v any, present bool) bool
}

type condAnd []cond

func (a condAnd) test(v any, present bool) bool {
	for _, c := range a {
		if !c.test(v, present) {
			return false
		}
	}
	return true
}

type opEq struct{ want any }

func (o opEq) test(v any, present bool) bool { return present && equal(v, o.want) }

type opNe struct{ want any }

func (o opNe) test(v any, present bool) bool { return !present || !equal(v, o.want) }

type opIn struct{ list []any }

func (o opIn) test(v any, present bool) bool {
	if !present {
		return false
	}
	for _, w := range o.list {
		if equal(v, w) {
			return true
		}
	}
	return false
}

type opNin struct{ list []any }

func (o opNin) test(v any, present bool) bool { return !opIn(o).test(v, present) }

type opExists struct{ want bool }

func (o opExists) test(_ any, present bool) bool { return present == o.want }

type opAffix struct {
	suffix bool
	s      string
}

func (o opAffix) test(v any, present bool) bool {
	str, ok := v.(string)
	if !present || !ok {
		return false
	}
	if o.suffix {
		return strings.HasSuffix(str, o.s)
	}
	return strings.HasPrefix(str, o.s)
}

type opCmp struct {
	op  string
	arg any
}

func (o opCmp) test(v any, present bool) bool {
	if !present {
		return false
	}
	var c int
	switch a := o.arg.(type) {
	case json.Number:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		x, y, ok := floats(n, a)
		if !ok {
			return false
		}
		c = cmpFloat(x, y)
	case string:
		s, ok := v.(string)
		if !ok {
			return false
		}
		c = strings.Compare(s, a)
	default:
		return false
	}
	switch o.op {
	case "$gt":
		return c > 0
	case "$gte":
		return c >= 0
	case "$lt":
		return c < 0
	default:
		return c <= 0
	}
}

func floats(a, b json.Number) (float64, float64, bool) {
	x, err1 := a.Float64()
	y, err2 := b.Float64()
	return x, y, err1 == nil && err2 == nil && !math.IsNaN(x) && !math.IsNaN(y)
}

func cmpFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// equal is JSON equality: numbers by value, objects and lists deeply.
func equal(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		f, g, ok := floats(x, y)
		return ok && f == g
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b // nil, bool, string
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Insertion sort: filters have a handful of keys.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
