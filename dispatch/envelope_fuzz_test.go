package dispatch

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldhq/herald/filter"
)

// FuzzEnvelope renders arbitrary stored payloads into the envelope every
// receiver gets, and runs a payload filter over them: the envelope is
// valid JSON whenever the payload is, its data is the payload byte for
// byte (signatures are over these bytes), a test event says so, and no
// payload makes a filter panic or run past its budget.
func FuzzEnvelope(f *testing.F) {
	flt, err := filter.Compile([]byte(`{"data.items.*.sku": {"$in": ["A", "B", 1]}, "$or": [{"data.total": {"$gte": 10}}, {"data": {"$exists": false}}]}`))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{`{"items":[{"sku":"A"}],"total":12}`, `{}`, `[1,2]`, `"\u2028"`, `{"a":{"b":[[[]]]}}`} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, payload []byte, test bool) {
		env := renderEnvelope("evt_01", "order.created", time.Unix(1700000000, 0), payload, test)
		if json.Valid(payload) {
			var e struct {
				ID   string
				Test bool
				Data json.RawMessage
			}
			if err := json.Unmarshal(env, &e); err != nil {
				t.Fatalf("envelope of valid payload %q is not JSON: %s (%v)", payload, env, err)
			}
			if !bytes.Equal(bytes.TrimSpace(e.Data), bytes.TrimSpace(payload)) || e.Test != test || e.ID != "evt_01" {
				t.Fatalf("envelope %s does not carry payload %q as is (test %v)", env, payload, test)
			}
		}
		_, err := flt.Match(&filter.Envelope{ID: "evt_01", Type: "order.created", Payload: payload})
		if err != nil && err != filter.ErrTooExpensive {
			t.Fatalf("match: %v", err)
		}
	})
}
