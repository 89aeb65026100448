package filter

import (
	"errors"
	"testing"
)

// FuzzFilter compiles arbitrary filters and matches them against
// arbitrary payloads: nothing panics, a match stays within its budget and
// is repeatable, a prepared match finishes like a whole one, and $not of a filter that matched within its budget
// matches the opposite way. make test runs it briefly; `make fuzz` longer.
func FuzzFilter(f *testing.F) {
	seeds := []struct{ filter, payload string }{
		{`{"data.total": {"$gte": 1000}}`, order},
		{`{"data.items.*.sku": {"$startsWith": "TSHIRT"}}`, order},
		{`{"$or": [{"data.a": {"$in": [1, "x", null, [1], {"b": 2}]}}, {"$not": {"type": "a.b"}}]}`, `{"a": [1, {"b": 2.0}]}`},
		{`{"data.a.*.*": {"$nin": [1e400, -0]}}`, `{"a": [[0], [1e400]]}`},
		{`{"data.x": {"$exists": false}, "id": {"$endsWith": "1"}}`, `[1, 2, 3]`},
		{`{"data": {"$eq": {"a": 1}}}`, `{"a": 1.0}`},
		{`{"timestamp": {"$lt": "2027"}}`, `not json`},
	}
	for _, s := range seeds {
		f.Add(s.filter, s.payload)
	}
	f.Fuzz(func(t *testing.T, raw, payload string) {
		flt, err := Compile([]byte(raw))
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Compile(%q) = %v, not an *Error", raw, err)
			}
			return
		}
		env := func() *Envelope {
			return &Envelope{ID: "evt_1", Type: "order.created", Timestamp: "2026-12-06T00:00:00Z", Payload: []byte(payload)}
		}
		got, err := flt.Match(env())
		if err != nil && !errors.Is(err, ErrTooExpensive) {
			t.Fatalf("Match = %v", err)
		}
		if err != nil && got {
			t.Fatalf("a match over its budget reported true")
		}
		again, err2 := flt.Match(env())
		if again != got || (err == nil) != (err2 == nil) {
			t.Fatalf("Match is not repeatable: %v, %v then %v, %v", got, err, again, err2)
		}
		if flt == nil || err != nil {
			return
		}
		e := env()
		p, perr := flt.Prepare(&Envelope{Type: e.Type, Payload: e.Payload})
		if perr == nil && p.Match(e.ID, e.Timestamp) != got {
			t.Fatalf("Prepare then Match = %v, Match = %v", !got, got)
		}
		neg, cerr := Compile([]byte(`{"$not": ` + raw + `}`))
		if cerr != nil {
			return // one level deeper than allowed
		}
		if ngot, nerr := neg.Match(env()); nerr == nil && ngot == got {
			t.Fatalf("$not of %s matched %v, like the filter itself", raw, ngot)
		}
	})
}
