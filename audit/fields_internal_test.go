package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// mapEncoding is what records stored before encodeFields wrote them one
// value at a time: each value encoded and cut, then the map of them
// encoded by encoding/json.
func mapEncoding(fields map[string]any) []byte {
	out := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		out[k] = encodeValue(v)
	}
	b, _ := json.Marshal(out)
	return b
}

func TestEncodeFields_WritesWhatEncodingJSONWritesOfTheMap(t *testing.T) {
	tests := map[string]map[string]any{
		"none":     {},
		"publish":  {"events": 2, "eventTypes": []string{"order.created"}, "eventIds": []string{"evt_1", "evt_2"}, "idempotencyKeys": []string{"k<1>&"}},
		"escaped":  {"a<b>": "x&y", "ünïcode": "日本語\u2028", "quote\"": `back\slash`},
		"nested":   {"filter": map[string]any{"data.amount": map[string]any{"$gt": 100}}, "null": nil, "bool": true, "float": 1.5},
		"long":     {"script": strings.Repeat("é", 2000), "short": "s"},
		"unmarsh":  {"ch": make(chan int), "fn": fmt.Sprint},
		"rawvalue": {"raw": json.RawMessage(`{"b":1,  "a":[1, 2]}`)},
	}
	for name, fields := range tests {
		t.Run(name, func(t *testing.T) {
			got, want := encodeFields(fields), mapEncoding(fields)
			if string(got) != string(want) {
				t.Errorf("encodeFields = %s\nwant %s", got, want)
			}
			if !json.Valid(got) {
				t.Errorf("encodeFields = %s, not JSON", got)
			}
		})
	}
}

func TestEncodeFields_KeepsTheFirstFieldsInKeyOrder(t *testing.T) {
	fields := make(map[string]any)
	for i := range maxFields + 10 {
		fields[fmt.Sprintf("f%03d", i)] = i
	}
	var got map[string]int
	if err := json.Unmarshal(encodeFields(fields), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != maxFields {
		t.Fatalf("%d fields kept, want %d", len(got), maxFields)
	}
	for i := range maxFields {
		if v, ok := got[fmt.Sprintf("f%03d", i)]; !ok || v != i {
			t.Errorf("field f%03d: %d, %v; want %d kept", i, v, ok, i)
		}
	}
}
