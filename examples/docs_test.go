package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// quickstart returns the code block of a docs page that follows the line
// "<!-- quickstart: name -->".
func quickstart(t *testing.T, page, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- quickstart: " + name + " -->\n"
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("docs/%s has no %q", page, marker)
	}
	m := regexp.MustCompile("(?s)^```\\w*\n(.*?)\n```").FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("docs/%s: no code block after %q", page, marker)
	}
	return m[1] + "\n"
}

func TestDocs_GoQuickStartWorksAsWritten(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	rc := heraldtest.NewReceiver(t, nil)
	dir, err := os.MkdirTemp(".", "quickstart-tmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(quickstart(t, "clients.md", "go")), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, ".", append(s.env, "RECEIVER_URL="+rc.Hook("/webhooks")), "go", "run", "./"+filepath.Base(dir))
	if !regexp.MustCompile(`(?m)^published evt_\w+ to 1 endpoint\(s\)\ndelivery dlv_\w+ `).MatchString(out) || !strings.Contains(out, "secret whsec_") {
		t.Fatalf("the Go quick start printed:\n%s", out)
	}
	rc.WaitRequests(t, 1, 60*time.Second)
}

func TestDocs_TypeScriptQuickStartWorksAsWritten(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("node", "node_modules", "@heraldhq", "client", "dist", "index.js"))
	}
	if err != nil {
		if os.Getenv("HERALD_REQUIRE_NODE") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s := newSetup(t)
	rc := heraldtest.NewReceiver(t, nil)
	f, err := os.CreateTemp("node", "quickstart-tmp-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.WriteString(quickstart(t, "clients.md", "node")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := run(t, "node", append(s.env, "RECEIVER_URL="+rc.Hook("/webhooks")), node, filepath.Base(f.Name()))
	if !regexp.MustCompile(`(?m)^published evt_\w+ to 1 endpoint\(s\)\ndelivery dlv_\w+ `).MatchString(out) || !strings.Contains(out, "secret whsec_") {
		t.Fatalf("the TypeScript quick start printed:\n%s", out)
	}
	rc.WaitRequests(t, 1, 60*time.Second)
}

// TestDocs_CLIFirstSessionWorksAsWritten runs docs/cli.md's first session
// in bash with the built binary, its placeholders (the key, the URLs)
// replaced by the test's.
func TestDocs_CLIFirstSessionWorksAsWritten(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	rc := heraldtest.NewReceiver(t, nil)
	script := quickstart(t, "cli.md", "sh")
	for old, repl := range map[string]string{
		"hrld_…": s.herald.Token, "http://localhost:8080": s.herald.URL, "http://127.0.0.1:9000/webhooks": rc.Hook("/webhooks"),
	} {
		if !strings.Contains(script, old) {
			t.Fatalf("docs/cli.md's first session no longer has %q: update the test", old)
		}
		script = strings.ReplaceAll(script, old, repl)
	}
	home := t.TempDir()
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Env = []string{"PATH=" + filepath.Dir(heraldtest.Binary(t)) + ":" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the first session failed: %v\n%s", err, out)
	}
	for _, want := range []string{"Logged in to " + s.herald.URL, "Signing secret", "(order.created) to 1 endpoint", "(order.paid) to 1 endpoint", "STATUS", `"items"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the first session's output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "herald", "config.json")); err != nil {
		t.Errorf("login saved no config: %v", err)
	}
	rc.WaitRequests(t, 2, 60*time.Second)
}

// The README's quick starts are those of docs/clients.md, which the tests
// above run as written.
func TestDocs_ReadmeQuickStartsAreTheTestedOnes(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"go", "node"} {
		if quickstart(t, "../README.md", name) != quickstart(t, "clients.md", name) {
			t.Errorf("README.md's %s quick start differs from docs/clients.md's, which is the one tested: make them the same", name)
		}
	}
}
