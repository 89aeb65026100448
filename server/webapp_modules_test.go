package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestWebApp_CatalogFormRules runs the unit tests of the web app's plain
// JavaScript modules (src/*.test.js: the event type form's rules) with
// node --test. They need node only, no package.
func TestWebApp_CatalogFormRules(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		msg := "the web app's unit tests need node: " + err.Error()
		if os.Getenv("HERALD_REQUIRE_NODE") == "1" {
			t.Fatal(msg + " (HERALD_REQUIRE_NODE=1)")
		}
		t.Skip(msg)
	}
	files, err := filepath.Glob(filepath.Join("webui", "app", "src", "*.test.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no unit tests in webui/app/src (%v)", err)
	}
	cmd := exec.Command(node, append([]string{"--test", "--test-reporter=spec"}, files...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %v: %v\n%s", files, err, out)
	}
	t.Logf("node --test:\n%s", out)
}
