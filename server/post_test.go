package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// postRaw sends body, as is, to /graphql and returns the HTTP status and
// the answer.
func postRaw(t *testing.T, s *heraldtest.Server, token, body string) (int, map[string]any) {
	t.Helper()
	status, raw := postBody(t, s.URL, token, []byte(body))
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer is not JSON (HTTP %d): %s", status, raw)
	}
	return status, out
}

func TestPOST_PayloadsKeepTheBytesTheCallerSent(t *testing.T) {
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})

	// Keys out of order, a number's own spelling, escapes and spaces:
	// stored and sent as written, without the spaces.
	payload := `{ "z": 1, "a": [1, 2.50, 1e3, "caf\u00e9 \/ é"], "m": {"y": null, "b": true} }`
	want := `{"z":1,"a":[1,2.50,1e3,"caf\u00e9 \/ é"],"m":{"y":null,"b":true}}`
	cases := []struct {
		name string
		body string
	}{
		{"publishEvent", `{"query": "mutation($p: JSON!) { publishEvent(input: {eventType: \"order.created\", payload: $p}) { id payload } }", "variables": {"p": ` + payload + `}}`},
		{"publishEvent with its input in a variable", `{"query": "mutation($in: PublishEventInput!) { publishEvent(input: $in) { id payload } }", "variables": {"in": {"eventType": "order.created", "payload": ` + payload + `}}}`},
		{"publishEvents", `{"query": "mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id payload } }", "variables": {"in": [{"eventType": "order.created", "payload": ` + payload + `}, {"eventType": "order.created", "payload": ` + payload + `}]}}`},
		{"a named operation among two", `{"query": "query Q { apps { totalCount } } mutation P($p: JSON!) { publishEvent(input: {eventType: \"order.created\", payload: $p}) { id payload } }", "operationName": "P", "variables": {"p": ` + payload + `}}`},
	}
	sent := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := postRaw(t, s, s.Token, tc.body)
			if status != http.StatusOK || out["errors"] != nil {
				t.Fatalf("HTTP %d: %v", status, out)
			}
			var events []any
			for _, v := range out["data"].(map[string]any) {
				switch v := v.(type) {
				case []any:
					events = v
				default:
					events = []any{v}
				}
			}
			for _, e := range events {
				sent++
				// The answer's payload is the stored JSON; re-encoding the
				// answer's tree would lose the order, so compare its bytes
				// through a read of the event.
				id := e.(map[string]any)["id"].(string)
				var ev struct {
					Node struct{ Payload json.RawMessage }
				}
				s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Event { payload } } }`, map[string]any{"id": id}).Decode(t, &ev)
				if string(ev.Node.Payload) != want {
					t.Errorf("stored payload %s, want %s", ev.Node.Payload, want)
				}
			}
		})
	}
	for _, r := range rc.WaitRequests(t, sent, 10*time.Second) {
		if !bytes.Contains(r.Body, []byte(want)) {
			t.Errorf("delivered body %s does not hold the payload as sent, %s", r.Body, want)
		}
	}
}

func TestPOST_VariablesAreStillCheckedAgainstTheirTypes(t *testing.T) {
	s := heraldtest.Start(t)
	publish := `mutation($p: JSON!) { publishEvent(input: {eventType: "order.created", payload: $p}) { id } }`
	publishIn := `mutation($in: [PublishEventInput!]!) { publishEvents(input: $in) { id } }`
	q := func(query, vars string) string {
		b, _ := json.Marshal(query)
		return fmt.Sprintf(`{"query": %s, "variables": %s}`, b, vars)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		message    string // in the first error's message
	}{
		{"null for JSON!", q(publish, `{"p": null}`), http.StatusUnprocessableEntity, "cannot be null"},
		{"a missing JSON!", q(publish, `{}`), http.StatusUnprocessableEntity, "must be defined"},
		{"an unknown input field", q(publishIn, `{"in": [{"eventType": "a.b", "payload": {}, "nope": 1}]}`), http.StatusUnprocessableEntity, "unknown field"},
		{"a string where a list of inputs is declared", q(publishIn, `{"in": "x"}`), http.StatusUnprocessableEntity, "must be a PublishEventInput"},
		{"variables that are not an object", q(publish, `[1]`), http.StatusBadRequest, "variables must be an object"},
		{"a payload that is not JSON", `{"query": "x", "variables": {"p": {"a": }}}`, http.StatusBadRequest, "could not be decoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := postRaw(t, s, s.Token, tc.body)
			errs, _ := out["errors"].([]any)
			if status != tc.status || len(errs) == 0 {
				t.Fatalf("HTTP %d %v, want HTTP %d and an error", status, out, tc.status)
			}
			if msg := errs[0].(map[string]any)["message"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("error %q, want one that says %q", msg, tc.message)
			}
		})
	}

	// A single input where a list is declared is a list of one; text that
	// is not UTF-8 is stored as valid UTF-8, as before.
	status, out := postRaw(t, s, s.Token, q(publishIn, "{\"in\": {\"eventType\": \"order.created\", \"payload\": {\"s\": \"a\xffb\"}}}"))
	if status != http.StatusOK || out["errors"] != nil {
		t.Fatalf("HTTP %d: %v", status, out)
	}
	id := out["data"].(map[string]any)["publishEvents"].([]any)[0].(map[string]any)["id"].(string)
	var ev struct {
		Node struct{ Payload json.RawMessage }
	}
	s.Do(s.Token, `query($id: ID!) { node(id: $id) { ... on Event { payload } } }`, map[string]any{"id": id}).Decode(t, &ev)
	if string(ev.Node.Payload) != `{"s":"a\ufffdb"}` && string(ev.Node.Payload) != "{\"s\":\"a\uFFFDb\"}" {
		t.Errorf("payload %s, want the invalid byte replaced by U+FFFD", ev.Node.Payload)
	}
}

// TestPOST_PersistedQueriesStillWork sends an automatic persisted query:
// first with its text, then by its hash alone, when the transport cannot
// read the variables' types and decodes them all.
func TestPOST_PersistedQueriesStillWork(t *testing.T) {
	s := heraldtest.Start(t)
	query := `mutation($p: JSON!) { publishEvent(input: {eventType: "order.created", payload: $p}) { id payload } }`
	sum := sha256.Sum256([]byte(query))
	ext := fmt.Sprintf(`{"persistedQuery": {"version": 1, "sha256Hash": %q}}`, hex.EncodeToString(sum[:]))
	q, _ := json.Marshal(query)
	for _, body := range []string{
		fmt.Sprintf(`{"query": %s, "variables": {"p": {"b": 1, "a": 2}}, "extensions": %s}`, q, ext),
		fmt.Sprintf(`{"variables": {"p": {"b": 1, "a": 2}}, "extensions": %s}`, ext),
	} {
		status, out := postRaw(t, s, s.Token, body)
		if status != http.StatusOK || out["errors"] != nil {
			t.Fatalf("HTTP %d: %v", status, out)
		}
		got, _ := json.Marshal(out["data"].(map[string]any)["publishEvent"].(map[string]any)["payload"])
		if string(got) != `{"a":2,"b":1}` {
			t.Errorf("payload %s, want {\"a\":2,\"b\":1}", got)
		}
	}
}
