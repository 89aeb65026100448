package dispatch_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

type serverConfig = server.Config

func TestRetry_ServerErrorThenSuccess(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, "database down", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": fastRetries(3)})
	evID := s.Publish(s.Token, "order.created", map[string]any{"orderId": "o1"})

	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	if d.AttemptCount != 2 || len(d.Attempts.Edges) != 2 {
		t.Fatalf("delivery = %+v, want 2 attempts", d)
	}
	first, second := d.Attempts.Edges[0].Node, d.Attempts.Edges[1].Node
	if first.Succeeded || *first.ResponseStatus != 500 || !strings.Contains(first.ResponseBody, "database down") || first.ErrorMessage == nil {
		t.Errorf("first attempt = %+v", first)
	}
	if !second.Succeeded || *second.ResponseStatus != 204 || second.AttemptNumber != 2 || second.Trigger != "SCHEDULED" {
		t.Errorf("second attempt = %+v", second)
	}
	reqs := rc.Requests()
	if reqs[0].Header.Get("Webhook-Id") != reqs[1].Header.Get("Webhook-Id") {
		t.Errorf("webhook-id changed between retries: %q then %q", reqs[0].Header.Get("Webhook-Id"), reqs[1].Header.Get("Webhook-Id"))
	}
	if reqs[1].Header.Get("X-Herald-Attempt") != "2" {
		t.Errorf("X-Herald-Attempt of the retry = %q, want 2", reqs[1].Header.Get("X-Herald-Attempt"))
	}
}

func TestRetry_HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": map[string]any{
		"maxAttempts": 3, "initialDelay": "10ms", "backoffMultiplier": 1, "maxDelay": "5s"}})
	evID := s.Publish(s.Token, "order.created", map[string]any{})

	reqs := rc.WaitRequests(t, 2, 5*time.Second)
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 900*time.Millisecond {
		t.Fatalf("retry came %s after a 429 with Retry-After: 1, want about 1s", gap)
	}
	s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
}

func TestRetry_RetryAfterIsCappedByMaxDelay(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": map[string]any{
		"maxAttempts": 2, "initialDelay": "10ms", "backoffMultiplier": 1, "maxDelay": "200ms"}})
	s.Publish(s.Token, "order.created", map[string]any{})
	reqs := rc.WaitRequests(t, 2, 5*time.Second)
	if gap := reqs[1].At.Sub(reqs[0].At); gap > 2*time.Second {
		t.Fatalf("retry came %s after the 503, want about maxDelay (200ms)", gap)
	}
}

func TestRetry_ExhaustedDeliveryFails(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": fastRetries(3)})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	if d.AttemptCount != 3 || len(rc.Requests()) != 3 || d.LastError == nil || !strings.Contains(*d.LastError, "502") {
		t.Fatalf("delivery = %+v after %d requests", d, len(rc.Requests()))
	}
}

func TestPermanentFailure_NotRetried(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusGone, http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			s := heraldtest.Start(t)
			rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
			s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": fastRetries(5)})
			evID := s.Publish(s.Token, "order.created", map[string]any{})
			d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
			if d.AttemptCount != 1 || *d.LastResponseStatus != code {
				t.Fatalf("delivery = %+v, want one attempt with status %d", d, code)
			}
			time.Sleep(150 * time.Millisecond) // longer than the retry delay
			if n := len(rc.Requests()); n != 1 {
				t.Fatalf("receiver got %d requests, want 1", n)
			}
		})
	}
}

func TestRetryableStatuses(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			s := heraldtest.Start(t)
			rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.WriteHeader(code)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": fastRetries(2)})
			evID := s.Publish(s.Token, "order.created", map[string]any{})
			s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" && d.AttemptCount == 2 })
		})
	}
}

func TestTimeout_SlowReceiverIsCutOff(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		w.WriteHeader(http.StatusOK)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "timeout": "200ms", "retryPolicy": fastRetries(1)})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	a := d.Attempts.Edges[0].Node
	if a.ResponseStatus != nil || a.ErrorMessage == nil || !strings.Contains(*a.ErrorMessage, "timeout") {
		t.Fatalf("attempt = %+v, want a timeout error", a)
	}
	if a.DurationMs < 150 || a.DurationMs > 2000 {
		t.Fatalf("attempt took %dms, want about the 200ms timeout", a.DurationMs)
	}
}

func TestNetworkError_ConnectionResetIsRetried(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST instead of FIN
				}
				conn.Close()
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "retryPolicy": fastRetries(3)})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	first := d.Attempts.Edges[0].Node
	if first.ResponseStatus != nil || first.ErrorMessage == nil || *first.ErrorMessage == "" {
		t.Fatalf("first attempt = %+v, want a network error", first)
	}
}

func TestNetworkError_ConnectionRefusedIsRecorded(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	s.CreateEndpoint(s.Token, map[string]any{"url": "http://" + addr + "/hook", "retryPolicy": fastRetries(2)})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	if d.AttemptCount != 2 || d.LastError == nil || !strings.Contains(*d.LastError, "refused") {
		t.Fatalf("delivery = %+v, want 2 attempts failing with connection refused", d)
	}
}

func TestResponseBody_TruncatedAt64KiB(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(strings.Repeat("a", 100<<10)))
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	a := d.Attempts.Edges[0].Node
	if !a.ResponseBodyTruncated || len(a.ResponseBody) != 64<<10 {
		t.Fatalf("stored %d bytes, truncated=%v; want 65536 bytes, truncated", len(a.ResponseBody), a.ResponseBodyTruncated)
	}
}
