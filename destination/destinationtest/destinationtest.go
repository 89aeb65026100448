// Package destinationtest is the conformance suite every destination type
// passes, as dispatch/drivertest is for storage: what the engine relies on
// from a driver, proved against a real server of the type (an httptest
// server, a broker started by the test, or an in-process implementation
// of the broker's wire protocol).
package destinationtest

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/signing"
)

// Harness tells the suite how to use one destination type.
type Harness struct {
	// Spec is the type under test.
	Spec *destination.Spec
	// Addr is the live server's address (host:port) on loopback.
	Addr string
	// Endpoint returns an endpoint of the type that sends to the server at
	// addr with the working credentials and queue or topic the live server
	// has (addr may be another address, to reach a closed port or a
	// server that never answers).
	Endpoint func(addr string) destination.Endpoint
	// Receive returns the next message the live server's consumer got.
	Receive func(ctx context.Context) (Received, error)
	// Permanent is an endpoint the live server refuses for good (a missing
	// queue or topic, wrong credentials); its error should mention
	// PermanentSays.
	Permanent     destination.Endpoint
	PermanentSays string
	// Throttled, if set, is an endpoint whose sends the server throttles.
	Throttled *destination.Endpoint
	// Keyed reports that Received.Key carries the message's ordering key
	// (or, without one, its ID).
	Keyed bool
	// Conns returns how many connections Herald has open to the live
	// server, counted by the server when it can tell.
	Conns func() int
	// MaxConns is the most connections the driver may open to one server
	// for one credential (default 1).
	MaxConns int
	// Timeout of the endpoints in timing tests (default 1s).
	Timeout time.Duration
}

// Received is a message as the server's consumer got it.
type Received struct {
	Body []byte
	// Headers are the message's headers or attributes, names in lower
	// case.
	Headers map[string]string
	// Key is the message's key, group or ordering key, for Keyed types.
	Key string
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = time.Second
	}
	if h.MaxConns == 0 {
		h.MaxConns = 1
	}
	t.Run("DeliversBodyAndSignedHeaders", func(t *testing.T) { testDelivers(t, h) })
	t.Run("KeysByOrderingKey", func(t *testing.T) { testKeys(t, h) })
	t.Run("RefusedIsPermanent", func(t *testing.T) { testPermanent(t, h) })
	t.Run("ThrottlingIsThrottled", func(t *testing.T) { testThrottled(t, h) })
	t.Run("UnreachableIsRetryable", func(t *testing.T) { testUnreachable(t, h) })
	t.Run("SilentServerTimesOut", func(t *testing.T) { testTimeout(t, h) })
	t.Run("CancelledIsInterrupted", func(t *testing.T) { testCancel(t, h) })
	t.Run("PolicyRefusesPrivateAddress", func(t *testing.T) { testPolicy(t, h) })
	t.Run("PoolsConnectionsAndClosesIdle", func(t *testing.T) { testPool(t, h) })
}

// env returns the environment of a driver under test.
func env(idle time.Duration) destination.Env {
	return destination.Env{Policy: destination.Policy{AllowHTTP: true, AllowPrivate: true}, IdleTimeout: idle, UserAgent: "Herald/test"}
}

func open(t *testing.T, h Harness, e destination.Env) destination.Driver {
	t.Helper()
	drivers := destination.NewRegistry(h.Spec).Open(e)
	t.Cleanup(func() { _ = drivers.Close() })
	d, err := drivers.Driver(h.Spec.Type)
	if err != nil {
		t.Fatalf("open %s driver: %v", h.Spec.Name, err)
	}
	return d
}

func prepare(t *testing.T, d destination.Driver, ep destination.Endpoint) destination.Target {
	t.Helper()
	tg, err := d.Prepare(&ep)
	if err != nil {
		t.Fatalf("prepare %+v: %v", ep, err)
	}
	return tg
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

// message returns a message to send, numbered n.
func message(n int, key string) *destination.Message {
	id := "evt_conformance_" + strconv.Itoa(n) + "_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	return &destination.Message{
		ID: id, EventType: "order.created", DeliveryID: "dlv_" + strconv.Itoa(n), Attempt: 1, OrderingKey: key,
		Body:   []byte(`{"id":"` + id + `","type":"order.created","timestamp":"2026-01-02T03:04:05Z","data":{"n":` + strconv.Itoa(n) + `}}`),
		Signer: signing.NewSigner(testKey),
	}
}

func send(t *testing.T, tg destination.Target, m *destination.Message) *destination.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := tg.Send(ctx, m)
	if r == nil {
		t.Fatal("Send returned nil")
	}
	if r.Started.IsZero() || r.Completed.Before(r.Started) {
		t.Errorf("result times: started %v, completed %v", r.Started, r.Completed)
	}
	return r
}

// receive waits for the live server's next message with the given ID,
// skipping others (left over from earlier subtests).
func receive(t *testing.T, h Harness, id string) Received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		got, err := h.Receive(ctx)
		if err != nil {
			t.Fatalf("receive message %s: %v", id, err)
		}
		if got.Headers["webhook-id"] == id {
			return got
		}
	}
}

func testDelivers(t *testing.T, h Harness) {
	d := open(t, h, env(time.Minute))
	tg := prepare(t, d, h.Endpoint(h.Addr))
	if info := tg.Info(); info.Address == "" || info.System == "" {
		t.Errorf("Info = %+v, want an address and a system", info)
	}
	m := message(1, "")
	r := send(t, tg, m)
	if r.Outcome != destination.Delivered {
		t.Fatalf("outcome = %s (%s), want delivered", r.Outcome, r.Error)
	}
	got := receive(t, h, m.ID)
	if string(got.Body) != string(m.Body) {
		t.Errorf("body = %s, want %s", got.Body, m.Body)
	}
	ts, err := strconv.ParseInt(got.Headers["webhook-timestamp"], 10, 64)
	if err != nil || ts < r.Started.Unix()-1 || ts > r.Completed.Unix()+1 {
		t.Errorf("webhook-timestamp = %q, want the time of sending (%d)", got.Headers["webhook-timestamp"], r.Started.Unix())
	}
	want := map[string]string{
		"webhook-id":           m.ID,
		"webhook-signature":    string(signing.NewSigner(testKey).AppendStandard(nil, m.ID, ts, m.Body)),
		"x-herald-signature":   string(signing.NewSigner(testKey).AppendBodyHex(nil, m.Body)),
		"x-herald-event-type":  "order.created",
		"x-herald-delivery-id": "dlv_1",
		"x-herald-attempt":     "1",
	}
	for name, v := range want {
		if got.Headers[name] != v {
			t.Errorf("header %s = %q, want %q", name, got.Headers[name], v)
		}
	}
	recorded := map[string]string{}
	for _, rh := range r.RequestHeaders {
		recorded[strings.ToLower(rh.Name)] = rh.Value
	}
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "x-herald-event-type"} {
		if recorded[name] != got.Headers[name] {
			t.Errorf("recorded header %s = %q, want what was sent, %q", name, recorded[name], got.Headers[name])
		}
	}
	if r.RequestURL == "" {
		t.Error("the result does not say where the message went")
	}
}

func testKeys(t *testing.T, h Harness) {
	if !h.Keyed {
		t.Logf("not applicable: %s messages have no key", h.Spec.Name)
		return
	}
	d := open(t, h, env(time.Minute))
	tg := prepare(t, d, h.Endpoint(h.Addr))
	keyed, unkeyed := message(2, "customer-42"), message(3, "")
	for _, m := range []*destination.Message{keyed, unkeyed} {
		if r := send(t, tg, m); r.Outcome != destination.Delivered {
			t.Fatalf("outcome = %s (%s), want delivered", r.Outcome, r.Error)
		}
	}
	if got := receive(t, h, keyed.ID); got.Key != "customer-42" {
		t.Errorf("key = %q, want the ordering key %q", got.Key, "customer-42")
	}
	if got := receive(t, h, unkeyed.ID); got.Key != unkeyed.ID {
		t.Errorf("key = %q, want the event's ID %q when it has no ordering key", got.Key, unkeyed.ID)
	}
}

func testPermanent(t *testing.T, h Harness) {
	d := open(t, h, env(time.Minute))
	r := send(t, prepare(t, d, h.Permanent), message(4, ""))
	if r.Outcome != destination.Permanent {
		t.Fatalf("outcome = %s (%s), want permanent", r.Outcome, r.Error)
	}
	if !strings.Contains(strings.ToLower(r.Error), strings.ToLower(h.PermanentSays)) {
		t.Errorf("error = %q, want it to say %q", r.Error, h.PermanentSays)
	}
}

func testThrottled(t *testing.T, h Harness) {
	if h.Throttled == nil {
		t.Logf("not applicable: the %s server under test cannot throttle", h.Spec.Name)
		return
	}
	d := open(t, h, env(time.Minute))
	r := send(t, prepare(t, d, *h.Throttled), message(5, ""))
	if r.Outcome != destination.Throttled || r.Error == "" {
		t.Fatalf("outcome = %s (%q), want throttled with an error", r.Outcome, r.Error)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func testUnreachable(t *testing.T, h Harness) {
	d := open(t, h, env(time.Minute))
	ep := h.Endpoint(closedAddr(t))
	ep.Timeout = 10 * time.Second
	start := time.Now()
	r := send(t, prepare(t, d, ep), message(6, ""))
	if r.Outcome != destination.Retryable || r.Error == "" {
		t.Fatalf("outcome = %s (%q), want retryable with an error", r.Outcome, r.Error)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("a refused connection took %s to report", took)
	}
}

func testTimeout(t *testing.T, h Harness) {
	d := open(t, h, env(time.Minute))
	ep := h.Endpoint(silentServer(t))
	ep.Timeout = h.Timeout
	start := time.Now()
	r := send(t, prepare(t, d, ep), message(7, ""))
	took := time.Since(start)
	if r.Outcome != destination.Retryable || !strings.Contains(r.Error, "timeout") {
		t.Fatalf("outcome = %s (%q), want retryable with a timeout", r.Outcome, r.Error)
	}
	if took < h.Timeout*9/10 || took > h.Timeout+10*time.Second {
		t.Errorf("the attempt took %s; its timeout is %s", took, h.Timeout)
	}
}

func testCancel(t *testing.T, h Harness) {
	d := open(t, h, env(time.Minute))
	ep := h.Endpoint(silentServer(t))
	ep.Timeout = 30 * time.Second
	tg := prepare(t, d, ep)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *destination.Result, 1)
	go func() { done <- tg.Send(ctx, message(8, "")) }()
	time.AfterFunc(200*time.Millisecond, cancel)
	select {
	case r := <-done:
		if r.Outcome != destination.Interrupted {
			t.Fatalf("outcome = %s (%q), want interrupted", r.Outcome, r.Error)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return within 10s of its context ending")
	}
}

func testPolicy(t *testing.T, h Harness) {
	e := env(time.Minute)
	e.Policy = destination.Policy{AllowHTTP: true} // private addresses blocked
	d := open(t, h, e)
	r := send(t, prepare(t, d, h.Endpoint(h.Addr)), message(9, ""))
	if r.Outcome != destination.Permanent || !strings.Contains(r.Error, "not allowed") {
		t.Fatalf("outcome = %s (%q), want permanent: destination not allowed", r.Outcome, r.Error)
	}
}

func testPool(t *testing.T, h Harness) {
	if h.Conns == nil {
		t.Logf("not applicable: the %s server under test cannot count connections", h.Spec.Name)
		return
	}
	waitConns := func(what string, ok func(int) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for n := h.Conns(); !ok(n); n = h.Conns() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the server has %d connections from Herald", what, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitConns("before the test", func(n int) bool { return n == 0 })
	const idle = 500 * time.Millisecond
	d := open(t, h, env(idle))
	const endpoints = 20
	for i := range endpoints {
		ep := h.Endpoint(h.Addr)
		ep.ID = "ep_pool_" + strconv.Itoa(i)
		m := message(100+i, "")
		if r := send(t, prepare(t, d, ep), m); r.Outcome != destination.Delivered {
			t.Fatalf("endpoint %d: outcome = %s (%s), want delivered", i, r.Outcome, r.Error)
		}
		receive(t, h, m.ID)
	}
	if n := h.Conns(); n > h.MaxConns {
		t.Errorf("%d endpoints on one server opened %d connections, want at most %d", endpoints, n, h.MaxConns)
	}
	waitConns("after the idle timeout", func(n int) bool { return n == 0 })
}
