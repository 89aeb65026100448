package server_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestDocs_LiveJavaScriptExampleRuns runs docs/live.md's graphql-ws
// client as written, pointed at a test server and given a key through
// HERALD_API_KEY: it prints the deliveries that fail.
func TestDocs_LiveJavaScriptExampleRuns(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	page, err := os.ReadFile(filepath.Join("..", "docs", "live.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```js\n(.*?)\n```").FindStringSubmatch(string(page))
	if m == nil {
		t.Fatal("docs/live.md has no JavaScript example")
	}
	const docURL = `"wss://herald.example.com/graphql"`
	if !strings.Contains(m[1], docURL) {
		t.Fatalf("docs/live.md's example no longer connects to %s: update the test", docURL)
	}

	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/hooks"), "eventTypes": []string{"order.*"}})

	script := strings.Replace(m[1], docURL, `"ws`+strings.TrimPrefix(s.URL, "http")+`/graphql"`, 1)
	f, err := os.CreateTemp(nodeDir, "docs-live-tmp-*.mjs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.WriteString(script); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var out heraldtest.SyncBuffer
	cmd := exec.Command(node, filepath.Base(f.Name()))
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), "HERALD_API_KEY="+s.Token)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	// The client says nothing when it has subscribed: publish until a
	// failed delivery reaches it.
	var evt string
	printed := func() bool {
		return evt != "" && strings.Contains(out.String(), "eventType: 'order.created'") && strings.Contains(out.String(), "responseStatus: 400")
	}
	deadline := time.Now().Add(60 * time.Second)
	for !printed() {
		if time.Now().After(deadline) {
			t.Fatalf("the example printed no failed delivery within 60s:\n%s", out.String())
		}
		evt = s.Publish(s.Token, "order.created", map[string]any{"orderId": "ord_1042"})
		s.WaitDelivery(s.Token, evt, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
		heraldtest.Eventually(2*time.Second, printed)
	}
	if strings.Contains(out.String(), "Error") {
		t.Errorf("the example reported an error:\n%s", out.String())
	}
}
