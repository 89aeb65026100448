package dispatch_test

import (
	"bufio"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// redirectChain starts a final receiver and hops receivers in front of it;
// the first hop's URL is returned with the final receiver.
func redirectChain(t *testing.T, hops int, code int) (first string, final *heraldtest.Receiver) {
	t.Helper()
	final = heraldtest.NewReceiver(t, nil)
	next := final.Hook("/final")
	for i := hops; i > 0; i-- {
		target := next
		rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, code)
		})
		next = rc.Hook(fmt.Sprintf("/hop%d", i))
	}
	return next, final
}

func TestRedirect_FollowsUpToTwoHopsAsPOST(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hops int
		code int
	}{{1, http.StatusFound}, {2, http.StatusTemporaryRedirect}, {2, http.StatusMovedPermanently}, {1, http.StatusPermanentRedirect}} {
		t.Run(fmt.Sprintf("%d hops %d", tc.hops, tc.code), func(t *testing.T) {
			t.Parallel()
			s := heraldtest.Start(t)
			first, final := redirectChain(t, tc.hops, tc.code)
			s.CreateEndpoint(s.Token, map[string]any{"url": first})
			evID := s.Publish(s.Token, "order.created", map[string]any{"orderId": "o9"})
			req := final.WaitRequests(t, 1, 5*time.Second)[0]
			if req.Method != http.MethodPost || !strings.Contains(string(req.Body), `"orderId":"o9"`) || req.Header.Get("Webhook-Signature") == "" {
				t.Fatalf("final hop got %s with body %s", req.Method, req.Body)
			}
			s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
		})
	}
}

func TestRedirect_ThreeHopsFailPermanently(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	first, final := redirectChain(t, 3, http.StatusFound)
	s.CreateEndpoint(s.Token, map[string]any{"url": first, "retryPolicy": fastRetries(5)})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	if d.AttemptCount != 1 || d.LastError == nil || !strings.Contains(*d.LastError, "redirect") {
		t.Fatalf("delivery = %+v, want one attempt failing on the redirect limit", d)
	}
	if n := len(final.Requests()); n != 0 {
		t.Fatalf("the target behind the third redirect got %d requests", n)
	}
}

func TestRedirect_CredentialsNotSentToAnotherHost(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	final := heraldtest.NewReceiver(t, nil)
	// Same IP, different port: a different host as far as credentials go.
	hop := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, final.Hook("/elsewhere"), http.StatusTemporaryRedirect)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": hop.URL, "auth": map[string]any{"type": "BEARER", "token": "sekrit-token-123456"}})
	s.Publish(s.Token, "order.created", map[string]any{})
	first := hop.WaitRequests(t, 1, 5*time.Second)[0]
	if first.Header.Get("Authorization") != "Bearer sekrit-token-123456" {
		t.Fatalf("original host got Authorization %q", first.Header.Get("Authorization"))
	}
	req := final.WaitRequests(t, 1, 5*time.Second)[0]
	if got := req.Header.Get("Authorization"); got != "" {
		t.Fatalf("redirect target on another host got Authorization %q", got)
	}
}

func TestRedirect_ToBlockedAddressIsRefused(t *testing.T) {
	t.Parallel()
	blocked := heraldtest.NewReceiver(t, nil)
	hop := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, blocked.Hook("/internal"), http.StatusFound)
	})
	u, err := url.Parse(hop.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The policy is on; only the first hop's exact address is allowed.
	s := heraldtest.Start(t, func(c *serverConfig) {
		c.AllowPrivateDestinations = false
		c.AllowDestinations = u.Host
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": hop.URL, "retryPolicy": fastRetries(3)})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	if d.AttemptCount != 1 || d.LastError == nil || !strings.Contains(*d.LastError, "loopback") {
		t.Fatalf("delivery = %+v, want one attempt refused as a loopback destination", d)
	}
	if n := len(blocked.Requests()); n != 0 {
		t.Fatalf("blocked address got %d requests", n)
	}
}

func TestDestinationPolicy_EndpointOnBlockedAddressIsRejected(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.AllowPrivateDestinations = false })
	rc := heraldtest.NewReceiver(t, nil)
	r := s.Do(s.Token, `mutation($u: String!) { createEndpoint(input: {name: "blocked", url: $u, eventTypes: ["*"]}) { secret } }`,
		map[string]any{"u": rc.URL})
	r.WantError(t, "BAD_USER_INPUT")
	if r.Field() != "input.url" {
		t.Fatalf("field = %q, want input.url", r.Field())
	}
}

// credentialHeaders are an endpoint's custom headers that carry
// credentials, and one that does not.
var credentialHeaders = []map[string]string{
	{"name": "Authorization", "value": "Token custom-credential-1"},
	{"name": "Proxy-Authorization", "value": "Basic custom-credential-2"},
	{"name": "Cookie", "value": "session=custom-credential-3"},
	{"name": "X-Api-Token", "value": "custom-credential-4"},
	{"name": "X-Session-Secret", "value": "custom-credential-5"},
	{"name": "X-Tenant", "value": "acme"},
}

// checkStripped fails unless the request that crossed to another origin
// carries none of the credentials but still the harmless header and
// Herald's signatures.
func checkStripped(t *testing.T, req heraldtest.Request, authHeader string) {
	t.Helper()
	for name, vs := range req.Header {
		for _, v := range vs {
			if strings.Contains(v, "custom-credential") || strings.Contains(v, "auth-credential") {
				t.Errorf("the redirect target got the credential %s: %s", name, v)
			}
		}
	}
	if authHeader != "" && req.Header.Get(authHeader) != "" {
		t.Errorf("the redirect target got the auth header %s: %s", authHeader, req.Header.Get(authHeader))
	}
	if req.Header.Get("X-Tenant") != "acme" {
		t.Errorf("the redirect target lost the harmless header X-Tenant (got %q)", req.Header.Get("X-Tenant"))
	}
	for _, name := range []string{"Webhook-Signature", "X-Herald-Signature"} {
		if req.Header.Get(name) == "" {
			t.Errorf("the redirect target did not get Herald's signature header %s", name)
		}
	}
}

func TestRedirect_CustomCredentialHeadersNotSentToAnotherHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		auth       map[string]any
		headers    []map[string]string
		authHeader string
	}{
		{"no auth", map[string]any{"type": "NONE"}, credentialHeaders, ""},
		{"hmac auth under an innocent name", map[string]any{"type": "HMAC", "headerName": "X-Hub-Check", "secret": "auth-credential-of-length"},
			credentialHeaders, "X-Hub-Check"},
		{"api key auth", map[string]any{"type": "API_KEY", "headerName": "X-Partner", "headerValue": "auth-credential-7"},
			credentialHeaders[2:], "X-Partner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := heraldtest.Start(t)
			final := heraldtest.NewReceiver(t, nil)
			// Same IP, different port: a different host as far as credentials go.
			hop := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, final.Hook("/elsewhere"), http.StatusTemporaryRedirect)
			})
			s.CreateEndpoint(s.Token, map[string]any{"url": hop.URL, "auth": tc.auth, "headers": tc.headers})
			s.Publish(s.Token, "order.created", map[string]any{})
			first := hop.WaitRequests(t, 1, 5*time.Second)[0]
			for _, h := range tc.headers {
				if got := first.Header.Get(h["name"]); got != h["value"] {
					t.Errorf("the endpoint's own host got %s %q, want %q", h["name"], got, h["value"])
				}
			}
			checkStripped(t, final.WaitRequests(t, 1, 5*time.Second)[0], tc.authHeader)
		})
	}
}

// TestRedirect_CredentialsNotSentOverAnotherScheme follows an https
// endpoint that redirects to http on the same host and port: the
// credentials must not travel in clear text.
func TestRedirect_CredentialsNotSentOverAnotherScheme(t *testing.T) {
	if os.Getenv("HERALD_TEST_TRUST_HTTPTEST_CERT") == "" {
		rerunTrustingTestCert(t)
		return
	}
	t.Parallel()
	s := heraldtest.Start(t)
	var (
		mu    sync.Mutex
		plain []heraldtest.Request
	)
	var origin string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			http.Redirect(w, r, "http://"+origin+"/plain", http.StatusTemporaryRedirect)
			return
		}
		mu.Lock()
		plain = append(plain, heraldtest.Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
		mu.Unlock()
	}), ReadHeaderTimeout: 5 * time.Second}
	ln := listenTLSAndPlain(t)
	origin = ln.Addr().String()
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })

	s.CreateEndpoint(s.Token, map[string]any{
		"url":     "https://" + origin + "/secure",
		"auth":    map[string]any{"type": "BEARER", "token": "auth-credential-8"},
		"headers": credentialHeaders[2:],
	})
	s.Publish(s.Token, "order.created", map[string]any{})
	var got []heraldtest.Request
	if !heraldtest.Eventually(5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		got = append(got[:0], plain...)
		return len(got) > 0
	}) {
		t.Fatal("the redirect to http was not followed")
	}
	checkStripped(t, got[0], "Authorization")
}

// rerunTrustingTestCert runs the calling test again in a child process
// whose TLS clients trust httptest's certificate (SSL_CERT_FILE), which
// Herald's outbound transport, using the system roots, otherwise refuses.
func rerunTrustingTestCert(t *testing.T) {
	t.Helper()
	t.Parallel()
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	cert := ts.Certificate()
	ts.Close()
	file := filepath.Join(t.TempDir(), "httptest.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+file, "HERALD_TEST_TRUST_HTTPTEST_CERT=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in a process trusting httptest's certificate: %v\n%s", t.Name(), err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s did not run in the child process:\n%s", t.Name(), out)
	}
}

// listenTLSAndPlain listens on a loopback port that speaks TLS (with
// httptest's certificate) to clients that start a TLS handshake and plain
// HTTP to the others, so that one host and port serve both schemes.
func listenTLSAndPlain(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS() // only for its TLS configuration
	cfg := ts.TLS.Clone()
	ts.Close()
	return sniffListener{Listener: ln, tls: cfg}
}

type sniffListener struct {
	net.Listener
	tls *tls.Config
}

// Accept returns the next connection, wrapped in TLS if its first byte
// starts a handshake (record type 22).
func (l sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	pc := peekedConn{Conn: c, r: br}
	if err == nil && first[0] == 22 {
		return tls.Server(pc, l.tls), nil
	}
	return pc, nil
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
