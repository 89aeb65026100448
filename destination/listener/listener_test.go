package listener_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/client/webhook"
	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/listener"
	"github.com/heraldhq/herald/signing"
	hwebhook "github.com/heraldhq/herald/webhook"
)

// harness is a listener's target on a hub, as an engine opens it.
type harness struct {
	hub    *listener.Hub
	target destination.Target
	secret string
	woken  chan string
}

func newHarness(t *testing.T, timeout time.Duration) *harness {
	t.Helper()
	h := &harness{woken: make(chan string, 16)}
	h.hub = listener.NewHub(listener.HubConfig{Wake: func(id string) { h.woken <- id }})
	drivers := destination.NewRegistry(listener.Spec(h.hub)).Open(destination.Env{UserAgent: "Herald/test", MaxResponseBody: 16})
	t.Cleanup(func() { _ = drivers.Close() })
	tg, err := drivers.Prepare(&destination.Endpoint{ID: "ep_l", Type: listener.Type, URL: "http://localhost:3000/hooks", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	h.target = tg
	secret, err := signing.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	h.secret = secret
	return h
}

func (h *harness) message(t *testing.T) *destination.Message {
	key, err := signing.DecodeSecret(h.secret)
	if err != nil {
		t.Fatal(err)
	}
	return &destination.Message{ID: "evt_1", EventType: "order.created", DeliveryID: "dlv_1", Attempt: 1,
		Body: []byte(`{"id":"evt_1","type":"order.created","timestamp":"2026-01-02T03:04:05Z","data":{"n":1}}`), Signer: signing.NewSigner(key)}
}

// send runs Send in the background.
func (h *harness) send(m *destination.Message) <-chan *destination.Result {
	out := make(chan *destination.Result, 1)
	go func() { out <- h.target.Send(context.Background(), m) }()
	return out
}

func next(t *testing.T, s *listener.Session) *listener.Push {
	t.Helper()
	select {
	case p := <-s.Pushes():
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("nothing pushed to the session")
		return nil
	}
}

func result(t *testing.T, c <-chan *destination.Result) *destination.Result {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return")
		return nil
	}
}

func TestSend_PushesSignedAndRecordsTheReport(t *testing.T) {
	h := newHarness(t, 5*time.Second)
	if h.target.(destination.Held).Holding() {
		t.Fatal("holding without a session")
	}
	s := h.hub.Attach("ep_l", nil)
	if !h.target.(destination.Held).Holding() {
		t.Fatal("not holding with a session")
	}
	res := h.send(h.message(t))
	p := next(t, s)
	// The pushed request verifies with the listener's secret, as any
	// Standard Webhooks receiver checks it.
	v, err := webhook.NewVerifier(h.secret)
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{}
	req := http.Header{}
	for _, x := range p.Headers {
		hdr[x.Name] = x.Value
		req.Set(x.Name, x.Value)
	}
	if err := v.Verify(req, p.Body); err != nil {
		t.Fatalf("pushed delivery does not verify: %v (headers %v)", err, hdr)
	}
	if hdr["Content-Type"] != "application/json" || hdr["X-Herald-Delivery-Id"] != "dlv_1" || p.Token == "" {
		t.Fatalf("push %+v", p)
	}
	if err := h.hub.Report("ep_l", listener.Report{DeliveryID: "dlv_1", Token: "forged", Status: 200}); !errors.Is(err, listener.ErrStale) {
		t.Fatalf("report with a wrong token: %v, want ErrStale", err)
	}
	err = h.hub.Report("ep_l", listener.Report{DeliveryID: p.DeliveryID, Token: p.Token, Status: 201, Body: "a body longer than sixteen bytes",
		Headers: []hwebhook.Header{{Name: "X-Local", Value: "yes"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := result(t, res)
	if r.Outcome != destination.Delivered || r.Status != 201 || !r.Truncated || r.ResponseBody != "a body longer th" || len(r.ResponseHeaders) != 1 {
		t.Fatalf("result %+v", r)
	}
	if err := h.hub.Report("ep_l", listener.Report{DeliveryID: p.DeliveryID, Token: p.Token, Status: 200}); !errors.Is(err, listener.ErrStale) {
		t.Fatalf("second report of one attempt: %v, want ErrStale", err)
	}
}

func TestSend_ClassifiesTheLocalAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		report  listener.Report
		outcome destination.Outcome
		says    string
	}{
		{"server error", listener.Report{Status: 500}, destination.Retryable, "HTTP 500"},
		{"not found", listener.Report{Status: 404}, destination.Permanent, "HTTP 404"},
		{"gone does not disable", listener.Report{Status: 410}, destination.Permanent, "HTTP 410"},
		{"too many", listener.Report{Status: 429, Headers: []hwebhook.Header{{Name: "Retry-After", Value: "7"}}}, destination.Throttled, "HTTP 429"},
		{"refused", listener.Report{Error: "dial tcp 127.0.0.1:3000: connection refused"}, destination.Retryable, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 5*time.Second)
			s := h.hub.Attach("ep_l", nil)
			res := h.send(h.message(t))
			p := next(t, s)
			rep := tc.report
			rep.DeliveryID, rep.Token = p.DeliveryID, p.Token
			if err := h.hub.Report("ep_l", rep); err != nil {
				t.Fatal(err)
			}
			r := result(t, res)
			if r.Outcome != tc.outcome || !strings.Contains(r.Error, tc.says) || r.Gone {
				t.Fatalf("result %v %q gone=%v, want %v saying %q", r.Outcome, r.Error, r.Gone, tc.outcome, tc.says)
			}
			if tc.report.Status == 429 && (r.RetryAfter != 7*time.Second || r.Pause != 7*time.Second) {
				t.Fatalf("429 with Retry-After 7: retry after %s, pause %s", r.RetryAfter, r.Pause)
			}
		})
	}
}

// A session that ends while an attempt waits for its report interrupts the
// attempt: it is not recorded, and the delivery is due again for the next
// session; a late report of it is stale.
func TestSend_SessionEndingInterruptsTheAttempt(t *testing.T) {
	h := newHarness(t, 5*time.Second)
	s := h.hub.Attach("ep_l", nil)
	res := h.send(h.message(t))
	p := next(t, s)
	s2 := h.hub.Attach("ep_l", nil) // the CLI reconnected
	r := result(t, res)
	if r.Outcome != destination.Interrupted {
		t.Fatalf("result %v %q, want interrupted", r.Outcome, r.Error)
	}
	if !errors.Is(s.Err(), listener.ErrReplaced) {
		t.Fatalf("replaced session ended with %v", s.Err())
	}
	if err := h.hub.Report("ep_l", listener.Report{DeliveryID: p.DeliveryID, Token: p.Token, Status: 200}); !errors.Is(err, listener.ErrStale) {
		t.Fatalf("report after the session ended: %v, want ErrStale", err)
	}
	h.hub.Evict("ep_l", s2.ID)
	if s2.Err() != nil {
		t.Fatal("Evict ended the session it keeps")
	}
	h.hub.Evict("ep_l", "another replica's")
	if !errors.Is(s2.Err(), listener.ErrMoved) || h.hub.Holding("ep_l") {
		t.Fatalf("evicted session: %v, holding %v", s2.Err(), h.hub.Holding("ep_l"))
	}
	if r := h.target.Send(context.Background(), h.message(t)); r.Outcome != destination.Interrupted {
		t.Fatalf("send without a session: %v, want interrupted", r.Outcome)
	}
	// The engine heard of every change.
	for range 3 {
		select {
		case id := <-h.woken:
			if id != "ep_l" {
				t.Fatalf("woken for %s", id)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the engine was not woken")
		}
	}
}

// A CLI whose connection is lively but that does not report times out as
// an HTTP endpoint that does not answer; one whose connection stayed
// silent since the push is likely gone: the attempt is interrupted, the
// delivery due again for the next session, without using an attempt.
func TestSend_UnreportedPushTimesOutOrWaitsForTheNextSession(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lively  bool
		outcome destination.Outcome
	}{
		{"lively connection", true, destination.Retryable},
		{"silent connection", false, destination.Interrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 100*time.Millisecond)
			attached := time.Now()
			lastRead := func() time.Time {
				if tc.lively {
					return time.Now() // pings keep arriving
				}
				return attached
			}
			s := h.hub.Attach("ep_l", lastRead)
			res := h.send(h.message(t))
			next(t, s)
			r := result(t, res)
			if r.Outcome != tc.outcome {
				t.Fatalf("result %v %q, want %v", r.Outcome, r.Error, tc.outcome)
			}
			if tc.lively && !strings.Contains(r.Error, "timeout") {
				t.Fatalf("error %q, want a timeout", r.Error)
			}
		})
	}
}

func TestSend_CancelledIsInterrupted(t *testing.T) {
	h := newHarness(t, 5*time.Second)
	s := h.hub.Attach("ep_l", nil)
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *destination.Result, 1)
	go func() { out <- h.target.Send(ctx, h.message(t)) }()
	next(t, s)
	cancel()
	if r := result(t, out); r.Outcome != destination.Interrupted {
		t.Fatalf("result %v, want interrupted", r.Outcome)
	}
}
