package examples_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// verifyMain is the receiver around docs/delivery.md's verify function:
// 204 for a delivery it verifies, 401 for one it rejects.
const verifyMain = `package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	secret := os.Getenv("WEBHOOK_SECRET")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println("listening on", ln.Addr())
	panic(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verify(secret, r.Header, body); err != nil {
			fmt.Println("rejected:", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Println("verified", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	})))
}

`

// TestDocs_VerifyFunctionVerifiesDeliveries compiles the Go verify function
// of docs/delivery.md into a receiver: it accepts Herald's deliveries and
// rejects a forged signature and a replayed (old) timestamp.
func TestDocs_VerifyFunctionVerifiesDeliveries(t *testing.T) {
	t.Parallel()
	langs, blocks := codeBlocks(docSection(t, "delivery.md", "## Verifying signatures"))
	if len(blocks) != 1 || langs[0] != "go" || !strings.Contains(blocks[0], "func verify(") {
		t.Fatalf("docs/delivery.md's Verifying signatures has blocks %q, want one Go verify function: update the test", langs)
	}
	dir, err := os.MkdirTemp(".", "verify-tmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(verifyMain+blocks[0]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "verify")
	run(t, ".", nil, "go", "build", "-o", bin, "./"+filepath.Base(dir))

	s := heraldtest.Start(t)
	// The receiver needs the secret before it starts: create the endpoint
	// on a placeholder URL, then point it at the receiver.
	epID, secret := s.CreateEndpoint(s.Token, map[string]any{"url": "http://127.0.0.1:9/webhooks", "eventTypes": []string{"order.*"}})
	rc := start(t, ".", []string{"WEBHOOK_SECRET=" + secret}, bin)
	addr := strings.TrimPrefix(rc.wait(t, `listening on \S+`), "listening on ")
	s.As(t, s.Token).Do(`mutation($id: ID!, $url: String!) { updateEndpoint(id: $id, input: {url: $url}) { id } }`,
		map[string]any{"id": epID, "url": "http://" + addr + "/webhooks"})

	evt := s.Publish(s.Token, "order.created", map[string]any{"orderId": "ord_1042"})
	d := s.WaitDelivery(s.Token, evt, 60*time.Second, func(d heraldtest.Delivery) bool { return d.Status != "PENDING" })
	if d.Status != "SUCCEEDED" {
		t.Fatalf("the delivery is %s; the receiver printed:\n%s", d.Status, rc.out.String())
	}
	rc.wait(t, "verified "+evt)

	post := func(ts int64, sig string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks", bytes.NewReader([]byte(`{"id":"evt_x","type":"order.created","data":{}}`)))
		req.Header.Set("Webhook-Id", "evt_x")
		req.Header.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("Webhook-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(time.Now().Unix(), "v1,AAAA"); code != http.StatusUnauthorized {
		t.Errorf("a forged signature got %d, want 401", code)
	}
	if code := post(time.Now().Add(-time.Hour).Unix(), "v1,AAAA"); code != http.StatusUnauthorized {
		t.Errorf("an hour-old timestamp got %d, want 401", code)
	}
	rc.wait(t, "rejected: no valid signature")
	rc.wait(t, "rejected: timestamp missing or too old")
}
