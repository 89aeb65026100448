// Package typescript_test builds and tests the TypeScript client
// (@heraldhq/client) against a real herald process: `make test` runs it
// with the package's node_modules installed from its lockfile.
package typescript_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
)

func TestMain(m *testing.M) { heraldtest.Main(m) }

// requireNode returns node's path, or skips the test when node or the
// package's dependencies are missing, unless HERALD_REQUIRE_NODE=1.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("node_modules", "graphql-ws", "package.json"))
	}
	if err == nil {
		return node
	}
	msg := "the TypeScript client's tests need node and `npm ci` in sdk/typescript (make testdeps): " + err.Error()
	if os.Getenv("HERALD_REQUIRE_NODE") == "1" {
		t.Fatal(msg + " (HERALD_REQUIRE_NODE=1)")
	}
	t.Skip(msg)
	return ""
}

// requireBuilt fails unless dist/ was built (by make testdeps) after the
// last change to src/: the tests use the build rather than making their
// own, because the Node examples' tests import it at the same time.
func requireBuilt(t *testing.T) {
	t.Helper()
	built, err := os.Stat(filepath.Join("dist", "index.js"))
	if err != nil {
		t.Fatalf("sdk/typescript is not built: run make testdeps (%v)", err)
	}
	_ = filepath.WalkDir("src", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(built.ModTime()) {
			t.Fatalf("%s changed after dist/ was built: run make testdeps", path)
		}
		return nil
	})
}

func command(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nodeFlags turns on the WebSocket global on Node versions that keep it
// behind a flag (20).
func nodeFlags(t *testing.T, node string) []string {
	if exec.Command(node, "-e", "process.exit(typeof WebSocket === 'undefined' ? 1 : 0)").Run() == nil {
		return nil
	}
	return []string{"--experimental-websocket"}
}

func TestTypeScriptClient_AgainstARealServer(t *testing.T) {
	node := requireNode(t)
	p := heraldtest.StartProcess(t, heraldtest.Binary(t), "--db", filepath.Join(t.TempDir(), "herald.db"))
	if p.Token == "" {
		t.Fatalf("herald printed no key:\n%s", p.Output())
	}
	requireBuilt(t)
	args := append(nodeFlags(t, node), "--test", "--test-reporter=spec", "test/")
	out := command(t, ".", []string{"HERALD_URL=" + p.URL, "HERALD_API_KEY=" + p.Token}, node, args...)
	t.Logf("node --test:\n%s", out)
}

// TestTypeScriptClient_PackInstallsAndImports packs the package as npm
// would publish it, installs the tarball into a scratch project, imports
// it from JavaScript and type-checks a TypeScript file that uses it.
func TestTypeScriptClient_PackInstallsAndImports(t *testing.T) {
	node := requireNode(t)
	requireBuilt(t)
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm: %v", err)
	}
	dest := t.TempDir()
	// prepack would build again: dist/ is current (requireBuilt).
	out := command(t, ".", nil, npm, "pack", "--json", "--ignore-scripts", "--pack-destination", dest)
	var packed []struct {
		Filename string
		Files    []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &packed); err != nil || len(packed) != 1 {
		t.Fatalf("npm pack --json printed %q: %v", out, err)
	}
	files := map[string]bool{}
	for _, f := range packed[0].Files {
		files[f.Path] = true
	}
	for _, want := range []string{"package.json", "dist/index.js", "dist/index.d.ts", "dist/webhook.js", "dist/webhook.d.ts", "dist/operations.js"} {
		if !files[want] {
			t.Errorf("the package lacks %s; it has %v", want, files)
		}
	}
	for f := range files {
		if strings.HasPrefix(f, "src/") || strings.HasPrefix(f, "test/") || strings.HasPrefix(f, "node_modules/") {
			t.Errorf("the package ships %s", f)
		}
	}

	scratch := t.TempDir()
	if err := os.WriteFile(filepath.Join(scratch, "package.json"), []byte(`{"name":"scratch","private":true,"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	command(t, scratch, nil, npm, "install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", filepath.Join(dest, packed[0].Filename))
	js := `import { HeraldClient, HeraldError, verifyWebhook } from "@heraldhq/client";
import { WebhookVerifier } from "@heraldhq/client/webhook";
const c = new HeraldClient({ url: "http://127.0.0.1:1", apiKey: "hrld_x" });
if (typeof c.publish !== "function" || typeof verifyWebhook !== "function" || typeof WebhookVerifier.create !== "function") process.exit(1);
try { new HeraldClient({ url: "nope", apiKey: "k" }); process.exit(1); } catch (e) { if (!(e instanceof HeraldError)) process.exit(1); }
console.log("imported");
`
	if err := os.WriteFile(filepath.Join(scratch, "check.mjs"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := command(t, scratch, nil, node, "check.mjs"); !strings.Contains(got, "imported") {
		t.Fatalf("check.mjs printed %q", got)
	}
	ts := `import { HeraldClient, type Endpoint, type DeliveryChange } from "@heraldhq/client";
const c = new HeraldClient({ url: "http://localhost:8080", apiKey: "hrld_x" });
export async function names(): Promise<string[]> {
  const page = await c.endpoints({ first: 10 });
  return page.items.map((e: Endpoint) => e.name);
}
export function watch(): () => void {
  return c.subscribeDeliveries({ status: "FAILED" }, { next: (ch: DeliveryChange) => console.log(ch.deliveryId, ch.status) });
}
// @ts-expect-error: an unknown status is a type error.
c.deliveries({ status: "LOST" });
`
	if err := os.WriteFile(filepath.Join(scratch, "check.ts"), []byte(ts), 0o644); err != nil {
		t.Fatal(err)
	}
	tsconfig := `{"compilerOptions": {"noEmit": true, "strict": true, "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "lib": ["es2022", "dom"], "types": []}, "files": ["check.ts"]}`
	if err := os.WriteFile(filepath.Join(scratch, "tsconfig.json"), []byte(tsconfig), 0o644); err != nil {
		t.Fatal(err)
	}
	tsc, _ := filepath.Abs("node_modules/typescript/bin/tsc")
	command(t, scratch, nil, node, tsc, "-p", "tsconfig.json")
}
