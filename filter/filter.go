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
// Compile validates a filter once, reporting the offending path, and bounds
// its shape (MaxSize, MaxDepth, MaxTerms, MaxList, MaxWildcards); $in and
// $nin lists are compiled into sets. Match is then cheap and
// allocation-free apart from decoding the payload, which an Envelope does
// once for every filter it is matched against.
//
// Matching is bounded in work: each step (a condition tested, an element
// of an array visited, a value compared) spends one unit of a budget of
// MaxSteps, and a match that would need more stops with ErrTooExpensive,
// so that no payload makes one filter cost more than a bound, however
// large its arrays are.
package filter

import (
	"bytes"
	"encoding/json"
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
	// MaxTerms bounds the conditions of a filter: its paths and the
	// operators applied to them, counted over every branch.
	MaxTerms = 100
	// MaxList bounds the values of one $in or $nin list.
	MaxList = 1000
	// MaxWildcards bounds the "*" segments of one path.
	MaxWildcards = 2
	// MaxSegments bounds the segments of one path.
	MaxSegments = 16
	// MaxSteps is the work one match may do: conditions tested, array
	// elements visited and values compared. Matching an ordinary event
	// takes a few dozen steps.
	MaxSteps = 10000
	// MaxEventSteps is the work all of an app's filters may do together on
	// one event, when publishing (see Envelope.Budget): ten filters at
	// their most, a few milliseconds, however many endpoints the app has.
	MaxEventSteps = 10 * MaxSteps
)

// ErrTooExpensive is the error of a match that needed more than MaxSteps:
// the filter walks too much of this event (large arrays under "*", deep
// values compared whole).
var ErrTooExpensive = fmt.Errorf("the filter needed more work than it may do on this event (%d steps, and %d for all of the app's filters together): simplify it (fewer \"*\" over large arrays, smaller $in lists)", MaxSteps, MaxEventSteps)

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
	// early are the conditions on an event's type and payload, which
	// Prepare evaluates before the event has an ID and a timestamp; late
	// reports that some condition is on those.
	early []*pathCond
	late  bool
}

// node is a compiled condition over an envelope.
type node interface {
	match(m *matcher) bool
}

// matcher is one match in progress: the envelope and the work left.
type matcher struct {
	env   *Envelope
	steps int
	// over is set once the budget is spent; every test is then false
	// and the match ends as fast as it can.
	over bool
	// early holds the results of the early conditions when Prepare
	// worked them out already (nil: evaluate them).
	early []bool
}

// spend takes n steps of the budget and reports whether it held.
func (m *matcher) spend(n int) bool {
	if m.over {
		return false
	}
	m.steps -= n
	if m.steps < 0 {
		m.over = true
		return false
	}
	return true
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
	v, err := decode(raw, nil)
	if err != nil {
		return nil, errorf("", "is not valid JSON: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf("", "must be a JSON object such as {\"data.total\": {\"$gte\": 100}}")
	}
	c := &compiler{}
	n, err := c.object(obj, "", 0)
	if err != nil {
		return nil, err
	}
	return &Filter{root: n, early: c.early, late: c.late}, nil
}

// Match reports whether an event matches the filter, spending at most
// MaxSteps; past that it returns ErrTooExpensive.
func (f *Filter) Match(env *Envelope) (bool, error) {
	if f == nil || f.root == nil {
		return true, nil
	}
	m := env.matcher()
	ok := f.root.match(&m)
	env.spent(m)
	if m.over {
		return false, ErrTooExpensive
	}
	return ok, nil
}

// Prepared is a match of an event against a filter made in two steps:
// Prepare does the work on the event's type and payload, before the event
// has its ID and timestamp; Match then finishes it in a few steps per
// condition, without looking at the payload again. Publishing uses it to
// do the work of filters before the transaction that stores the event.
type Prepared struct {
	f *Filter
	// done reports that the result is known already (matched).
	done, matched bool
	early         []bool
}

// Prepare matches an event's type and payload (env's ID and Timestamp
// are not read) within MaxSteps, and returns the match to finish with
// Prepared.Match once the event has an ID and a timestamp. It returns
// ErrTooExpensive past its budget.
func (f *Filter) Prepare(env *Envelope) (Prepared, error) {
	if f == nil || f.root == nil {
		return Prepared{done: true, matched: true}, nil
	}
	if !f.late {
		ok, err := f.Match(env)
		return Prepared{done: true, matched: ok}, err
	}
	m := env.matcher()
	defer env.spent(m)
	early := make([]bool, len(f.early))
	for i, pc := range f.early {
		early[i] = pc.match(&m)
		if m.over {
			return Prepared{}, ErrTooExpensive
		}
	}
	return Prepared{f: f, early: early}, nil
}

// Match finishes a prepared match with the event's ID and timestamp. The
// zero Prepared matches everything.
func (p Prepared) Match(id, timestamp string) bool {
	if p.done || p.f == nil {
		return p.done && p.matched || p.f == nil && !p.done
	}
	m := matcher{env: &Envelope{ID: id, Timestamp: timestamp}, steps: MaxSteps, early: p.early}
	return p.f.root.match(&m) && !m.over
}

// Envelope is an event as filters see it. Its payload is decoded once, the
// first time a filter looks into it.
type Envelope struct {
	ID, Type, Timestamp string
	Payload             []byte
	// Budget, if set, is the work left for every filter matched against
	// the envelope together (each still at most MaxSteps): a matcher of
	// many filters sets it (MaxEventSteps, say) so that an event costs a
	// bound however many filters it meets. Matches spend it.
	Budget *int
	// Yield, if set, is called now and then while the payload is decoded
	// (see decode), so that the caller can let other goroutines run
	// during the decoding of a large payload.
	Yield func()

	data    any
	decoded bool
	bad     bool
}

// matcher starts a match of the envelope: MaxSteps, or what is left of
// its Budget if less.
func (e *Envelope) matcher() matcher {
	steps := MaxSteps
	if e.Budget != nil {
		steps = max(0, min(steps, *e.Budget))
	}
	m := matcher{env: e, steps: steps}
	m.over = steps == 0
	return m
}

// spent takes what a match used from the envelope's Budget.
func (e *Envelope) spent(m matcher) {
	if e.Budget != nil {
		used := min(MaxSteps, *e.Budget) - max(m.steps, 0)
		*e.Budget -= used
	}
}

// dataValue returns the decoded payload (nil, false if it is not JSON).
func (e *Envelope) dataValue() (any, bool) {
	if !e.decoded {
		e.decoded = true
		v, err := decode(e.Payload, e.Yield)
		e.data, e.bad = v, err != nil
	}
	return e.data, !e.bad
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// compiler compiles a filter, counting its terms and sorting its path
// conditions into early and late ones (see Filter).
type compiler struct {
	terms int
	early []*pathCond
	late  bool
}

// term counts one condition at path against MaxTerms.
func (c *compiler) term(path string) error {
	c.terms++
	if c.terms > MaxTerms {
		return errorf(path, "makes the filter have more than %d conditions: split it, or use $in", MaxTerms)
	}
	return nil
}

// object compiles a filter object: the conjunction of its keys.
func (c *compiler) object(obj map[string]any, path string, depth int) (node, error) {
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
				n, err := c.object(sub, join(at, strconv.Itoa(i)), depth+1)
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
			n, err := c.object(sub, at, depth+1)
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
			if err := c.term(at); err != nil {
				return nil, err
			}
			cond, err := c.condition(val, at)
			if err != nil {
				return nil, err
			}
			pc := &pathCond{segs: segs, cond: cond, slot: -1}
			if k := segs[0].key; k == "id" || k == "timestamp" {
				c.late = true
			} else {
				pc.slot = len(c.early)
				c.early = append(c.early, pc)
			}
			all = append(all, pc)
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
	if len(parts) > MaxSegments {
		return nil, errorf(at, "has %d segments; a path has at most %d", len(parts), MaxSegments)
	}
	segs := make([]segment, 0, len(parts))
	wildcards := 0
	for _, part := range parts {
		switch {
		case part == "":
			return nil, errorf(at, "has an empty segment")
		case part == "*":
			if wildcards++; wildcards > MaxWildcards {
				return nil, errorf(at, "has more than %d \"*\" segments", MaxWildcards)
			}
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

// condition compiles what a path's value must meet.
func (c *compiler) condition(val any, at string) (cond, error) {
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
		if len(all) > 0 {
			if err := c.term(opAt); err != nil {
				return nil, err
			}
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
			if len(list) > MaxList {
				return nil, errorf(opAt, "has %d values; a list has at most %d", len(list), MaxList)
			}
			set := newValueSet(list)
			if op == "$in" {
				all = append(all, opIn{set})
			} else {
				all = append(all, opNin{set})
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

func (a and) match(m *matcher) bool {
	for _, n := range a {
		if !n.match(m) {
			return false
		}
	}
	return !m.over
}

type or []node

func (o or) match(m *matcher) bool {
	for _, n := range o {
		if n.match(m) {
			return true
		}
		if m.over {
			return false
		}
	}
	return false
}

type not struct{ n node }

func (n not) match(m *matcher) bool { return !n.n.match(m) && !m.over }

// pathCond is a condition on the value(s) at a path.
type pathCond struct {
	segs []segment
	cond cond
	// slot is the condition's index among the filter's early ones (-1:
	// a late one, on the ID or timestamp).
	slot int
}

func (p *pathCond) match(m *matcher) bool {
	if m.early != nil && p.slot >= 0 {
		return m.early[p.slot]
	}
	var root any
	switch p.segs[0].key {
	case "type":
		return p.cond.test(m, m.env.Type, true)
	case "id":
		return p.cond.test(m, m.env.ID, true)
	case "timestamp":
		return p.cond.test(m, m.env.Timestamp, true)
	default:
		v, ok := m.env.dataValue()
		if !ok {
			return p.cond.test(m, nil, false)
		}
		root = v
	}
	return walk(m, root, p.segs[1:], p.cond)
}

// walk follows segs from v and tests cond on what it reaches; "*" tries
// every element, a step each.
func walk(m *matcher, v any, segs []segment, c cond) bool {
	for i, s := range segs {
		switch x := v.(type) {
		case map[string]any:
			if s.any {
				return c.test(m, nil, false)
			}
			next, ok := x[s.key]
			if !ok {
				return c.test(m, nil, false)
			}
			v = next
		case []any:
			if s.any {
				for _, el := range x {
					if !m.spend(1) {
						return false
					}
					if walk(m, el, segs[i+1:], c) {
						return true
					}
				}
				return false
			}
			if s.index < 0 || s.index >= len(x) {
				return c.test(m, nil, false)
			}
			v = x[s.index]
		default:
			return c.test(m, nil, false)
		}
	}
	return c.test(m, v, true)
}

// cond tests a value; present is false when the path is missing. A test
// spends a step, and deep comparisons a step per value compared.
type cond interface {
	test(m *matcher, v any, present bool) bool
}

type condAnd []cond

func (a condAnd) test(m *matcher, v any, present bool) bool {
	for _, c := range a {
		if !c.test(m, v, present) {
			return false
		}
	}
	return true
}

type opEq struct{ want any }

func (o opEq) test(m *matcher, v any, present bool) bool {
	return m.spend(1) && present && equal(m, v, o.want)
}

type opNe struct{ want any }

func (o opNe) test(m *matcher, v any, present bool) bool {
	return m.spend(1) && (!present || !equal(m, v, o.want)) && !m.over
}

type opIn struct{ set *valueSet }

func (o opIn) test(m *matcher, v any, present bool) bool {
	return m.spend(1) && present && o.set.contains(m, v)
}

type opNin struct{ set *valueSet }

func (o opNin) test(m *matcher, v any, present bool) bool {
	return m.spend(1) && (!present || !o.set.contains(m, v)) && !m.over
}

type opExists struct{ want bool }

func (o opExists) test(m *matcher, _ any, present bool) bool { return m.spend(1) && present == o.want }

type opAffix struct {
	suffix bool
	s      string
}

func (o opAffix) test(m *matcher, v any, present bool) bool {
	str, ok := v.(string)
	if !m.spend(1) || !present || !ok {
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

func (o opCmp) test(m *matcher, v any, present bool) bool {
	if !m.spend(1) || !present {
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

// equal is JSON equality: numbers by value, objects and lists deeply, a
// step per value compared.
func equal(m *matcher, a, b any) bool {
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
			if !ok || !m.spend(1) || !equal(m, v, w) {
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
			if !m.spend(1) || !equal(m, x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b // nil, bool, string
	}
}

// valueSet is the list of an $in or $nin, compiled for lookups: scalars
// in maps, numbers by value (1 is 1.0) and by their text (numbers too
// large for a float64 equal only themselves), objects and lists in a
// list compared deeply.
type valueSet struct {
	strs      map[string]struct{}
	nums      map[float64]struct{}
	numTexts  map[string]struct{}
	bools     [2]bool
	null      bool
	composite []any
}

func newValueSet(list []any) *valueSet {
	s := &valueSet{}
	for _, v := range list {
		switch x := v.(type) {
		case nil:
			s.null = true
		case bool:
			s.bools[boolIndex(x)] = true
		case string:
			if s.strs == nil {
				s.strs = make(map[string]struct{})
			}
			s.strs[x] = struct{}{}
		case json.Number:
			if s.numTexts == nil {
				s.numTexts, s.nums = make(map[string]struct{}), make(map[float64]struct{})
			}
			s.numTexts[string(x)] = struct{}{}
			if f, ok := finite(x); ok {
				s.nums[f] = struct{}{}
			}
		default:
			s.composite = append(s.composite, v)
		}
	}
	return s
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// finite returns a number's value if it is a finite float64.
func finite(n json.Number) (float64, bool) {
	f, err := n.Float64()
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// contains reports whether v equals a value of the set.
func (s *valueSet) contains(m *matcher, v any) bool {
	switch x := v.(type) {
	case nil:
		return s.null
	case bool:
		return s.bools[boolIndex(x)]
	case string:
		_, ok := s.strs[x]
		return ok
	case json.Number:
		if _, ok := s.numTexts[string(x)]; ok {
			return true
		}
		if f, ok := finite(x); ok {
			_, ok = s.nums[f]
			return ok
		}
		return false
	}
	for _, w := range s.composite {
		if !m.spend(1) {
			return false
		}
		if equal(m, v, w) {
			return true
		}
	}
	return false
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
