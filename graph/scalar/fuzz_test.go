package scalar

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzJSON decodes arbitrary request payloads the way gqlgen reads
// variables (numbers kept as text) and passes them through the JSON
// scalar: nothing panics, invalid JSON never passes, and what comes out is
// valid JSON equal to what went in, numbers digit for digit, so that a
// published payload reaches receivers, and their signatures, as sent.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"n":1e400,"s":"\u00e9\ud83d\ude00","l":[1.0,-0,null,true]}`, `[]`, `"x"`, `12345678901234567890123`, `{"<a>":"&"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := json.NewDecoder(bytes.NewReader(in))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil || d.More() {
			if _, err := UnmarshalJSON(in); err == nil && !json.Valid(in) {
				t.Fatalf("UnmarshalJSON accepted invalid JSON %q", in)
			}
			return
		}
		out, err := UnmarshalJSON(v)
		if err != nil {
			return // not representable (such as a lone surrogate): refused
		}
		if !json.Valid(out) {
			t.Fatalf("UnmarshalJSON(%q) = %q, not valid JSON", in, out)
		}
		d2 := json.NewDecoder(bytes.NewReader(out))
		d2.UseNumber()
		var back any
		if err := d2.Decode(&back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, back) {
			t.Fatalf("round trip changed the value: %q became %q", in, out)
		}
	})
}
