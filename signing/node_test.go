package signing

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// nodeDir holds verify.mjs, which verifies signatures with the npm package
// standardwebhooks, the reference JavaScript implementation.
var nodeDir = filepath.Join("testdata", "node")

// nodeCase is one input of verify.mjs.
type nodeCase struct {
	Name    string            `json:"name"`
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// nodeResult is one output of verify.mjs.
type nodeResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

// requireNode returns the path of node, or skips the test when node or the
// npm dependencies of verify.mjs are not installed, unless
// HERALD_REQUIRE_NODE=1 asks for the check to be mandatory.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeDir, "node_modules", "standardwebhooks", "package.json"))
	}
	if err == nil {
		return node
	}
	msg := "independent verification with the npm package standardwebhooks needs node and " +
		"`npm ci` in signing/testdata/node: " + err.Error()
	if os.Getenv("HERALD_REQUIRE_NODE") == "1" {
		t.Fatal(msg + " (HERALD_REQUIRE_NODE=1)")
	}
	t.Skip(msg)
	return ""
}

// runNode verifies cases with verify.mjs.
func runNode(t *testing.T, node string, cases []nodeCase) []nodeResult {
	t.Helper()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "verify.mjs")
	cmd.Dir = nodeDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node verify.mjs: %v\n%s", err, stderr.Bytes())
	}
	var results []nodeResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("node verify.mjs printed %q: %v", out, err)
	}
	if len(results) != len(cases) {
		t.Fatalf("node verify.mjs returned %d results for %d cases", len(results), len(cases))
	}
	return results
}

func TestSigner_AcceptedByNodeReference(t *testing.T) {
	node := requireNode(t)

	cur, prev := mustSecret(t), mustSecret(t)
	s := NewSigner(mustDecode(t, cur), mustDecode(t, prev))
	// The reference verifier checks the timestamp against the real clock.
	now := time.Now().Unix()
	const msgID = "msg_2fK8XbQ7"
	body := `{"type":"invoice.paid","data":{"id":"in_1","note":"naïve ☃"}}`
	sig := string(s.AppendStandard(nil, msgID, now, []byte(body)))
	hdr := func(id string, ts int64, sig string) map[string]string {
		return map[string]string{
			headerID:        id,
			headerTimestamp: strconv.FormatInt(ts, 10),
			headerSignature: sig,
		}
	}

	tests := []struct {
		c      nodeCase
		accept bool
	}{
		{nodeCase{Name: "current key", Secret: cur, Headers: hdr(msgID, now, sig), Body: body}, true},
		{nodeCase{Name: "previous key", Secret: prev, Headers: hdr(msgID, now, sig), Body: body}, true},
		{nodeCase{Name: "empty body", Secret: cur, Headers: hdr(msgID, now, string(s.AppendStandard(nil, msgID, now, nil))), Body: ""}, true},
		{nodeCase{Name: "unrelated key", Secret: specSecret, Headers: hdr(msgID, now, sig), Body: body}, false},
		{nodeCase{Name: "tampered body", Secret: cur, Headers: hdr(msgID, now, sig), Body: body + " "}, false},
		{nodeCase{Name: "tampered id", Secret: cur, Headers: hdr(msgID+"x", now, sig), Body: body}, false},
		{nodeCase{Name: "tampered timestamp", Secret: cur, Headers: hdr(msgID, now+1, sig), Body: body}, false},
		{nodeCase{Name: "stale but correctly signed", Secret: cur,
			Headers: hdr(msgID, now-3600, string(s.AppendStandard(nil, msgID, now-3600, []byte(body)))), Body: body}, false},
	}
	cases := make([]nodeCase, len(tests))
	for i, tt := range tests {
		cases[i] = tt.c
	}
	for i, r := range runNode(t, node, cases) {
		tt := tests[i]
		if r.Name != tt.c.Name {
			t.Fatalf("result %d is for %q, want %q", i, r.Name, tt.c.Name)
		}
		if r.OK != tt.accept {
			t.Errorf("%s: standardwebhooks accepted = %v (%s), want %v", tt.c.Name, r.OK, r.Error, tt.accept)
		}
	}
}
