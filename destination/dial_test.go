package destination

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// receiver starts an httptest server on loopback that counts its requests
// and answers with handler, or "ok" when handler is nil.
func receiver(t *testing.T, handler http.HandlerFunc) (srv *httptest.Server, port uint16, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if handler != nil {
			handler(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	ap, err := netip.ParseAddrPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("listener address: %v", err)
	}
	if !ap.Addr().Is4() {
		t.Skipf("httptest listens on %v; this test needs 127.0.0.1", ap)
	}
	return srv, ap.Port(), hits
}

// client returns an http.Client that dials through p.
func client(t *testing.T, p Policy) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: p.Dialer(5 * time.Second).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func localhostURL(port uint16) string {
	return "http://" + net.JoinHostPort("localhost", strconv.Itoa(int(port))) + "/hook"
}

func TestPolicy_BlocksLoopbackAtDialTime(t *testing.T) {
	_, port, hits := receiver(t, nil)
	if _, err := net.DefaultResolver.LookupHost(t.Context(), "localhost"); err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}

	// The URL names a host, not an address: only the dialer, which sees the
	// resolved address, can refuse it.
	resp, err := client(t, Policy{AllowHTTP: true}).Get(localhostURL(port))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s succeeded with status %s; want it blocked at dial time", localhostURL(port), resp.Status)
	}
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("GET error = %v; want a *BlockedError in its chain", err)
	}
	if !be.Addr.Addr().IsLoopback() || be.Addr.Port() != port {
		t.Errorf("BlockedError.Addr = %v, want a loopback address on port %d", be.Addr, port)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("receiver got %d requests; want none", n)
	}
}

func TestPolicy_AllowRuleOpensItsPortAtDialTime(t *testing.T) {
	_, port, hits := receiver(t, nil)
	if _, err := net.DefaultResolver.LookupHost(t.Context(), "localhost"); err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	p := Policy{AllowHTTP: true, Allow: []Rule{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Port: port}}}

	resp, err := client(t, p).Get(localhostURL(port))
	if err != nil {
		t.Fatalf("GET %s with a rule for 127.0.0.1:%d: %v", localhostURL(port), port, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "ok" {
		t.Errorf("response body = %q, %v; want \"ok\"", body, err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("receiver got %d requests; want 1", n)
	}

	// The rule names one port: another loopback port stays closed.
	_, other, otherHits := receiver(t, nil)
	_, err = client(t, p).Get(localhostURL(other))
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Errorf("GET on port %d, which no rule names: err = %v, want a *BlockedError", other, err)
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("receiver on port %d got %d requests; want none", other, n)
	}
}

func TestPolicy_BlocksRedirectToBlockedAddress(t *testing.T) {
	_, targetPort, targetHits := receiver(t, nil)
	target := "http://127.0.0.1:" + strconv.Itoa(int(targetPort)) + "/internal"
	_, port, hits := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	})
	p := Policy{AllowHTTP: true, Allow: []Rule{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Port: port}}}

	resp, err := client(t, p).Get("http://127.0.0.1:" + strconv.Itoa(int(port)) + "/hook")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET followed the redirect to %s (status %s); want it blocked", target, resp.Status)
	}
	var be *BlockedError
	if !errors.As(err, &be) || be.Addr.Port() != targetPort {
		t.Fatalf("GET error = %v; want a *BlockedError for port %d", err, targetPort)
	}
	if hits.Load() != 1 || targetHits.Load() != 0 {
		t.Errorf("requests: allowed receiver %d, redirect target %d; want 1 and 0", hits.Load(), targetHits.Load())
	}
}

func TestPolicy_DialerSetsTimeoutAndControl(t *testing.T) {
	d := Policy{}.Dialer(3 * time.Second)
	if d.Timeout != 3*time.Second {
		t.Errorf("Timeout = %v, want 3s", d.Timeout)
	}
	if d.Control == nil {
		t.Fatal("Control is nil")
	}
	var be *BlockedError
	if err := d.Control("tcp4", "127.0.0.1:80", nil); !errors.As(err, &be) {
		t.Errorf("Dialer().Control(127.0.0.1:80) = %v, want a *BlockedError", err)
	}
}
