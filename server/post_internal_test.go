package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/graph/scalar"
)

// BenchmarkPOST_Decode compares decoding a publishEvents body by the
// variables' types (JSON payloads kept as bytes) with decoding it all, as
// gqlgen's transport does, and encoding each payload again as the JSON
// scalar then must.
func BenchmarkPOST_Decode(b *testing.B) {
	tr := newPOSTTransport(graph.NewExecutableSchema(graph.Config{}).Schema(), parserTokenLimit)
	for _, size := range []int{600, 12_000, 120_000} {
		items := make([]string, 0, size/6)
		for i := 0; len(strings.Join(items, ",")) < size; i++ {
			items = append(items, fmt.Sprintf(`{"n":%d}`, i))
		}
		payload := `{"items":[` + strings.Join(items, ",") + `]}`
		in := strings.TrimSuffix(strings.Repeat(`{"eventType":"order.created","payload":`+payload+`},`, 10), ",")
		body := []byte(`{"query":"mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }","variables":{"in":[` + in + `]}}`)
		b.Run(fmt.Sprintf("typed/10x%dB", len(payload)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := tr.decode(context.Background(), body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("generic/10x%dB", len(payload)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				p := decodeGeneric(b, body)
				for _, e := range p.Variables["in"].([]any) {
					if _, err := scalar.UnmarshalJSON(e.(map[string]any)["payload"]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkPOST_DecodeSingle is BenchmarkPOST_Decode for the commonest
// call: one publishEvent of a 600-byte payload.
func BenchmarkPOST_DecodeSingle(b *testing.B) {
	tr := newPOSTTransport(graph.NewExecutableSchema(graph.Config{}).Schema(), parserTokenLimit)
	items := make([]string, 0, 100)
	for i := 0; len(strings.Join(items, ",")) < 600; i++ {
		items = append(items, fmt.Sprintf(`{"n":%d}`, i))
	}
	body := []byte(`{"query":"mutation($t: String!, $p: JSON!) { publishEvent(input: {eventType: $t, payload: $p}) { id } }","variables":{"t":"order.created","p":{"items":[` + strings.Join(items, ",") + `]}}}`)
	b.Run("typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tr.decode(context.Background(), body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := decodeGeneric(b, body)
			if _, err := scalar.UnmarshalJSON(p.Variables["p"]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// decodeGeneric decodes a request body as gqlgen's transport does.
func decodeGeneric(b *testing.B, body []byte) *graphql.RawParams {
	var p graphql.RawParams
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		b.Fatal(err)
	}
	return &p
}

// TestDecodeAny_ShortcutsAgreeWithTheDecoder checks that the strings,
// numbers and literals decodeAny takes without a decoder come out as
// encoding/json (numbers as json.Number) makes them, and that what it
// cannot take that way still goes to the decoder.
func TestDecodeAny_ShortcutsAgreeWithTheDecoder(t *testing.T) {
	for _, raw := range []string{
		`"order.created"`, `""`, `"caf\u00e9 \"quoted\" \\ \/ \n"`, `"\ud83d\ude00"`, "\"\xff invalid UTF-8\"",
		`0`, `-12`, `3.25`, `1e9`, `-0.5E-3`, `12345678901234567890123`,
		`true`, `false`, `null`,
		`{"a":[1,"b",null]}`, `[]`, ` "spaced" `, ` 7 `,
	} {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
		got, err := decodeAny([]byte(raw))
		if err != nil {
			t.Fatalf("decodeAny(%q): %v", raw, err)
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
			t.Errorf("decodeAny(%q) = %#v, want %#v", raw, got, want)
		}
	}
}
