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
			if got := f.Match(env); got != tt.want {
				t.Fatalf("Match(%s) = %v, want %v", tt.filter, got, tt.want)
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
		if !f.Match(&Envelope{Type: "x.y", Payload: []byte(p)}) {
			t.Errorf("payload %s: data.a should be missing", p)
		}
	}
	var none *Filter
	if !none.Match(&Envelope{}) {
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
			f.Match(env)
		}
	}
}
