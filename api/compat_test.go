// Package api_test checks that Herald's GraphQL schema stays compatible
// with clients of the last release (see README.md and
// docs/api-stability.md).
package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireNode returns node's path, or skips without node or the checker's
// dependencies, unless HERALD_REQUIRE_NODE=1.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("compat", "node_modules", "@graphql-inspector", "core", "package.json"))
	}
	if err == nil {
		return node
	}
	msg := "the schema compatibility check needs node and `npm ci` in api/compat (make testdeps): " + err.Error()
	if os.Getenv("HERALD_REQUIRE_NODE") == "1" {
		t.Fatal(msg + " (HERALD_REQUIRE_NODE=1)")
	}
	t.Skip(msg)
	return ""
}

func check(t *testing.T, node string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(node, append([]string{filepath.Join("compat", "check.mjs")}, args...)...)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return string(out), err == nil
}

func TestSchema_DoesNotBreakClientsOfTheLastRelease(t *testing.T) {
	node := requireNode(t)
	out, ok := check(t, node)
	if !ok {
		t.Fatalf("schema.graphqls or graph/ent.graphqls break clients of the last release:\n%s", out)
	}
	t.Log(out)
}

// TestSchemaCheck_CatchesBreaksUnlessListed proves the check can fail: a
// schema without a field, with a required argument added and with a type
// changed breaks it, until the changes are listed as intentional.
func TestSchemaCheck_CatchesBreaksUnlessListed(t *testing.T) {
	node := requireNode(t)
	dir := t.TempDir()
	schema, err := os.ReadFile(filepath.Join("baseline", "schema.graphqls"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(schema)
	for _, edit := range [][2]string{
		{"  deliveryCount: Int!\n  at: Time!\n  event: Event!", "  at: Time!\n  event: Event!"},                                                                                                           // EventPublication.deliveryCount removed
		{"retryDelivery(id: ID!): Delivery!", "retryDelivery(id: ID!, reason: String!): Delivery!"},                                                                                                       // a required argument
		{"type ReplayDeliveriesPayload {\n  \"How many deliveries were queued again.\"\n  count: Int!", "type ReplayDeliveriesPayload {\n  \"How many deliveries were queued again.\"\n  count: String!"}, // a type changed
	} {
		if !strings.Contains(s, edit[0]) {
			t.Fatalf("the baseline no longer has %q: update the test", edit[0])
		}
		s = strings.Replace(s, edit[0], edit[1], 1)
	}
	changed := filepath.Join(dir, "schema.graphqls")
	if err := os.WriteFile(changed, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	ent := filepath.Join("baseline", "ent.graphqls")
	none := filepath.Join(dir, "none.json")
	if err := os.WriteFile(none, []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, ok := check(t, node, "--allow", none, changed, ent)
	if ok {
		t.Fatalf("breaking changes passed the check:\n%s", out)
	}
	for _, want := range []string{"FIELD_REMOVED EventPublication.deliveryCount", "FIELD_ARGUMENT_ADDED Mutation.retryDelivery.reason", "FIELD_TYPE_CHANGED ReplayDeliveriesPayload.count", "if the break is intended, add"} {
		if !strings.Contains(out, want) {
			t.Errorf("the check's output lacks %q:\n%s", want, out)
		}
	}
	allow := filepath.Join(dir, "allow.json")
	list := `[{"type": "FIELD_REMOVED", "path": "EventPublication.deliveryCount", "reason": "test"},
		{"type": "FIELD_ARGUMENT_ADDED", "path": "Mutation.retryDelivery.reason", "reason": "test"},
		{"type": "FIELD_TYPE_CHANGED", "path": "ReplayDeliveriesPayload.count", "reason": "test"}]`
	if err := os.WriteFile(allow, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, ok := check(t, node, "--allow", allow, changed, ent); !ok {
		t.Fatalf("listed breaks still fail the check:\n%s", out)
	}
	// Additions break nothing.
	added := strings.Replace(s, "type ReplayDeliveriesPayload {", "type ReplayDeliveriesPayload {\n  skipped: Int", 1)
	if err := os.WriteFile(changed, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, ok := check(t, node, "--allow", allow, changed, ent); !ok {
		t.Fatalf("an added field failed the check:\n%s", out)
	}
}
