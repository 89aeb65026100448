package filter

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

const order = `{"orderId": "ord_1042", "total": 4990, "currency": "EUR", "paid": true, "note": null,
  "customer": {"id": "cus_7", "country": "FR", "tags": ["vip", "b2b"]},
  "items": [{"sku": "TSHIRT-M", "qty": 2, "price": 2495}, {"sku": "MUG", "qty": 1, "price": 990}]}`

func TestMatch(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		want   bool
	}{
		{"empty filter", `{}`, true},
		{"type equality", `{"type": "order.created"}`, true},
		{"type mismatch", `{"type": "order.paid"}`, false},
		{"type prefix", `{"type": {"$startsWith": "order."}}`, true},
		{"id suffix", `{"id": {"$endsWith": "Q"}}`, true},
		{"nested string", `{"data.customer.country": "FR"}`, true},
		{"nested string differs", `{"data.customer.country": "DE"}`, false},
		{"number equality", `{"data.total": 4990}`, true},
		{"number equals float", `{"data.total": 4990.0}`, true},
		{"greater or equal", `{"data.total": {"$gte": 1000}}`, true},
		{"range", `{"data.total": {"$gt": 1000, "$lt": 5000}}`, true},
		{"range missed", `{"data.total": {"$gt": 1000, "$lt": 2000}}`, false},
		{"string comparison", `{"data.currency": {"$lt": "USD"}}`, true},
		{"number against string is false", `{"data.currency": {"$gt": 5}}`, false},
		{"string against number is false", `{"data.total": {"$gt": "a"}}`, false},
		{"boolean", `{"data.paid": true}`, true},
		{"null value", `{"data.note": null}`, true},
		{"null is present", `{"data.note": {"$exists": true}}`, true},
		{"in", `{"data.currency": {"$in": ["EUR", "GBP"]}}`, true},
		{"not in", `{"data.currency": {"$nin": ["EUR", "GBP"]}}`, false},
		{"ne", `{"data.currency": {"$ne": "USD"}}`, true},
		{"array index", `{"data.items.0.sku": "TSHIRT-M"}`, true},
		{"array index out of range", `{"data.items.5.sku": {"$exists": false}}`, true},
		{"any element", `{"data.items.*.sku": "MUG"}`, true},
		{"any element with operator", `{"data.items.*.price": {"$lt": 1000}}`, true},
		{"no element", `{"data.items.*.sku": "HAT"}`, false},
		{"any element of strings", `{"data.customer.tags.*": "vip"}`, true},
		{"list equality", `{"data.customer.tags": ["vip", "b2b"]}`, true},
		{"list equality is ordered", `{"data.customer.tags": ["b2b", "vip"]}`, false},
		{"object equality", `{"data.customer": {"$eq": {"id": "cus_7", "country": "FR", "tags": ["vip", "b2b"]}}}`, true},
		{"missing field equals nothing", `{"data.discount": 0}`, false},
		{"missing field is not equal", `{"data.discount": {"$ne": 0}}`, true},
		{"missing field is not in", `{"data.discount": {"$nin": [1]}}`, true},
		{"missing field exists false", `{"data.discount": {"$exists": false}}`, true},
		{"missing field compares false", `{"data.discount": {"$lt": 100}}`, false},
		{"path through a scalar is missing", `{"data.total.cents": {"$exists": false}}`, true},
		{"and", `{"$and": [{"data.total": {"$gte": 1000}}, {"data.customer.country": "FR"}]}`, true},
		{"or", `{"$or": [{"data.total": {"$gte": 100000}}, {"data.customer.country": "FR"}]}`, true},
		{"or none", `{"$or": [{"data.total": {"$gte": 100000}}, {"data.customer.country": "DE"}]}`, false},
		{"not", `{"$not": {"data.customer.country": "FR"}}`, false},
		{"keys are a conjunction", `{"type": "order.created", "data.total": {"$gte": 1000}, "data.items.*.sku": {"$startsWith": "TSHIRT"}}`, true},
		{"whole data", `{"data": {"$exists": true}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile([]byte(tt.filter))
			if err != nil {
				t.Fatalf("Compile(%s): %v", tt.filter, err)
			}
			env := &Envelope{ID: "evt_01M8GQ", Type: "order.created", Timestamp: "2026-11-28T09:00:00Z", Payload: []byte(order)}
			if got, err := f.Match(env); err != nil || got != tt.want {
				t.Fatalf("Match(%s) = %v, %v; want %v", tt.filter, got, err, tt.want)
			}
		})
	}
}

func TestMatch_NonObjectPayloads(t *testing.T) {
	f, err := Compile([]byte(`{"data.a": {"$exists": false}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{`[1,2]`, `"text"`, `42`, `not json`} {
		if ok, err := f.Match(&Envelope{Type: "x.y", Payload: []byte(p)}); !ok || err != nil {
			t.Errorf("payload %s: data.a should be missing (got %v, %v)", p, ok, err)
		}
	}
	var none *Filter
	if ok, err := none.Match(&Envelope{}); !ok || err != nil {
		t.Error("a nil filter must match everything")
	}
}

func TestCompile_RejectsWithThePath(t *testing.T) {
	tests := []struct {
		filter string
		path   string
		says   string
	}{
		{`[1]`, "", "object"},
		{`{"data.total": {"$gt": true}}`, "data.total.$gt", "number or a string"},
		{`{"data.total": {"$between": [1, 2]}}`, "data.total.$between", "unknown operator"},
		{`{"data.currency": {"$in": "EUR"}}`, "data.currency.$in", "list"},
		{`{"data.x": {"$exists": "yes"}}`, "data.x.$exists", "true or false"},
		{`{"data.x": {"$startsWith": 5}}`, "data.x.$startsWith", "string"},
		{`{"payload.total": 1}`, "payload.total", "start with"},
		{`{"type.name": "x"}`, "type.name", "no fields"},
		{`{"data..x": 1}`, "data..x", "empty segment"},
		{`{"$or": []}`, "$or", "non-empty"},
		{`{"$or": [{"data.a": 1}, 2]}`, "$or.1", "filter object"},
		{`{"$and": [{"data.a": {"$gt": null}}]}`, "$and.0.data.a.$gt", "number or a string"},
		{`{"$not": [1]}`, "$not", "filter object"},
		{`{"$nor": []}`, "$nor", "unknown operator"},
		{`{"data.a": {"$eq": 1, "b": 2}}`, "data.a.b", "mixes"},
		{`{"data": `, "", "valid JSON"},
		{`{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"$not":{"type":"a.b"}}}}}}}}}}`, "$not.$not.$not.$not.$not.$not.$not.$not.$not", "deep"},
	}
	for _, tt := range tests {
		_, err := Compile([]byte(tt.filter))
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("Compile(%s) = %v, want an *Error", tt.filter, err)
			continue
		}
		if fe.Path != tt.path || !strings.Contains(fe.Message, tt.says) {
			t.Errorf("Compile(%s): path %q, message %q; want path %q and a message saying %q", tt.filter, fe.Path, fe.Message, tt.path, tt.says)
		}
	}
	if _, err := Compile([]byte(`{"data.a": "` + strings.Repeat("x", MaxSize) + `"}`)); err == nil {
		t.Error("an oversized filter compiled")
	}
}

func TestCompile_NullAndEmptyMatchEverything(t *testing.T) {
	for _, raw := range []string{"", "null", "  "} {
		f, err := Compile([]byte(raw))
		if err != nil || f != nil {
			t.Errorf("Compile(%q) = %v, %v; want nil, nil", raw, f, err)
		}
	}
}

func BenchmarkMatch_TenFilters(b *testing.B) {
	var fs []*Filter
	for i := range 10 {
		f, err := Compile([]byte(`{"data.total": {"$gte": ` + strconv.Itoa(i+1) + `000}, "data.items.*.sku": {"$startsWith": "TSHIRT"}}`))
		if err != nil {
			b.Fatal(err)
		}
		fs = append(fs, f)
	}
	payload := []byte(order)
	for b.Loop() {
		env := &Envelope{Type: "order.created", Payload: payload}
		for _, f := range fs {
			_, _ = f.Match(env)
		}
	}
}

func TestMatch_InListsCompareLikeEquality(t *testing.T) {
	payload := `{"n": 1, "f": 2.50, "big": 1e400, "s": "x", "b": false, "z": null, "o": {"a": [1]}, "l": [1, 2]}`
	tests := []struct {
		filter string
		want   bool
	}{
		{`{"data.n": {"$in": [1.0, 7]}}`, true},
		{`{"data.f": {"$in": [2.5]}}`, true},
		{`{"data.f": {"$in": ["2.5"]}}`, false},
		{`{"data.big": {"$in": [1e400]}}`, true},
		{`{"data.big": {"$in": [1e401]}}`, false},
		{`{"data.s": {"$in": ["y", "x"]}}`, true},
		{`{"data.b": {"$in": [true]}}`, false},
		{`{"data.b": {"$in": [false]}}`, true},
		{`{"data.z": {"$in": [null]}}`, true},
		{`{"data.o": {"$in": [{"a": [1.0]}]}}`, true},
		{`{"data.l": {"$in": [[2, 1], [1, 2]]}}`, true},
		{`{"data.l": {"$nin": [[1, 2]]}}`, false},
		{`{"data.missing": {"$nin": [1]}}`, true},
		{`{"data.n": {"$nin": [2, 3]}}`, true},
	}
	for _, tt := range tests {
		f, err := Compile([]byte(tt.filter))
		if err != nil {
			t.Fatalf("Compile(%s): %v", tt.filter, err)
		}
		got, err := f.Match(&Envelope{Type: "a.b", Payload: []byte(payload)})
		if err != nil || got != tt.want {
			t.Errorf("Match(%s) = %v, %v; want %v", tt.filter, got, err, tt.want)
		}
	}
}

// TestMatch_StopsAtItsBudget is the stall of one tenant's filter over a
// large array: a wildcard over 100,000 elements stops after MaxSteps
// instead of walking them all, and says so.
func TestMatch_StopsAtItsBudget(t *testing.T) {
	payload := items(100000)
	list := make([]string, MaxList)
	for i := range list {
		list[i] = strconv.Itoa(-i - 1) // never in the payload
	}
	f, err := Compile([]byte(`{"data.items.*": {"$in": [` + strings.Join(list, ",") + `]}}`))
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{Type: "a.b", Payload: payload}
	got, err := f.Match(env)
	if !errors.Is(err, ErrTooExpensive) || got {
		t.Fatalf("Match over 100,000 elements = %v, %v; want false, ErrTooExpensive", got, err)
	}
	// Within the budget the same filter matches.
	small := &Envelope{Type: "a.b", Payload: []byte(`{"items": [5, -7]}`)}
	if got, err := f.Match(small); !got || err != nil {
		t.Fatalf("Match on a small event = %v, %v; want true", got, err)
	}
	// A $not over an exhausted budget is not a match either.
	nf, err := Compile([]byte(`{"$not": {"data.items.*": {"$in": [-1]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := nf.Match(env); got || !errors.Is(err, ErrTooExpensive) {
		t.Fatalf("$not over an exhausted budget = %v, %v; want false, ErrTooExpensive", got, err)
	}
}

func TestCompile_BoundsTheShape(t *testing.T) {
	many := func(n int, item string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = strings.ReplaceAll(item, "N", strconv.Itoa(i))
		}
		return strings.Join(parts, ",")
	}
	tests := []struct {
		name, filter, path, says string
	}{
		{"too many values", `{"data.a": {"$in": [` + many(MaxList+1, "N") + `]}}`, "data.a.$in", "at most 1000"},
		{"too many wildcards", `{"data.a.*.b.*.c.*": 1}`, "data.a.*.b.*.c.*", `"*"`},
		{"too many segments", `{"data.` + strings.ReplaceAll(many(MaxSegments, "sN"), ",", ".") + `": 1}`, "", "segments"},
		{"too many conditions", `{"$or": [` + many(MaxTerms+1, `{"data.aN": 1}`) + `]}`, "", "conditions"},
	}
	for _, tt := range tests {
		_, err := Compile([]byte(tt.filter))
		var fe *Error
		if !errors.As(err, &fe) || !strings.Contains(fe.Message, tt.says) {
			t.Errorf("%s: Compile = %v; want an *Error saying %q", tt.name, err, tt.says)
			continue
		}
		if tt.path != "" && fe.Path != tt.path {
			t.Errorf("%s: path %q, want %q", tt.name, fe.Path, tt.path)
		}
	}
	// The limits themselves are allowed.
	ok := `{"data.a.*.b.*": {"$in": [` + many(MaxList, "N") + `]}}`
	if _, err := Compile([]byte(ok)); err != nil {
		t.Errorf("a filter at the limits did not compile: %v", err)
	}
}

// TestPrepare_FinishesLikeMatch proves the two-step match equal to the
// one-step match for filters with and without conditions on the ID and
// timestamp.
func TestPrepare_FinishesLikeMatch(t *testing.T) {
	filters := []string{
		`{"data.total": {"$gte": 1000}}`,
		`{"id": {"$endsWith": "Q"}, "data.total": {"$gte": 1000}}`,
		`{"$or": [{"timestamp": {"$lt": "2026"}}, {"data.items.*.sku": "MUG"}]}`,
		`{"$not": {"$or": [{"timestamp": {"$gte": "2026"}}, {"data.items.*.sku": "HAT"}]}}`,
		`{"type": "order.created", "id": "evt_X"}`,
	}
	envs := []*Envelope{
		{ID: "evt_01M8GQ", Type: "order.created", Timestamp: "2026-11-28T09:00:00Z", Payload: []byte(order)},
		{ID: "evt_X", Type: "order.created", Timestamp: "2025-01-01T00:00:00Z", Payload: []byte(`{"total": 5}`)},
	}
	for _, raw := range filters {
		f, err := Compile([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range envs {
			want, err := f.Match(&Envelope{ID: env.ID, Type: env.Type, Timestamp: env.Timestamp, Payload: env.Payload})
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.Prepare(&Envelope{Type: env.Type, Payload: env.Payload})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(env.ID, env.Timestamp); got != want {
				t.Errorf("%s on %s: prepared match %v, match %v", raw, env.ID, got, want)
			}
		}
	}
}

// TestMatch_FiltersShareTheEventsBudget: a thousand filters that each walk
// a large array stop once together they have done MaxEventSteps, so an
// event costs a bound however many endpoints it meets.
func TestMatch_FiltersShareTheEventsBudget(t *testing.T) {
	f, err := Compile([]byte(`{"data.items.*": -1}`))
	if err != nil {
		t.Fatal(err)
	}
	items := strings.Repeat("1,", 5000) + "1"
	budget := MaxEventSteps
	env := &Envelope{Type: "a.b", Payload: []byte(`{"items": [` + items + `]}`), Budget: &budget}
	matched, refused := 0, 0
	for range 1000 {
		switch _, err := f.Prepare(env); {
		case errors.Is(err, ErrTooExpensive):
			refused++
		case err == nil:
			matched++
		}
	}
	if budget != 0 || matched > MaxEventSteps/5000 || refused < 990 {
		t.Fatalf("%d filters ran, %d were refused, %d steps left; want the event's budget spent by at most %d", matched, refused, budget, MaxEventSteps/5000)
	}
}

// items returns the payload {"items": [0, 1, …, n-1]}.
func items(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"items": [`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}
