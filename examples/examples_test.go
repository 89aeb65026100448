// Package examples_test runs the examples as a user would: a herald
// process, each receiver as a process of its own behind a real endpoint,
// and each publisher publishing to it.
package examples_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/heraldtest"
)

func TestMain(m *testing.M) { heraldtest.Main(m) }

// proc is an example running in the background.
type proc struct {
	cmd *exec.Cmd
	out heraldtest.SyncBuffer
}

func start(t *testing.T, dir string, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...)}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
	return p
}

func (p *proc) wait(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	if !heraldtest.Eventually(60*time.Second, func() bool { return rx.MatchString(p.out.String()) }) {
		t.Fatalf("%s never printed %q:\n%s", p.cmd.Path, re, p.out.String())
	}
	return rx.FindString(p.out.String())
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
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

type setup struct {
	herald *heraldtest.Process
	c      *client.Client
	env    []string
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	h := heraldtest.StartProcess(t, heraldtest.Binary(t), "--db", filepath.Join(t.TempDir(), "herald.db"))
	c, err := client.New(client.Config{URL: h.URL, APIKey: h.Token})
	if err != nil {
		t.Fatal(err)
	}
	return &setup{herald: h, c: c, env: []string{"HERALD_URL=" + h.URL, "HERALD_API_KEY=" + h.Token}}
}

// endpoint creates an endpoint for addr's /webhooks and returns its secret.
func (s *setup) endpoint(t *testing.T, addr string, types ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, secret, err := s.c.CreateEndpoint(ctx, client.CreateEndpointInput{Name: "example " + types[0], Url: client.Ptr("http://" + addr + "/webhooks"), EventTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// forge posts a delivery with a bad signature and returns the status.
func forge(t *testing.T, addr string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks", bytes.NewReader([]byte(`{"id":"evt_x","type":"order.created","data":{}}`)))
	req.Header.Set("Webhook-Id", "evt_x")
	req.Header.Set("Webhook-Timestamp", "1700000000")
	req.Header.Set("Webhook-Signature", "v1,AAAA")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// retryLast retries the delivery of an event, so the receiver sees it again.
func (s *setup) retry(t *testing.T, eventID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var p *client.Page[client.Delivery]
	var err error
	// The receiver has printed the event; the attempt is recorded just after.
	if !heraldtest.Eventually(30*time.Second, func() bool {
		p, err = s.c.Deliveries(ctx, client.DeliveryQuery{EventID: eventID})
		return err == nil && len(p.Items) == 1 && p.Items[0].Status == client.DeliveryStatusSucceeded
	}) {
		t.Fatalf("the delivery of %s did not succeed: %+v %v", eventID, p, err)
	}
	if _, err := s.c.RetryDelivery(ctx, p.Items[0].ID); err != nil {
		t.Fatal(err)
	}
}

func TestGoExamples_PublisherToVerifyingReceiver(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	bin := t.TempDir()
	run(t, ".", nil, "go", "build", "-o", bin, "./go-receiver", "./go-publisher")
	addr := heraldtest.FreeAddr(t)
	secret := s.endpoint(t, addr, "order.*")
	rc := start(t, ".", []string{"WEBHOOK_SECRET=" + secret}, filepath.Join(bin, "go-receiver"), "-addr", addr)
	rc.wait(t, `listening on`)

	out := run(t, ".", s.env, filepath.Join(bin, "go-publisher"), "-type", "order.created", "-data", `{"orderId":"ord_go"}`)
	id := regexp.MustCompile(`published (evt_\w+) \(order.created\) to 1 endpoint`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("publisher printed %q", out)
	}
	rc.wait(t, `verified order.created `+id[1]+`: \{"orderId":"ord_go"\}`)
	if code := forge(t, addr); code != http.StatusUnauthorized {
		t.Fatalf("a forged delivery was answered %d", code)
	}
	rc.wait(t, `refused: webhook: `)
	s.retry(t, id[1])
	rc.wait(t, `duplicate order.created `+id[1])
}

func TestNodeExamples_PublisherToVerifyingReceiver(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("node", "node_modules", "@heraldhq", "client", "dist", "index.js"))
	}
	if err != nil {
		msg := "the Node examples need node, sdk/typescript built and `npm ci` in examples/node (make testdeps): " + err.Error()
		if os.Getenv("HERALD_REQUIRE_NODE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := newSetup(t)
	addr := heraldtest.FreeAddr(t)
	secret := s.endpoint(t, addr, "contact.*")
	port := addr[strings.LastIndex(addr, ":")+1:]
	rc := start(t, "node", []string{"WEBHOOK_SECRET=" + secret, "PORT=" + port}, node, "receiver.mjs")
	rc.wait(t, `listening on`)

	out := run(t, "node", s.env, node, "publish.mjs", "contact.created", `{"email":"ada@example.com"}`)
	id := regexp.MustCompile(`published (evt_\w+) \(contact.created\) to 1 endpoint`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("publisher printed %q", out)
	}
	rc.wait(t, `verified contact.created `+id[1]+`: \{"email":"ada@example.com"\}`)
	if code := forge(t, addr); code != http.StatusUnauthorized {
		t.Fatalf("a forged delivery was answered %d", code)
	}
	rc.wait(t, `refused: `)
	s.retry(t, id[1])
	rc.wait(t, `duplicate contact.created `+id[1])
	bad := exec.Command(node, "publish.mjs", "no.such.type", "{}")
	bad.Dir, bad.Env = "node", append(os.Environ(), s.env...)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "BAD_USER_INPUT") {
		t.Fatalf("publishing an unknown type: %v %s", err, out)
	}
}
