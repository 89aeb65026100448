package filter

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// decodeWithEncodingJSON is how filters decoded payloads before decode:
// encoding/json's Decoder with UseNumber, one value and nothing after it.
func decodeWithEncodingJSON(raw []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil || d.More() {
		return nil, false
	}
	return v, true
}

// FuzzDecode_MakesWhatEncodingJSONMakes decodes arbitrary input both ways:
// for valid JSON the same values (numbers with their text, the last of
// duplicate names, U+FFFD for invalid UTF-8), and an error for anything
// else. (encoding/json's Decoder took a value followed by a stray "}" or
// "]", which More does not see; decode refuses it.)
func FuzzDecode_MakesWhatEncodingJSONMakes(f *testing.F) {
	for _, s := range []string{
		order, `{"a": [1, 2.50, -0, 1e400, "x"], "b": {"c": null, "d": true}}`, `{"a": 1, "a": 2}`,
		"\"\xff\"", `"\ud800"`, `[1] [2]`, `[1,]`, ` 7 `, ``, `{"a": [[[[]]]]}`, `"\u00e9\n"`,
	} {
		f.Add(s)
	}
	f.Add("0}")
	f.Fuzz(func(t *testing.T, raw string) {
		valid := json.Valid([]byte(raw))
		got, err := decode([]byte(raw), nil)
		if valid != (err == nil) {
			t.Fatalf("decode(%q) returned error %v, but json.Valid says %v", raw, err, valid)
		}
		if !valid {
			return
		}
		want, ok := decodeWithEncodingJSON([]byte(raw))
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("decode(%q) = %#v, encoding/json made %#v", raw, got, want)
		}
	})
}

// TestDecode_YieldsWhileDecodingALargePayload decodes a payload of 60,000
// numbers with a yield function: it is called every yieldEvery values.
func TestDecode_YieldsWhileDecodingALargePayload(t *testing.T) {
	yields := 0
	v, err := decode(items(60000), func() { yields++ })
	if err != nil {
		t.Fatal(err)
	}
	if n := len(v.(map[string]any)["items"].([]any)); n != 60000 {
		t.Fatalf("decoded %d items, want 60000", n)
	}
	if want := 60002 / yieldEvery; yields != want {
		t.Errorf("yield was called %d times for 60,002 values, want %d", yields, want)
	}
}
