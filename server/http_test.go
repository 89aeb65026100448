package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

func get(t *testing.T, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestHealth_ProbesAnswer(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		resp, body := get(t, s.URL+path, nil)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}
}

func TestHTTP_GETRunsQueriesButNotMutations(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	auth := http.Header{"Authorization": {"Bearer " + s.Token}}
	q := url.Values{"query": {`{ viewer { isAdmin } }`}}
	resp, body := get(t, s.URL+"/graphql?"+q.Encode(), auth)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"isAdmin":true`) {
		t.Fatalf("GET query = %d %s", resp.StatusCode, body)
	}
	q = url.Values{"query": {`mutation { createApp(input: {name: "via GET"}) { id } }`}}
	resp, body = get(t, s.URL+"/graphql?"+q.Encode(), auth)
	if resp.StatusCode == http.StatusOK && strings.Contains(body, `"createApp":{`) {
		t.Fatalf("GET ran a mutation: %s", body)
	}
	var apps struct{ Apps struct{ TotalCount int } }
	s.Do(s.Token, `{ apps { totalCount } }`, nil).Decode(t, &apps)
	if apps.Apps.TotalCount != 1 {
		t.Fatalf("an app was created by GET: %d apps", apps.Apps.TotalCount)
	}
}

func TestCORS_AllowsConfiguredOriginsOnly(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.CORSOrigins = []string{"https://console.example"} })
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, s.URL+"/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ok := preflight("https://console.example")
	if ok.StatusCode != http.StatusNoContent || ok.Header.Get("Access-Control-Allow-Origin") != "https://console.example" ||
		!strings.Contains(ok.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight from an allowed origin: %d %v", ok.StatusCode, ok.Header)
	}
	if bad := preflight("https://evil.example"); bad.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed: %v", bad.Header)
	}
	r := s.DoWith(s.Token, http.Header{"Origin": {"https://console.example"}}, `{ viewer { isAdmin } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("request from the allowed origin: %s", r.Body)
	}
}

func TestHTTP_RequestIDIsReturned(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	resp, _ := get(t, s.URL+"/healthz", http.Header{"X-Request-Id": {"trace-123"}})
	if got := resp.Header.Get("X-Request-Id"); got != "trace-123" {
		t.Errorf("X-Request-Id = %q, want the caller's", got)
	}
	resp, _ = get(t, s.URL+"/healthz", nil)
	if len(resp.Header.Get("X-Request-Id")) != 16 {
		t.Errorf("generated X-Request-Id = %q", resp.Header.Get("X-Request-Id"))
	}
}

// TestServe_ShutsDownGracefully runs Serve on a listener and cancels its
// context, as SIGTERM does: requests stop being accepted, Serve returns,
// and the database is closed so a new server can open it.
func TestServe_ShutsDownGracefully(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "herald.db")
	srv, err := server.New(context.Background(), server.Config{DBPath: db, Logger: heraldtest.Logger(t), ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	if !heraldtest.Eventually(5*time.Second, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatal("server did not become ready")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
	again, err := server.New(context.Background(), server.Config{DBPath: db, Logger: heraldtest.Logger(t)})
	if err != nil {
		t.Fatalf("reopen after shutdown: %v", err)
	}
	if again.BootstrapToken() != "" {
		t.Error("reopened database printed a new bootstrap key")
	}
	if err := again.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// chunked posts a chunked body to /graphql (with the Authorization
// header auth, if any), writing it with write, and returns the status and
// body of the answer, or the error of the exchange.
func chunked(t *testing.T, s *heraldtest.Server, auth string, write func(w *io.PipeWriter)) (int, string, error) {
	t.Helper()
	pr, pw := io.Pipe()
	go write(pw)
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Defect 10 of the review: chunked bodies of up to 5 MiB were buffered
// before the caller was known. Without a usable key a body may be 64 KiB
// (introspection fits); with one, the configured limit.
func TestHTTP_BodyWithoutAKeyIsSmall(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	big := func(w *io.PipeWriter) {
		_, _ = w.Write([]byte(`{"query": "{ __typename }", "pad": "`))
		_, _ = w.Write([]byte(strings.Repeat("x", 200<<10)))
		_, _ = w.Write([]byte(`"}`))
		_ = w.Close()
	}
	status, body, err := chunked(t, s, "", big)
	if err != nil || status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "API key") {
		t.Fatalf("200 KiB without a key: %d %s (%v); want 413 saying to send a key", status, body, err)
	}
	status, body, err = chunked(t, s, "Bearer "+s.Token, big)
	if err != nil || status != http.StatusOK {
		t.Fatalf("200 KiB with a key: %d %s (%v); want it read", status, body, err)
	}
}

// Defect 10: no read timeouts. A body that trickles in is cut off.
func TestHTTP_SlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.BodyTimeout = 300 * time.Millisecond })
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	status, _, err := chunked(t, s, "Bearer "+s.Token, func(w *io.PipeWriter) {
		_, _ = w.Write([]byte(`{"query": "{ __typename }", "pad": "`))
		for {
			select {
			case <-stop:
				_ = w.Close()
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	})
	if took := time.Since(start); took > 10*time.Second || (err == nil && status == http.StatusOK) {
		t.Fatalf("a trickling body: status %d, error %v after %s; want it cut off within about 300ms", status, err, took)
	}
}
