package dispatch_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

func TestSend_OversizedResponseHeadersAreARetryableFailure(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	filler := strings.Repeat("x", 1000)
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		for i := range 100 { // about 100 KiB of headers
			w.Header().Set(fmt.Sprintf("X-Filler-%d", i), filler)
		}
		w.WriteHeader(http.StatusOK)
	})
	s.CreateEndpoint(s.Token, map[string]any{
		"url":         rc.URL,
		"retryPolicy": map[string]any{"maxAttempts": 3, "initialDelay": "1h", "backoffMultiplier": 1, "maxDelay": "1h"},
	})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.AttemptCount == 1 })
	if d.Status != "RETRYING" || d.NextAttemptAt == nil {
		t.Fatalf("delivery = %+v, want RETRYING with a next attempt", d)
	}
	a := d.Attempts.Edges[0].Node
	if a.Succeeded || a.ResponseStatus != nil || a.ErrorMessage == nil ||
		!strings.Contains(*a.ErrorMessage, "response headers exceeded 65536 bytes") {
		t.Fatalf("attempt = %+v, want a failure saying the response headers exceeded 65536 bytes", a)
	}
	if a.DurationMs > 2000 {
		t.Errorf("the attempt took %d ms: the headers should be cut off at once", a.DurationMs)
	}
}
